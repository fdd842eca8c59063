#include "upgrade_sql.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <vector>

namespace envdb::pg_upgrade {

namespace {

[[noreturn]] void cannot(const std::string& what) { throw std::runtime_error(what); }

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::string first_line(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > 100 ? line.substr(0, 100) + "..." : line;
}

// The index just past a quoted literal or dollar-quoted body starting at i, or
// i itself when none starts there.
size_t skip_quoted(const std::string& s, size_t i) {
  if (s[i] == '\'') {
    size_t j = i + 1;
    while (j < s.size()) {
      if (s[j] == '\'') {
        if (j + 1 < s.size() && s[j + 1] == '\'') {
          j += 2;
          continue;
        }
        return j + 1;
      }
      ++j;
    }
    cannot("unterminated quoted literal: " + first_line(s.substr(i)));
  }
  if (s[i] == '$') {
    size_t j = i + 1;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
    if (j < s.size() && s[j] == '$' &&
        !(j > i + 1 && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      const std::string tag = s.substr(i, j + 1 - i);
      const size_t end = s.find(tag, j + 1);
      if (end == std::string::npos) cannot("unterminated " + tag + " body");
      return end + tag.size();
    }
  }
  return i;
}

// The statements of a psql script, without comments and psql meta-commands.
std::vector<std::string> statements(const std::string& sql) {
  std::vector<std::string> out;
  std::string cur;
  bool line_start = true;
  size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    if (line_start && c == '\\') {  // \echo ... \quit
      while (i < sql.size() && sql[i] != '\n') ++i;
      continue;
    }
    if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
      continue;
    }
    if (const size_t j = skip_quoted(sql, i); j != i) {
      cur.append(sql, i, j - i);
      i = j;
      line_start = false;
      continue;
    }
    line_start = c == '\n' || (line_start && (c == ' ' || c == '\t'));
    if (c == ';') {
      if (std::string t = trim(cur); !t.empty()) out.push_back(t);
      cur.clear();
    } else {
      cur += c;
    }
    ++i;
  }
  if (!trim(cur).empty()) cannot("a statement without its semicolon: " + first_line(trim(cur)));
  return out;
}

size_t close_paren(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size();) {
    if (const size_t j = skip_quoted(s, i); j != i) {
      i = j;
      continue;
    }
    if (s[i] == '(') ++depth;
    if (s[i] == ')' && --depth == 0) return i;
    ++i;
  }
  cannot("unbalanced parentheses in: " + first_line(s));
}

