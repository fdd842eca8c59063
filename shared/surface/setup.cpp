#include "surface/setup.hpp"

#include <openssl/opensslv.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "catalog/schema.hpp"
#include "core/clock.hpp"
#include "secrets/credentials.hpp"
#include "core/errors.hpp"
#include "core/version.hpp"

namespace envdb::setup {

namespace {

struct Setting {
  const char* key;
  const char* sqlite_default;
  const char* postgres_default;
  bool seconds;  // a non-negative integer number of seconds
};

const Setting kSettings[] = {
    {"default_driver", "sqlite", "postgres", false},
    {"default_region", "default", "default", false},
    {"sqlite_data_dir", "envdb_environments", "envdb_environments", false},
    {"rotation_grace_seconds", "86400", "86400", true},
    {"credential_ttl_seconds", "0", "0", true},
    // check() calls a running job stale when it was claimed longer ago (0: never).
    {"job_claim_timeout_seconds", "3600", "3600", true},
    // drop_environment_database waits this long after the archive (0: no wait).
    {"drop_grace_seconds", "604800", "604800", true},
    // postgres driver: on which servers environment logins may connect only to
    // their own database (hosts: registered database hosts; all: the local
    // server too; off: never).
    {"restrict_server_connect", "hosts", "hosts", false},
    // reveal_credential where no audit event can be written (a hot standby):
    // refused unless this is on.
    {"allow_unaudited_reveal", "off", "off", false},
};

const Setting& find_setting(const std::string& key) {
  for (auto& s : kSettings)
    if (key == s.key) return s;
  std::string known;
  for (auto& s : kSettings) known += std::string(known.empty() ? "" : ", ") + s.key;
  fail(Code::invalid_parameter, "key " + quote_value(key) + " is not a setting (one of " + known + ")");
}

void validate(const Setting& s, const std::string& value) {
  if (s.seconds) {
    bool digits = !value.empty() && value.size() <= 12;
    for (char c : value) digits = digits && c >= '0' && c <= '9';
    if (!digits)
      fail(Code::invalid_parameter,
           std::string("value for ") + s.key + " must be a whole number of seconds, got " +
               quote_value(value));
  } else if (std::strcmp(s.key, "default_driver") == 0) {
    if (value != "sqlite" && value != "postgres" && value != "turso")
      fail(Code::invalid_parameter, "value for default_driver must be sqlite, postgres or turso, got " +
                                        quote_value(value));
  } else if (std::strcmp(s.key, "restrict_server_connect") == 0) {
    if (value != "hosts" && value != "all" && value != "off")
      fail(Code::invalid_parameter,
           "value for restrict_server_connect must be hosts, all or off, got " + quote_value(value));
  } else if (std::strcmp(s.key, "allow_unaudited_reveal") == 0) {
    if (value != "on" && value != "off")
      fail(Code::invalid_parameter,
           "value for allow_unaudited_reveal must be on or off, got " + quote_value(value));
  } else if (value.empty()) {
    fail(Code::invalid_parameter, std::string("value for ") + s.key + " must not be empty");
  }
}

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
    o.type = m[2].str() == "TABLE" ? "table" : m[2].str() == "INDEX" ? "index"
             : m[2].str() == "TRIGGER" ? "trigger" : "view";
    o.name = m[3];
    o.sql = "CREATE " + m[1].str() + m[2].str() + " " + stmt.substr(m.length(0) - o.name.size());
    o.table = o.name;
    std::smatch on;
    const std::string rest = stmt.substr(m.length(0));
    if ((o.type == "index" || o.type == "trigger") && std::regex_search(rest, on, kOn)) o.table = on[1];
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
    if (c.not_null && c.fallback == catalog::Default::none) rules.push_back(c.name + " IS NOT NULL");
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
  if (!query_one(store, "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = 'sys_config'"))
    return 0;
  auto recorded = query_one(store, "SELECT value FROM sys_config WHERE key = 'catalog_version'");
  if (!recorded || !recorded->opt_text("value")) return 1;
  const std::string text = recorded->text("value");
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    fail(Code::schema_mismatch, "sys_config holds catalog_version " + quote_value(text) +
                                    ", which is not a catalog version; the control database is damaged");
  return std::stoll(text);
}

// An older envdb cannot know what a newer catalog means.
void refuse_newer_catalog(int64_t found) {
  if (found > kCatalogVersion)
    fail(Code::schema_mismatch, "this database's envdb catalog is version " + std::to_string(found) +
                                    ", newer than this envdb " + kVersion + " (catalog version " +
                                    std::to_string(kCatalogVersion) + "); use a newer envdb");
}

int64_t upgrade_sqlite_catalog(Host& host, Store& store) {
  const int64_t found = stored_sqlite_catalog_version(store);
  if (found == 0) return 0;
  refuse_newer_catalog(found);
  const std::vector<SqliteObject> want = sqlite_objects(catalog::control_plane_ddl(Dialect::sqlite));
  std::map<std::string, const SqliteObject*> wanted;
  std::set<std::string> tables;
  for (auto& o : want) {
    wanted[o.name] = &o;
    if (o.type == "table") tables.insert(o.name);
  }
  std::vector<std::string> rebuild;
  std::vector<std::string> drops;
  for (const Row& row : query(store, "SELECT type, name, tbl_name, sql FROM sqlite_master "
                                     "WHERE sql IS NOT NULL ORDER BY rowid")) {
    const std::string type = row.text("type"), name = row.text("name");
    auto w = wanted.find(name);
    const bool same = w != wanted.end() && w->second->type == type && w->second->sql == row.text("sql");
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
    for (const Row& c : query(store, "SELECT name FROM pragma_table_info($1)", {name})) {
      if (!now.count(c.text("name")))
        fail(Code::schema_mismatch, "table " + name + " has a column " + c.text("name") +
                                        " this envdb does not define; an upgrade never drops a column");
      kept += (kept.empty() ? "" : ", ") + c.text("name");
    }
    const std::string saved = "envdb_upgrade_" + name;
    store.exec("DROP TABLE IF EXISTS temp." + saved);
    store.exec("CREATE TEMP TABLE " + saved + " AS SELECT * FROM main." + name);
    store.exec("DROP TABLE main." + name);
    store.exec(wanted[name]->sql);
    store.exec("INSERT INTO main." + name + " (" + kept + ") SELECT " + kept + " FROM temp." + saved);
    store.exec("DROP TABLE temp." + saved);
  }
  host.notice("upgraded the envdb catalog from catalog version " + std::to_string(found) + " to " +
              std::to_string(kCatalogVersion) + " (" + std::to_string(rebuild.size()) +
              " tables rebuilt, every row kept)");
  return found;
}

}  // namespace

