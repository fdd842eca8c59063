#include "setup.hpp"

#include <openssl/opensslv.h>

#include <cstring>

#include "catalog.hpp"
#include "clock.hpp"
#include "errors.hpp"
#include "version.hpp"

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
  } else if (value.empty()) {
    fail(Code::invalid_parameter, std::string("value for ") + s.key + " must not be empty");
  }
}

}  // namespace

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
  store.exec(catalog::control_plane_ddl(store.dialect()));
  execute(store,
          "INSERT INTO envdb.sys_config (key, value, updated_at) VALUES ('catalog_version', $1, "
          "$2::timestamptz) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = "
          "excluded.updated_at",
          {std::to_string(kCatalogVersion), now_iso()});
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

Value config(api::Call& call) {
  const std::string key = call.text("key", 64);
  const Setting& s = find_setting(key);
  if (!call.given("value")) return setting(call.host, key);
  const std::string value = call.text("value", 4096);
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
