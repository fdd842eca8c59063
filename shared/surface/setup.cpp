#include "surface/setup.hpp"

#include <openssl/opensslv.h>

#include "catalog/schema.hpp"
#include "catalog/upgrade.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/version.hpp"
#include "secrets/vault.hpp"

namespace envdb::setup {

namespace {

using T = api::Type;

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
      query_one(store,
                "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = "
                "'sys_tenant_database'")) {
    if (query_one(store,
                  "SELECT 1 AS present FROM sqlite_master WHERE name = 'sys_tenant_database_v4'"))
      fail(Code::conflict,
           "both a v4 table sys_tenant_database and sys_tenant_database_v4 exist; "
           "rename or drop one of them, then run init() again");
    store.exec("ALTER TABLE sys_tenant_database RENAME TO sys_tenant_database_v4");
    call.host.notice(
        "renamed the v4 table sys_tenant_database to sys_tenant_database_v4; "
        "migrate it with migrate_legacy_tenant_databases()");
  }
  if (store.dialect() == Dialect::sqlite) catalog::upgrade_sqlite_catalog(call.host, store);
  store.exec(catalog::control_plane_ddl(store.dialect()));
  execute(store,
          "INSERT INTO envdb.sys_config (key, value, updated_at) VALUES ('catalog_version', $1, "
          "$2::timestamptz) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = "
          "excluded.updated_at",
          {std::to_string(kCatalogVersion), now_iso()});
  // Credentials sealed before 0.3.0 are bound to their database's identity
  // now, where this connection holds their keys; the others still open and
  // wait for rewrap_credentials() (check() lists them as credential_unbound).
  const vault::ResealCount resealed = vault::reseal_unbound(call.host);
  if (resealed.resealed > 0 || resealed.left > 0)
    call.host.notice("re-sealed " + std::to_string(resealed.resealed) +
                     " credentials in envelope format 2; " + std::to_string(resealed.left) +
                     " under keys not loaded keep format 1 until rewrap_credentials()");
  tx.done();
  return std::string("envdb ") + kVersion + " catalog ready";
}

}  // namespace

std::vector<api::Function> functions() {
  return {
      {"version",
       {},
       T::text,
       version,
       api::kPure,
       api::kAdmin | api::kRouter | api::kReader,
       "envdb's semantic version"},
      {"build_info",
       {},
       T::json,
       build_info,
       0,
       api::kAdmin | api::kRouter | api::kReader,
       "version, compiler, OpenSSL and host versions"},
      {"init",
       {},
       T::text,
       init,
       api::kWrites | api::kSqliteOnly,
       0,
       "create or upgrade the control-plane catalog in this database"},
  };
}

}  // namespace envdb::setup