bool needs_catalog(const api::Function& fn) {
  static const std::set<std::string> without = {"version", "build_info", "init", "keyring_add",
                                                "keyring_use"};
  return (fn.flags & api::kDataPlane) == 0 && !without.count(fn.name);
}

void require_current_catalog(Store& store) {
  const int64_t found = stored_sqlite_catalog_version(store);
  if (found == 0) fail(Code::not_found, "this database has no envdb catalog; run SELECT envdb_init() first");
  if (found < kCatalogVersion)
    fail(Code::schema_mismatch, "this database's envdb catalog is version " + std::to_string(found) +
                                    " but the extension (" + kVersion + ") uses catalog " +
                                    std::to_string(kCatalogVersion) +
                                    "; run SELECT envdb_init() to upgrade it in place");
  refuse_newer_catalog(found);
}

Value version(api::Call&) { return std::string(kVersion); }

Value build_info(api::Call& call) {
  Json j;
  j["version"] = kVersion;
  j["catalogVersion"] = kCatalogVersion;
#ifdef NDEBUG
  j["buildType"] = "release";
#else
  j["buildType"] = "debug";
#endif
  j["compiler"] = __VERSION__;
  j["openssl"] = OPENSSL_VERSION_TEXT;
  j["host"] = call.host.name();
  const Json host_info = call.host.info();
  for (auto& [k, v] : host_info.items()) j[k] = v;
  return api::json_result(j);
}