// Top-level comma-separated parts, trimmed.
std::vector<std::string> split_top(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (size_t i = 0; i < s.size();) {
    if (const size_t j = skip_quoted(s, i); j != i) {
      cur.append(s, i, j - i);
      i = j;
      continue;
    }
    const char c = s[i++];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!trim(cur).empty()) parts.push_back(trim(cur));
  return parts;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string no_spaces(const std::string& s) {
  std::string out;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) out += c;
  return out;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

struct Column {
  std::string name, type, default_expr, text;
  bool not_null = false;
  std::vector<std::string> checks;
};

struct Table {
  std::string name, primary_key, text;
  std::vector<Column> columns;
  std::vector<std::string> constraints;  // UNIQUE, FOREIGN KEY, CHECK at table level
};

struct Function {
  std::string identity, params, returns, text;
};

struct Script {
  std::vector<std::string> order;  // "kind key", first occurrence
  std::map<std::string, Table> tables;
  std::map<std::string, Function> functions;
  std::map<std::string, std::string> objects;            // "kind key" -> statement
  std::map<std::string, std::vector<std::string>> acls;  // "acl function f(..)" / "acl relation r"

  void note(const std::string& key) {
    if (std::find(order.begin(), order.end(), key) == order.end()) order.push_back(key);
  }
};

Column parse_column(const std::string& table, const std::string& part) {
  Column c;
  c.text = part;
  std::istringstream words(part);
  words >> c.name >> c.type;
  std::string rest = trim(part.substr(part.find(c.type, c.name.size()) + c.type.size()));
  while (!rest.empty()) {
    if (starts_with(rest, "NOT NULL")) {
      c.not_null = true;
      rest = trim(rest.substr(8));
    } else if (starts_with(rest, "DEFAULT ")) {
      size_t i = 8;
      int depth = 0;
      while (i < rest.size()) {
        if (const size_t j = skip_quoted(rest, i); j != i) {
          i = j;
          continue;
        }
        if (rest[i] == '(') ++depth;
        if (rest[i] == ')') --depth;
        if (depth == 0 && rest[i] == ' ' &&
            (starts_with(rest.substr(i), " NOT NULL") || starts_with(rest.substr(i), " CHECK")))
          break;
        ++i;
      }
      c.default_expr = trim(rest.substr(8, i - 8));
      rest = trim(rest.substr(i));
    } else if (starts_with(rest, "CHECK")) {
      const size_t open = rest.find('(');
      const size_t close = close_paren(rest, open);
      c.checks.push_back(rest.substr(0, close + 1));
      rest = trim(rest.substr(close + 1));
    } else {
      cannot("column " + table + "." + c.name + ": cannot read \"" + first_line(rest) + "\"");
    }
  }
  return c;
}

Table parse_table(const std::string& name, const std::string& stmt) {
  Table t;
  t.name = name;
  t.text = stmt;
  const size_t open = stmt.find('(');
  const size_t close = close_paren(stmt, open);
  if (!trim(stmt.substr(close + 1)).empty())
    cannot("table " + name + ": cannot read what follows its column list");
  for (const std::string& part : split_top(stmt.substr(open + 1, close - open - 1))) {
    if (starts_with(part, "PRIMARY KEY"))
      t.primary_key = part;
    else if (starts_with(part, "UNIQUE") || starts_with(part, "FOREIGN KEY") ||
             starts_with(part, "CHECK") || starts_with(part, "CONSTRAINT"))
      t.constraints.push_back(part);
    else
      t.columns.push_back(parse_column(name, part));
  }
  return t;
}

Function parse_function(const std::string& stmt) {
  Function f;
  f.text = stmt;
  const size_t name_at = stmt.find("FUNCTION ") + 9;
  const size_t open = stmt.find('(', name_at);
  const size_t close = close_paren(stmt, open);
  const std::string name = trim(stmt.substr(name_at, open - name_at));
  f.params = stmt.substr(open + 1, close - open - 1);
  std::vector<std::string> types;
  for (const std::string& p : split_top(f.params)) {
    std::string decl = p.substr(0, p.find(" DEFAULT "));
    std::istringstream words(decl);
    std::vector<std::string> w;
    for (std::string x; words >> x;) w.push_back(x);
    if (w.empty() || w.size() > 2)
      cannot("function " + name + ": cannot read parameter \"" + p + "\"");
    types.push_back(w.back());
  }
  f.identity = name + "(" + join(types, ",") + ")";
  std::smatch m;
  const std::string after = stmt.substr(close + 1);
  if (!std::regex_search(after, m, std::regex("^\\s*RETURNS\\s+(\\S+)")))
    cannot("function " + name + ": no RETURNS clause");
  f.returns = m[1];
  return f;
}

Script parse(const std::string& sql) {
  static const std::regex kTable("^CREATE TABLE (\\S+) \\(");
  static const std::regex kFunction("^CREATE (OR REPLACE )?FUNCTION ");
  static const std::regex kIndex("^CREATE (UNIQUE )?INDEX (\\S+) ON (\\S+)");
  static const std::regex kTrigger("^CREATE (?:CONSTRAINT )?TRIGGER (\\S+) [^;]*? ON (\\S+) ");
  static const std::regex kSequence("^CREATE SEQUENCE (\\S+)$");
  static const std::regex kView("^CREATE (OR REPLACE )?VIEW (\\S+) ");
  static const std::regex kPolicy("^CREATE POLICY (\\S+) ON (\\S+)");
  static const std::regex kRls("^ALTER TABLE (\\S+) (ENABLE|FORCE) ROW LEVEL SECURITY$");
  static const std::regex kAlterView("^ALTER VIEW (\\S+) SET \\(");
  static const std::regex kAlwaysTrigger("^ALTER TABLE (\\S+) ENABLE ALWAYS TRIGGER (\\S+)$");
  static const std::regex kConfigDump("^SELECT pg_catalog\\.pg_extension_config_dump\\('([^']+)'");
  static const std::regex kSchemaAcl("^(GRANT|REVOKE) [^;]*? ON SCHEMA ");
  static const std::regex kFunctionAcl(
      "^(GRANT|REVOKE) [^;]*? ON FUNCTION ([^ (]+\\([^)]*\\)) (TO|FROM) ");
  static const std::regex kRelationAcl(
      "^(GRANT|REVOKE) [^;]*? ON (TABLE )?([A-Za-z_][A-Za-z0-9_.]*) (TO|FROM) ");
  static const std::regex kComment("^COMMENT ON ([^;]+?) IS ");
  Script s;
  for (const std::string& stmt : statements(sql)) {
    std::smatch m;
    std::string key;
    if (std::regex_search(stmt, m, kTable)) {
      key = "table " + m[1].str();
      if (s.tables.count(m[1])) cannot(key + " is created twice");
      s.tables[m[1]] = parse_table(m[1], stmt);
    } else if (std::regex_search(stmt, m, kFunction)) {
      Function f = parse_function(stmt);
      key = "function " + f.identity;
      s.functions[f.identity] = f;
    } else if (std::regex_search(stmt, m, kSchemaAcl)) {
      key = "schema_acl " + stmt;
      s.objects[key] = stmt;
    } else if (std::regex_search(stmt, m, kFunctionAcl)) {
      key = "acl function " + no_spaces(m[2]);
      s.acls[key].push_back(stmt);
    } else if (std::regex_search(stmt, m, kRelationAcl)) {
      key = "acl relation " + m[3].str();
      s.acls[key].push_back(stmt);
    } else {
      if (std::regex_search(stmt, m, kIndex))
        key = "index " + m[3].str().substr(0, m[3].str().find('.') + 1) + m[2].str();
      else if (std::regex_search(stmt, m, kTrigger))
        key = "trigger " + m[1].str() + " ON " + m[2].str();
      else if (std::regex_search(stmt, m, kSequence))
        key = "sequence " + m[1].str();
      else if (std::regex_search(stmt, m, kView))
        key = "view " + m[2].str();
      else if (std::regex_search(stmt, m, kPolicy))
        key = "policy " + m[1].str() + " ON " + m[2].str();
      else if (std::regex_search(stmt, m, kRls))
        key = "rls " + m[1].str() + " " + m[2].str();
      else if (std::regex_search(stmt, m, kAlterView))
        key = "alter_view " + m[1].str();
      else if (std::regex_search(stmt, m, kAlwaysTrigger))
        key = "always_trigger " + m[2].str() + " ON " + m[1].str();
      else if (std::regex_search(stmt, m, kConfigDump))
        key = "config_dump " + m[1].str();
      else if (std::regex_search(stmt, m, kComment))
        key = "comment " + m[1].str();
      else if (starts_with(stmt, "DO "))
        key = "do " + stmt;
      else
        cannot("no upgrade rule for the statement \"" + first_line(stmt) + "\"");
      if (s.objects.count(key))
        cannot(key.substr(0, key.find(' ')) + " \"" + first_line(key) + "\" appears twice");
      s.objects[key] = stmt;
    }
    s.note(key);
  }
  return s;
}

std::string kind_of(const std::string& key) { return key.substr(0, key.find(' ')); }
std::string name_of(const std::string& key) { return key.substr(key.find(' ') + 1); }

// The roles a group of GRANT / REVOKE statements names.
std::set<std::string> grantees(const std::vector<std::string>& group) {
  std::set<std::string> roles{"PUBLIC"};
  static const std::regex kTo(" (TO|FROM) ([^;]+)$");
  for (const std::string& stmt : group) {
    std::smatch m;
    if (!std::regex_search(stmt, m, kTo))
      cannot("cannot read the roles of \"" + first_line(stmt) + "\"");
    std::string list = m[2];
    if (size_t w = list.find(" WITH GRANT OPTION"); w != std::string::npos) list.erase(w);
    for (const std::string& r : split_top(list)) roles.insert(r);
  }
  return roles;
}

std::string drop_column_checks(const std::string& table, const std::string& column) {
  return "DO $upgrade$\nDECLARE\n  c record;\nBEGIN\n"
         "  FOR c IN SELECT conname FROM pg_catalog.pg_constraint\n"
         "            WHERE conrelid = '" +
         table +
         "'::regclass AND contype = 'c'\n"
         "              AND conkey = ARRAY[(SELECT attnum FROM pg_catalog.pg_attribute\n"
         "                                   WHERE attrelid = '" +
         table +
         "'::regclass\n"
         "                                     AND attname = '" +
         column +
         "')]::int2[] LOOP\n"
         "    EXECUTE pg_catalog.format('ALTER TABLE " +
         table +
         " DROP CONSTRAINT %I', c.conname);\n"
         "  END LOOP;\nEND\n$upgrade$;\n";
}

void alter_table(std::ostream& out, const Table& old_t, const Table& new_t) {
  const std::string& t = new_t.name;
  if (old_t.primary_key != new_t.primary_key)
    cannot("table " + t + ": its primary key changed (" + old_t.primary_key + " -> " +
           new_t.primary_key + ")");
  std::map<std::string, const Column*> old_cols;
  for (auto& c : old_t.columns) old_cols[c.name] = &c;
  std::set<std::string> new_names;
  for (auto& c : new_t.columns) new_names.insert(c.name);
  for (auto& c : old_t.columns)
    if (!new_names.count(c.name))
      cannot("table " + t + ": column " + c.name +
             " was dropped; an upgrade never drops a column holding data");
  // Postgres adds a column after every existing one, so a fresh install has
  // the same column order only when the new ones come last.
  size_t seen_old = 0;
  for (auto& c : new_t.columns) {
    if (old_cols.count(c.name)) {
      if (c.name != old_t.columns[seen_old].name)
        cannot("table " + t + ": column " + c.name + " moved; columns keep their order");
      ++seen_old;
    } else if (seen_old < old_t.columns.size()) {
      cannot("table " + t + ": new column " + c.name + " comes before the existing column " +
             old_t.columns[seen_old].name +
             "; ALTER TABLE ADD COLUMN appends, so add new columns after the existing ones");
    }
  }
  std::ostringstream alters;
  for (auto& c : new_t.columns) {
    auto found = old_cols.find(c.name);
    if (found == old_cols.end()) {
      if (c.not_null && c.default_expr.empty())
        cannot("table " + t + ": new column " + c.name +
               " is NOT NULL without a default, so rows already there cannot take it");
      alters << "ALTER TABLE " << t << " ADD COLUMN " << c.text << ";\n";
      continue;
    }
    const Column& o = *found->second;
    if (o.text == c.text) continue;
    if (o.type != c.type)
      cannot("table " + t + ": column " + c.name + " changed type (" + o.type + " -> " + c.type +
             ")");
    if (o.not_null != c.not_null)
      alters << "ALTER TABLE " << t << " ALTER COLUMN " << c.name
             << (c.not_null ? " SET NOT NULL" : " DROP NOT NULL") << ";\n";
    if (o.default_expr != c.default_expr)
      alters << "ALTER TABLE " << t << " ALTER COLUMN " << c.name
             << (c.default_expr.empty() ? " DROP DEFAULT" : " SET DEFAULT " + c.default_expr)
             << ";\n";
    if (o.checks != c.checks) {
      alters << drop_column_checks(t, c.name);
      for (auto& check : c.checks) alters << "ALTER TABLE " << t << " ADD " << check << ";\n";
    }
  }
  std::set<std::string> new_constraints(new_t.constraints.begin(), new_t.constraints.end());
  for (auto& c : old_t.constraints)
    if (!new_constraints.count(c))
      cannot("table " + t + ": the constraint \"" + c + "\" was removed or changed");
  for (auto& c : new_t.constraints)
    if (std::find(old_t.constraints.begin(), old_t.constraints.end(), c) == old_t.constraints.end())
      alters << "ALTER TABLE " << t << " ADD " << c << ";\n";
  if (!alters.str().empty()) out << "\n-- " << t << "\n" << alters.str();
}

std::string create_or_replace(const std::string& text) {
  static const std::regex kCreate("^CREATE (OR REPLACE )?FUNCTION ");
  return std::regex_replace(text, kCreate, "CREATE OR REPLACE FUNCTION ",
                            std::regex_constants::format_first_only);
}

// The upgrade script's opening lines: where it comes from, and the guard
// against running it by hand.
void write_header(std::ostream& out, const std::string& extension, const std::string& from_version,
                  const std::string& to_version) {
  out << "-- " << extension << " upgrade from " << from_version << " to " << to_version << ".\n"
      << "-- Generated by gen_install_sql from the frozen " << from_version
      << " install script (pg_ext/sql/) and the " << to_version
      << " one; edit shared/catalog/schema.cpp and shared/surface/api.cpp, not this file.\n\n"
      << "\\echo Use \"ALTER EXTENSION " << extension << " UPDATE TO '" << to_version
      << "'\" to load this file. \\quit\n";
}

const char* drop_keyword(const std::string& kind) {
  return kind == "policy"    ? "POLICY"
         : kind == "view"    ? "VIEW"
         : kind == "trigger" ? "TRIGGER"
                             : "INDEX";
}

// Policies, views, triggers and indexes that are gone or changed, dependents
// first; the changed ones are noted in `remade`.
void drop_changed_objects(std::ostream& drops, const Script& o, const Script& n,
                          std::set<std::string>& remade) {
  for (const char* kind : {"policy", "view", "trigger", "index"})
    for (auto& [key, text] : o.objects) {
      if (kind_of(key) != kind) continue;
      auto now = n.objects.find(key);
      if (now != n.objects.end() && now->second == text) continue;
      drops << "DROP " << drop_keyword(kind) << " " << name_of(key) << ";\n";
      if (now != n.objects.end()) remade.insert(key);
    }
}

// Functions that are gone or whose signature changed; the changed ones are
// noted in `remade`.
void drop_changed_functions(std::ostream& drops, const Script& o, const Script& n,
                            std::set<std::string>& remade) {
  for (auto& [identity, f] : o.functions) {
    auto now = n.functions.find(identity);
    // CREATE OR REPLACE cannot change a result type, a parameter name or a default.
    if (now != n.functions.end() && now->second.returns == f.returns &&
        now->second.params == f.params)
      continue;
    drops << "DROP FUNCTION " << identity << ";\n";
    if (now != n.functions.end()) remade.insert("function " + identity);
  }
}

// The statements of the old script the new one no longer has: undone where
// that is possible, refused where an upgrade cannot undo them.
void undo_removed_statements(std::ostream& drops, const Script& o, const Script& n,
                             const std::set<std::string>& remade) {
  for (auto& [key, text] : o.objects) {
    if (n.objects.count(key)) continue;
    const std::string kind = kind_of(key);
    if (kind == "rls")
      drops << "ALTER TABLE " << name_of(key).substr(0, name_of(key).find(' '))
            << " DISABLE ROW LEVEL SECURITY;\n";
    else if (kind == "comment")
      drops << "COMMENT ON " << name_of(key) << " IS NULL;\n";
    else if (kind == "alter_view" && !remade.count("view " + name_of(key)))
      cannot("the view option statement \"" + first_line(text) + "\" was removed");
    else if (kind == "config_dump" || kind == "schema_acl")
      cannot("the statement \"" + first_line(text) + "\" was removed");
    else if (kind == "sequence")  // its value is data, like a table's rows
      cannot("sequence " + name_of(key) + " was dropped; an upgrade never drops a sequence");
  }
}

// An upgrade never drops a table, nor the grants of an object that stays.
void refuse_removed_tables_and_grants(const Script& o, const Script& n) {
  for (auto& [name, t] : o.tables)
    if (!n.tables.count(name))
      cannot("table " + name + " was dropped; an upgrade never drops a table");
  for (auto& [key, group] : o.acls)
    if (!n.acls.count(key) &&
        !(starts_with(key, "acl function ") && !n.functions.count(name_of(name_of(key)))))
      cannot("the grants of " + name_of(name_of(key)) + " were removed while it stays");
}

// Step 1: drop what is gone or must be made again; returns the views and
// functions dropped here that write_creates makes again.
std::set<std::string> write_drops(std::ostream& out, const Script& o, const Script& n) {
  std::set<std::string> remade;
  std::ostringstream drops;
  drop_changed_objects(drops, o, n, remade);
  drop_changed_functions(drops, o, n, remade);
  undo_removed_statements(drops, o, n, remade);
  refuse_removed_tables_and_grants(o, n);
  if (!drops.str().empty()) out << "\n-- Dropped, or made again below.\n" << drops.str();
  return remade;
}

// The grants of one object: unchanged ones stay, changed ones are revoked
// and given again, those of a new or remade object are given.
void write_grants(std::ostream& out, const std::string& key, const Script& o, const Script& n,
                  const std::set<std::string>& remade) {
  const std::string name = name_of(key);
  const std::string object = name_of(name);  // after "function " / "relation "
  const bool is_function = starts_with(name, "function ");
  const auto& group = n.acls.at(key);
  auto old_group = o.acls.find(key);
  const bool fresh = old_group == o.acls.end() || remade.count("function " + object) ||
                     remade.count("view " + object);
  if (!fresh && old_group->second == group) return;
  if (!fresh) {
    std::set<std::string> roles = grantees(old_group->second);
    out << "REVOKE ALL ON " << (is_function ? "FUNCTION " : "") << object << " FROM "
        << join(std::vector<std::string>(roles.begin(), roles.end()), ", ") << ";\n";
  }
  for (auto& stmt : group) out << stmt << ";\n";
}

// Step 2: create and alter, in the order of the new install script.
void write_creates(std::ostream& out, const Script& o, const Script& n,
                   const std::set<std::string>& remade) {
  for (const std::string& key : n.order) {
    const std::string kind = kind_of(key), name = name_of(key);
    if (kind == "table") {
      auto old_t = o.tables.find(name);
      if (old_t == o.tables.end()) {
        out << "\n" << n.tables.at(name).text << ";\n";
      } else {
        alter_table(out, old_t->second, n.tables.at(name));
      }
    } else if (kind == "function") {
      out << "\n" << create_or_replace(n.functions.at(name).text) << ";\n";
    } else if (kind == "acl") {
      write_grants(out, key, o, n, remade);
    } else {
      const std::string& text = n.objects.at(key);
      auto old_text = o.objects.find(key);
      const bool changed = old_text == o.objects.end() || old_text->second != text;
      const bool view_remade = kind == "alter_view" && remade.count("view " + name);
      // A trigger made again fires in the default mode until enabled ALWAYS again.
      const bool trigger_remade = kind == "always_trigger" && remade.count("trigger " + name);
      if (changed || view_remade || trigger_remade) out << text << ";\n";
    }
  }
}

}  // namespace

std::string upgrade_script(const std::string& extension, const std::string& from_version,
                           const std::string& to_version, const std::string& old_script,
                           const std::string& new_script) {
  const Script o = parse(old_script);
  const Script n = parse(new_script);
  std::ostringstream out;
  write_header(out, extension, from_version, to_version);
  const std::set<std::string> remade = write_drops(out, o, n);
  out << "\n-- Created or changed since " << from_version << ".\n";
  write_creates(out, o, n, remade);
  return out.str();
}

}  // namespace envdb::pg_upgrade
