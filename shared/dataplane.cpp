#include "dataplane.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <map>

#include "clock.hpp"
#include "errors.hpp"
#include "ids.hpp"

namespace envdb::dataplane {

namespace {

// The data-plane schema, one migration per version. Never edit a migration
// that has shipped: its checksum is recorded in every environment database,
// and a different text is reported as drift (schema_mismatch). Add a new
// version instead.
const char* const kV1 = R"sql(
CREATE TABLE IF NOT EXISTS sys_schema_migration (
  version INTEGER PRIMARY KEY,
  checksum TEXT NOT NULL,
  applied_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sys_environment_info (
  environment_id TEXT NOT NULL PRIMARY KEY,
  organization_id TEXT NOT NULL,
  database_name TEXT NOT NULL,
  schema_version INTEGER NOT NULL,
  initialized_at TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS sys_environment_info_one_row BEFORE INSERT ON sys_environment_info
  WHEN (SELECT count(*) FROM sys_environment_info) > 0
  BEGIN SELECT RAISE(ABORT, 'schema_mismatch: sys_environment_info holds exactly one row'); END;
CREATE TRIGGER IF NOT EXISTS sys_environment_info_identity
  BEFORE UPDATE OF environment_id, organization_id, database_name ON sys_environment_info
  WHEN OLD.environment_id IS NOT NEW.environment_id
    OR OLD.organization_id IS NOT NEW.organization_id
    OR OLD.database_name IS NOT NEW.database_name
  BEGIN SELECT RAISE(ABORT, 'schema_mismatch: the identity stamp of an environment database never changes'); END;
CREATE TABLE IF NOT EXISTS sys_package_installation (
  id TEXT NOT NULL PRIMARY KEY,
  package_id TEXT NOT NULL UNIQUE,
  version TEXT NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('installing', 'active', 'disabled', 'uninstalling', 'failed')),
  installed_at TEXT,
  installed_by TEXT,
  config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
)sql";

bool table_exists(Store& store, const std::string& name) {
  if (store.dialect() == Dialect::postgres)
    return query_one(store,
                     "SELECT 1 AS present FROM pg_catalog.pg_tables WHERE schemaname = 'envdb' "
                     "AND tablename = $1",
                     {name})
        .has_value();
  return query_one(store,
                   "SELECT 1 AS present FROM sqlite_master WHERE type = 'table' AND name = $1",
                   {name})
      .has_value();
}

void require_identity(const std::string& field, const std::string& expected,
                      const std::string& stamped) {
  if (expected != stamped)
    fail(Code::schema_mismatch, field + " " + quote_value(expected) +
                                    " does not match this database, which is stamped with " +
                                    quote_value(stamped));
}

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "system tables: migration ledger, identity stamp, package installations", kV1},
  };
  return list;
}

int current_version() { return migrations().back().version; }

std::string checksum(const Migration& m) {
  const std::string sql = m.sqlite_sql;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(sql.data(), sql.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw Error(Code::internal, "SHA-256 failed");
  std::string hex;
  hex.reserve(size * 2);
  char buf[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(buf, sizeof buf, "%02x", digest[i]);
    hex += buf;
  }
  return hex;
}

std::optional<int64_t> schema_version(Store& store) {
  if (!table_exists(store, "sys_schema_migration")) return std::nullopt;
  auto row = query_one(store, "SELECT max(version) AS v FROM envdb.sys_schema_migration");
  if (!row || is_null((*row)["v"])) return std::nullopt;
  return row->integer("v");
}

Json initialize(Store& store, const std::string& environment_id,
                const std::string& organization_id, const std::string& database_name) {
  require_id("environment_id", environment_id);
  require_id("organization_id", organization_id);
  if (database_name.empty() || database_name.size() > 255)
    fail(Code::invalid_parameter, "database_name " + quote_value(database_name) +
                                      " must be 1 to 255 characters");
  if (store.dialect() != Dialect::sqlite)
    throw Error(Code::internal, "the data-plane schema is only defined for SQLite databases so far");

  Atomic tx(store, "envdb_dataplane");
  // A foreign identity stamp is refused before anything is written.
  const bool stamped = table_exists(store, "sys_environment_info");
  if (stamped) {
    auto info = query_one(store,
                          "SELECT environment_id, organization_id, database_name "
                          "FROM envdb.sys_environment_info LIMIT 1");
    if (info) {
      require_identity("environment_id", environment_id, info->text("environment_id"));
      require_identity("organization_id", organization_id, info->text("organization_id"));
      require_identity("database_name", database_name, info->text("database_name"));
    }
  }

  std::map<int64_t, std::string> recorded;
  if (table_exists(store, "sys_schema_migration"))
    for (auto& row : query(store, "SELECT version, checksum FROM envdb.sys_schema_migration "
                                  "ORDER BY version"))
      recorded[row.integer("version")] = row.text("checksum");
  for (auto& [version, sum] : recorded) {
    if (version > current_version())
      fail(Code::schema_mismatch, "this database is at data-plane schema version " +
                                      std::to_string(version) + ", newer than this envdb's " +
                                      std::to_string(current_version()));
    const Migration* m = nullptr;
    for (auto& candidate : migrations())
      if (candidate.version == version) m = &candidate;
    if (!m || checksum(*m) != sum)
      fail(Code::schema_mismatch, "data-plane schema version " + std::to_string(version) +
                                      " in this database has checksum " + quote_value(sum) +
                                      ", which is not this envdb's (schema drift)");
  }

  Json applied = Json::array();
  for (auto& m : migrations()) {
    if (recorded.count(m.version)) continue;
    store.exec(m.sqlite_sql);
    execute(store,
            "INSERT INTO envdb.sys_schema_migration (version, checksum, applied_at) "
            "VALUES ($1, $2, $3::timestamptz)",
            {static_cast<int64_t>(m.version), checksum(m), now_iso()});
    applied.push_back(m.version);
  }

  const int64_t version = current_version();
  auto info = query_one(store, "SELECT schema_version FROM envdb.sys_environment_info LIMIT 1");
  if (!info) {
    execute(store,
            "INSERT INTO envdb.sys_environment_info (environment_id, organization_id, "
            "database_name, schema_version, initialized_at) VALUES ($1, $2, $3, $4, "
            "$5::timestamptz)",
            {environment_id, organization_id, database_name, version, now_iso()});
  } else if (info->integer("schema_version") != version) {
    execute(store, "UPDATE envdb.sys_environment_info SET schema_version = $1", {version});
  }
  tx.done();
  return Json{{"environmentId", environment_id}, {"schemaVersion", version}, {"applied", applied}};
}

}  // namespace envdb::dataplane