Value init(api::Call& call) {
  Store& store = call.store;
  Atomic tx(store);
  // A v4 sys_tenant_database TABLE would take the deprecated view's name:
  // keep its rows, under sys_tenant_database_v4, for migrate_legacy_tenant_databases.
  if (store.dialect() == Dialect::sqlite &&
      query_one(store, "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = "
                       "'sys_tenant_database'")) {
    if (query_one(store, "SELECT 1 AS present FROM sqlite_master WHERE name = 'sys_tenant_database_v4'"))
      fail(Code::conflict, "both a v4 table sys_tenant_database and sys_tenant_database_v4 exist; "
                           "rename or drop one of them, then run init() again");
    store.exec("ALTER TABLE sys_tenant_database RENAME TO sys_tenant_database_v4");
    call.host.notice("renamed the v4 table sys_tenant_database to sys_tenant_database_v4; "
                     "migrate it with migrate_legacy_tenant_databases()");
  }
  if (store.dialect() == Dialect::sqlite) upgrade_sqlite_catalog(call.host, store);
  store.exec(catalog::control_plane_ddl(store.dialect()));
  execute(store,
          "INSERT INTO envdb.sys_config (key, value, updated_at) VALUES ('catalog_version', $1, "
          "$2::timestamptz) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = "
          "excluded.updated_at",
          {std::to_string(kCatalogVersion), now_iso()});
  // Credentials sealed before 0.3.0 are bound to their database's identity
  // now, where this connection holds their keys; the others still open and
  // wait for rewrap_credentials() (check() lists them as credential_unbound).
  const credentials::ResealCount resealed = credentials::reseal_unbound(call.host);
  if (resealed.resealed > 0 || resealed.left > 0)
    call.host.notice("re-sealed " + std::to_string(resealed.resealed) +
                     " credentials in envelope format 2; " + std::to_string(resealed.left) +
                     " under keys not loaded keep format 1 until rewrap_credentials()");
  tx.done();
  return std::string("envdb ") + kVersion + " catalog ready";
}

std::string setting(Host& host, const std::string& key) {
  const Setting& s = find_setting(key);
  auto row = query_one(host.store(), "SELECT value FROM envdb.sys_config WHERE key = $1", {key});
  if (row && row->opt_text("value")) return row->text("value");
  return std::strcmp(host.name(), "postgres") == 0 ? s.postgres_default : s.sqlite_default;
}

int64_t setting_seconds(Host& host, const std::string& key) {
  return std::stoll(setting(host, key));
}

std::string sqlite_data_dir(Host& host) {
  namespace fs = std::filesystem;
  const std::string value = setting(host, "sqlite_data_dir");
  fs::path dir(value);
  std::error_code ec;
  if (dir.is_relative()) {
    const auto control = host.control_database_path();
    if (control && !control->empty()) {
      const fs::path base = fs::absolute(fs::path(*control), ec).parent_path();
      if (!ec) return (base / dir).lexically_normal().string();
    }
  }
  dir = fs::absolute(dir, ec);
  if (ec)
    fail(Code::invalid_parameter,
         "sqlite_data_dir " + quote_value(value) + " cannot be resolved: " + ec.message());
  return dir.lexically_normal().string();
}

Value config(api::Call& call) {
  const std::string key = call.text("key", 64);
  const Setting& s = find_setting(key);
  if (!call.given("value")) return setting(call.host, key);
  // A number of seconds may come as a number (better-sqlite3 binds 3600 as
  // REAL 3600.0); every other setting is text.
  const std::string value = s.seconds ? *call.opt_text_or_number("value", 4096)
                                      : call.text("value", 4096);
  validate(s, value);
  Atomic tx(call.store);
  execute(call.store,
          "INSERT INTO envdb.sys_config (key, value, updated_at) VALUES ($1, $2, $3::timestamptz) "
          "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
          {key, value, now_iso()});
  tx.done();
  return value;
}

}  // namespace envdb::setup
