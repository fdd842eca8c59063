#include "catalog/upgrade.hpp"

#include <map>
#include <regex>
#include <set>

#include "catalog/schema.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/version.hpp"

namespace envdb::catalog {

namespace {

// One object the SQLite catalog DDL creates, and the text sqlite_master keeps
// for it (the statement without IF NOT EXISTS and its semicolon).
struct SqliteObject {
  std::string type, name, table, sql;
};

std::vector<SqliteObject> sqlite_objects(const std::string& ddl) {
  static const std::regex kCreate(
      "^CREATE (UNIQUE )?(TABLE|INDEX|TRIGGER|VIEW) IF NOT EXISTS ([A-Za-z0-9_]+)");
  static const std::regex kOn(" ON ([A-Za-z0-9_]+)");
  std::vector<SqliteObject> out;
  // Each statement of the generated DDL ends a line with ';' (a trigger's
  // inner statements are followed by a space).
  size_t start = 0;
  while (start < ddl.size()) {
    size_t end = ddl.find(";\n", start);
    if (end == std::string::npos) end = ddl.size();
    const std::string stmt = ddl.substr(start, end - start);
    start = end + 2;
    if (stmt.find_first_not_of(" \n") == std::string::npos) continue;
    std::smatch m;
    if (!std::regex_search(stmt, m, kCreate))
      fail(Code::internal, "catalog DDL statement not understood: " + stmt.substr(0, 60));
    SqliteObject o;
    o.type = m[2].str() == "TABLE"     ? "table"
             : m[2].str() == "INDEX"   ? "index"
             : m[2].str() == "TRIGGER" ? "trigger"
                                       : "view";
    o.name = m[3];
    o.sql = "CREATE " + m[1].str() + m[2].str() + " " + stmt.substr(m.length(0) - o.name.size());
    o.table = o.name;
    std::smatch on;
    const std::string rest = stmt.substr(m.length(0));
    if ((o.type == "index" || o.type == "trigger") && std::regex_search(rest, on, kOn))
      o.table = on[1];
    out.push_back(o);
  }
  return out;
}

// Before a table is rebuilt under this version's constraints: a row that
// breaks one (a CHECK this version adds, written behind envdb's back) is
// schema_mismatch naming the table, the row and the column, with nothing
// changed, rather than the engine's bare "CHECK constraint failed" halfway
// through the copy. Only columns this version's table and the old one share.
void require_rows_fit(Store& store, const catalog::Table& t) {
  std::set<std::string> present;
  for (const Row& c : query(store, "SELECT name FROM pragma_table_info($1)", {t.name}))
    present.insert(c.text("name"));
  if (!present.count("id")) return;
  for (const catalog::Column& c : t.columns) {
    if (!present.count(c.name)) continue;
    std::vector<std::string> rules;
    if (!c.one_of.empty()) {
      std::string list;
      for (const std::string& v : c.one_of) list += (list.empty() ? "'" : ", '") + v + "'";
      rules.push_back(c.name + " IN (" + list + ")");
    }
    if (!c.check_sqlite.empty()) rules.push_back(c.check_sqlite);
    if (c.not_null && c.fallback == catalog::Default::none)
      rules.push_back(c.name + " IS NOT NULL");
    for (const std::string& rule : rules) {
      // A rule may name another column; skip it when that column is new.
      bool names_new_column = false;
      for (const catalog::Column& other : t.columns)
        if (!present.count(other.name) && rule.find(other.name) != std::string::npos)
          names_new_column = true;
      if (names_new_column) continue;
      auto bad = query_one(store, "SELECT id, " + c.name + " AS value FROM main." + t.name +
                                      " WHERE NOT (" + rule + ") ORDER BY id LIMIT 1");
      if (bad)
        fail(Code::schema_mismatch,
             "table " + t.name + " row " + quote_value(bad->text("id")) + " has " + c.name + " " +
                 quote_value(bad->opt_text("value").value_or("NULL")) +
                 ", which this version's catalog refuses (CHECK " + rule +
                 "); envdb never writes such a value, so the row was changed behind its back: "
                 "correct or delete it, then run init() again (nothing was changed)");
    }
  }
}

// Brings an existing SQLite control-plane catalog to this version's DDL, in
// the caller's transaction: envdb's triggers, indexes and views that differ
// are dropped (and made again by the DDL that follows), and a table whose
// definition differs is rebuilt with every row kept (SQLite's ALTER TABLE
// cannot change a constraint). Returns the catalog version found, or 0 for a
// database without the catalog.
// The catalog version a SQLite control database records: 0 without a
// catalog, 1 for a 0.1.0 catalog (which did not record it).
int64_t stored_sqlite_catalog_version(Store& store) {
  if (!query_one(
          store,
          "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'sys_config'"))
    return 0;
  auto recorded = query_one(store, "SELECT value FROM sys_config WHERE key = 'catalog_version'");
  if (!recorded || !recorded->opt_text("value")) return 1;
  const std::string text = recorded->text("value");
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    fail(Code::schema_mismatch,
         "sys_config holds catalog_version " + quote_value(text) +
             ", which is not a catalog version; the control database is damaged");
  return std::stoll(text);
}

// An older envdb cannot know what a newer catalog means.
void refuse_newer_catalog(int64_t found) {
  if (found > kCatalogVersion)
    fail(Code::schema_mismatch, "this database's envdb catalog is version " +
                                    std::to_string(found) + ", newer than this envdb " + kVersion +
                                    " (catalog version " + std::to_string(kCatalogVersion) +
                                    "); use a newer envdb");
}

}  // namespace

int64_t upgrade_sqlite_catalog(Host& host, Store& store) {
  const int64_t found = stored_sqlite_catalog_version(store);
  if (found == 0) return 0;
  refuse_newer_catalog(found);
  const std::vector<SqliteObject> want =
      sqlite_objects(catalog::control_plane_ddl(Dialect::sqlite));
  std::map<std::string, const SqliteObject*> wanted;
  std::set<std::string> tables;
  for (auto& o : want) {
    wanted[o.name] = &o;
    if (o.type == "table") tables.insert(o.name);
  }
  std::vector<std::string> rebuild;
  std::vector<std::string> drops;
  for (const Row& row : query(store,
                              "SELECT type, name, tbl_name, sql FROM sqlite_master "
                              "WHERE sql IS NOT NULL ORDER BY rowid")) {
    const std::string type = row.text("type"), name = row.text("name");
    auto w = wanted.find(name);
    const bool same = w != wanted.end() && w->second->type == type &&
                      w->second->sql == row.text("sql");
    if (type == "table") {
      if (w != wanted.end() && !same) rebuild.push_back(name);
    } else if (type == "view") {
      if (w != wanted.end() && !same) drops.push_back("DROP VIEW " + name);
    } else if (!same && tables.count(row.text("tbl_name")) && name.compare(0, 4, "sys_") == 0) {
      // envdb names its triggers and indexes sys_<table>_...: one that is no
      // longer defined, or defined differently, goes.
      drops.push_back("DROP " + std::string(type == "index" ? "INDEX " : "TRIGGER ") + name);
    }
  }
  if (rebuild.empty() && drops.empty()) return found;
  // A table is dropped and made again while others refer to it: with
  // foreign_keys on, the check waits for the commit, when the rows are back.
  store.exec("PRAGMA defer_foreign_keys = ON");
  for (const std::string& d : drops) store.exec(d);
  for (const std::string& name : rebuild) require_rows_fit(store, catalog::table(name));
  for (const std::string& name : rebuild) {
    const catalog::Table& t = catalog::table(name);
    std::set<std::string> now;
    for (auto& c : t.columns) now.insert(c.name);
    std::string kept;
    std::set<std::string> had;
    for (const Row& c : query(store, "SELECT name FROM pragma_table_info($1)", {name})) {
      if (!now.count(c.text("name")))
        fail(Code::schema_mismatch,
             "table " + name + " has a column " + c.text("name") +
                 " this envdb does not define; an upgrade never drops a column");
      kept += (kept.empty() ? "" : ", ") + c.text("name");
      had.insert(c.text("name"));
    }
    const std::string saved = "envdb_upgrade_" + name;
    store.exec("DROP TABLE IF EXISTS temp." + saved);
    store.exec("CREATE TEMP TABLE " + saved + " AS SELECT * FROM main." + name);
    store.exec("DROP TABLE main." + name);
    store.exec(wanted[name]->sql);
    if (!t.numbered_column.empty() && !had.count(t.numbered_column)) {
      // A numbered column the rows did not have: numbered in the order they happened.
      store.exec("INSERT INTO main." + name + " (" + kept + ", " + t.numbered_column + ") SELECT " +
                 kept + ", row_number() OVER (ORDER BY " + t.numbered_order + ") FROM temp." +
                 saved);
    } else {
      store.exec("INSERT INTO main." + name + " (" + kept + ") SELECT " + kept + " FROM temp." +
                 saved);
    }
    store.exec("DROP TABLE temp." + saved);
  }
  host.notice("upgraded the envdb catalog from catalog version " + std::to_string(found) + " to " +
              std::to_string(kCatalogVersion) + " (" + std::to_string(rebuild.size()) +
              " tables rebuilt, every row kept)");
  return found;
}

bool needs_catalog(const api::Function& fn) {
  static const std::set<std::string> without = {"version", "build_info", "init", "keyring_add",
                                                "keyring_use"};
  return (fn.flags & api::kDataPlane) == 0 && !without.count(fn.name);
}

void require_current_catalog(Store& store) {
  const int64_t found = stored_sqlite_catalog_version(store);
  if (found == 0)
    fail(Code::not_found, "this database has no envdb catalog; run SELECT envdb_init() first");
  if (found < kCatalogVersion)
    fail(Code::schema_mismatch, "this database's envdb catalog is version " +
                                    std::to_string(found) + " but the extension (" + kVersion +
                                    ") uses catalog " + std::to_string(kCatalogVersion) +
                                    "; run SELECT envdb_init() to upgrade it in place");
  refuse_newer_catalog(found);
}

}  // namespace envdb::catalog
