#include "catalog/dataplane.hpp"

#include <openssl/evp.h>

#include <filesystem>

#include "catalog/audit.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/schema.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"

namespace envdb::dataplane {

namespace {

using T = api::Type;

constexpr size_t kMaxDatabaseName = 255;

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

// A given part of the identity must match the stamp's, unless the stamp does
// not know it yet (NULL).
void require_identity(const std::string& field, const std::optional<std::string>& given,
                      const std::optional<std::string>& stamped) {
  if (!given || !stamped || *given == *stamped) return;
  fail(Code::schema_mismatch, field + " " + quote_value(*given) +
                                  " does not match this database, which is stamped with " +
                                  quote_value(*stamped));
}

void require_database_name(const std::optional<std::string>& name) {
  if (!name) return;
  bool control = false;
  for (unsigned char ch : *name)
    if (ch < 0x20 || ch == 0x7f) control = true;
  if (name->empty() || name->size() > kMaxDatabaseName || control)
    fail(Code::invalid_parameter, "database_name " + quote_value(*name) + " must be 1 to " +
                                      std::to_string(kMaxDatabaseName) +
                                      " characters without control characters");
}

// A list the initializer can trust: versions 1..n in order.
void require_well_formed(const std::vector<Migration>& list) {
  if (list.empty()) throw Error(Code::internal, "the data-plane migration list is empty");
  for (size_t i = 0; i < list.size(); ++i)
    if (list[i].version != static_cast<int>(i + 1))
      throw Error(Code::internal, "data-plane migration " + std::to_string(i + 1) +
                                      " has version " + std::to_string(list[i].version) +
                                      "; versions must run 1, 2, ... without gaps");
}

std::string hex_sha256(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr) != 1)
    throw Error(Code::internal, "SHA-256 failed");
  static const char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(size) * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex += kDigits[digest[i] >> 4];
    hex += kDigits[digest[i] & 0x0f];
  }
  return hex;
}

// Checks the ledger against `list` (schema_mismatch on drift, a gap or a newer
// version) and applies what it lacks, recording each; returns the versions
// applied now. The caller holds the Atomic.
Json migrate(Store& store, const std::vector<Migration>& list) {
  const Dialect dialect = store.dialect();
  const int64_t latest = list.back().version;
  std::vector<std::pair<int64_t, std::string>> recorded;  // ascending
  if (table_exists(store, "sys_schema_migration"))
    for (auto& row : query(store,
                           "SELECT version, checksum FROM envdb.sys_schema_migration "
                           "ORDER BY version"))
      recorded.emplace_back(row.integer("version"), row.text("checksum"));
  if (!recorded.empty() && recorded.back().first > latest)
    fail(Code::schema_mismatch, "this database is at data-plane schema version " +
                                    std::to_string(recorded.back().first) +
                                    ", newer than this envdb's " + std::to_string(latest));
  for (size_t i = 0; i < recorded.size(); ++i) {
    const auto& [version, sum] = recorded[i];
    if (version != static_cast<int64_t>(i + 1))
      fail(Code::schema_mismatch, "this database records data-plane schema version " +
                                      std::to_string(version) + " without version " +
                                      std::to_string(i + 1));
    if (checksum(list[i], dialect) != sum)
      fail(Code::schema_mismatch, "data-plane schema version " + std::to_string(version) +
                                      " in this database has checksum " + quote_value(sum) +
                                      ", which is not this envdb's (schema drift)");
  }

  Json applied = Json::array();
  for (size_t i = recorded.size(); i < list.size(); ++i) {
    const Migration& m = list[i];
    store.exec(m.sql(dialect));
    execute(store,
            "INSERT INTO envdb.sys_schema_migration (version, checksum, applied_at) "
            "VALUES ($1, $2, $3::timestamptz)",
            {static_cast<int64_t>(m.version), checksum(m, dialect), now_iso()});
    applied.push_back(m.version);
  }

  return applied;
}

// ---- SQL functions -----------------------------------------------------------

Value init_environment_schema(api::Call& c) {
  const std::string environment_id = c.text("environment_id", 128);
  const auto organization_id = c.opt_text("organization_id", 128);
  const auto database_name = c.opt_text("database_name", kMaxDatabaseName);
  // A malformed argument is invalid_parameter wherever the call is made.
  require_id("environment_id", environment_id);
  if (organization_id) require_id("organization_id", *organization_id);
  require_database_name(database_name);
  // The data plane belongs in an environment database; a control plane that
  // received it by mistake would look like an environment to a router.
  if (table_exists(c.store, "sys_environment"))
    fail(Code::conflict,
         "this database holds envdb's control-plane catalog; init_environment_schema runs "
         "inside an environment database");
  return api::json_result(initialize(c.store, environment_id, organization_id, database_name));
}

Value environment_schema_version(api::Call& c) {
  auto version = schema_version(c.store);
  return version ? Value(*version) : null_value();
}

Value upgrade_environment_schemas(api::Call& c) {
  return api::json_result(upgrade_environments(c.host, migrations()));
}

}  // namespace

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list = {
      {1, "system tables: migration ledger, identity stamp, package installations",
       catalog::data_plane_ddl(Dialect::postgres), catalog::data_plane_ddl(Dialect::sqlite)},
  };
  return list;
}

int current_version() { return migrations().back().version; }

std::string checksum(const Migration& m, Dialect dialect) { return hex_sha256(m.sql(dialect)); }

std::optional<int64_t> schema_version(Store& store) {
  if (!table_exists(store, "sys_schema_migration")) return std::nullopt;
  auto row = query_one(store, "SELECT max(version) AS v FROM envdb.sys_schema_migration");
  if (!row || is_null((*row)["v"])) return std::nullopt;
  return row->integer("v");
}

Json initialize(Store& store, const std::string& environment_id,
                const std::optional<std::string>& organization_id,
                const std::optional<std::string>& database_name) {
  return initialize(store, environment_id, organization_id, database_name, migrations());
}

Json initialize(Store& store, const std::string& environment_id,
                const std::optional<std::string>& organization_id,
                const std::optional<std::string>& database_name,
                const std::vector<Migration>& list) {
  require_id("environment_id", environment_id);
  if (organization_id) require_id("organization_id", *organization_id);
  require_database_name(database_name);
  require_well_formed(list);
  const int64_t latest = list.back().version;

  Atomic tx(store, "envdb_dataplane");
  // A foreign identity stamp is refused before anything is written.
  std::optional<Row> stamp;
  if (table_exists(store, "sys_environment_info"))
    stamp = query_one(store,
                      "SELECT environment_id, organization_id, database_name, schema_version "
                      "FROM envdb.sys_environment_info LIMIT 1");
  if (stamp) {
    require_identity("environment_id", environment_id, stamp->opt_text("environment_id"));
    require_identity("organization_id", organization_id, stamp->opt_text("organization_id"));
    require_identity("database_name", database_name, stamp->opt_text("database_name"));
  }

  Json applied = migrate(store, list);

  if (!stamp) {
    execute(store,
            "INSERT INTO envdb.sys_environment_info (environment_id, organization_id, "
            "database_name, schema_version, initialized_at) VALUES ($1, $2, $3, $4, "
            "$5::timestamptz)",
            {environment_id, optional_value(organization_id), optional_value(database_name), latest,
             now_iso()});
  } else if (stamp->integer("schema_version") != latest ||
             (organization_id && !stamp->opt_text("organization_id")) ||
             (database_name && !stamp->opt_text("database_name"))) {
    // A version moves forward; an unknown part of the identity is recorded once.
    execute(store,
            "UPDATE envdb.sys_environment_info SET schema_version = $2, "
            "organization_id = COALESCE(organization_id, $3), "
            "database_name = COALESCE(database_name, $4) WHERE environment_id = $1",
            {environment_id, latest, optional_value(organization_id),
             optional_value(database_name)});
  }
  tx.done();
  return Json{{"environmentId", environment_id}, {"schemaVersion", latest}, {"applied", applied}};
}

Json migrate_unstamped(Store& store) {
  require_well_formed(migrations());
  Atomic tx(store, "envdb_dataplane");
  Json applied = migrate(store, migrations());
  tx.done();
  return applied;
}

Json upgrade_environments(Host& host, const std::vector<Migration>& list) {
  namespace fs = std::filesystem;
  const auto environments =
      query(host.store(),
            "SELECT e.id, e.organization_id, d.database_name, d.database_url "
            "FROM envdb.sys_environment e JOIN envdb.sys_environment_database d "
            "ON d.environment_id = e.id WHERE e.status = 'active' AND d.driver = 'sqlite' "
            "ORDER BY e.created_at, e.id");
  Json out = Json::array();
  for (const Row& env : environments) {
    const std::string id = env.text("id");
    const auto url = env.opt_text("database_url");
    Json entry{{"environmentId", id},  {"databaseName", env.text("database_name")},
               {"path", nullptr},      {"fromVersion", nullptr},
               {"toVersion", nullptr}, {"applied", Json::array()},
               {"error", nullptr}};
    try {
      if (!url || url->compare(0, 5, "file:") != 0 || url->size() == 5)
        fail(Code::invalid_parameter, "database_url " + quote_value(url.value_or("NULL")) +
                                          " of environment " + quote_value(id) +
                                          " is not a file: URL");
      // Inside sqlite_data_dir or not at all (a planted row is this entry's error).
      const std::string path = row_rules::sqlite_file(host, env.text("database_name"), url);
      entry["path"] = path;
      std::error_code ec;
      // Opening creates a missing file: report it instead of initializing an
      // empty database in its place.
      if (!fs::is_regular_file(path, ec))
        fail(Code::not_found, "database file " + quote_value(path) + " of environment " +
                                  quote_value(id) + " does not exist");
      auto file = host.open_database_file(path);
      const auto from = schema_version(*file);
      entry["fromVersion"] = from ? Json(*from) : Json(nullptr);
      entry["toVersion"] = entry["fromVersion"];
      const Json result = initialize(*file, id, env.opt_text("organization_id"),
                                     env.opt_text("database_name"), list);
      entry["toVersion"] = result["schemaVersion"];
      entry["applied"] = result["applied"];
    } catch (const std::exception& e) {
      entry["error"] = e.what();
    }
    if (!entry["applied"].empty()) {
      audit::Event e;
      e.action = "environment.upgrade_schema";
      e.organization_id = env.text("organization_id");
      e.environment_id = id;
      e.subject_type = "environment";
      e.subject_id = id;
      e.detail = Json{{"fromVersion", entry["fromVersion"]},
                      {"toVersion", entry["toVersion"]},
                      {"applied", entry["applied"]}};
      audit::record(host, e);
    }
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"init_environment_schema",
       {{"environment_id", T::text, nullptr},
        {"organization_id", T::text, "NULL"},
        {"database_name", T::text, "NULL"}},
       T::json,
       init_environment_schema,
       kDataPlane | kWrites,
       kAdmin,
       "create or upgrade envdb's system tables in this environment database and stamp it with "
       "the environment's identity; idempotent. organization_id and database_name may be "
       "omitted: a stamp keeps its values, a fresh database records NULL (filled in once by a "
       "later call). Another identity, a drifted checksum or a newer version is "
       "schema_mismatch"},
      {"environment_schema_version",
       {},
       T::integer,
       environment_schema_version,
       kDataPlane,
       kAdmin,
       "the data-plane schema version of this database, NULL when it was never initialized"},
      {"upgrade_environment_schemas",
       {},
       T::json,
       upgrade_environment_schemas,
       kSqliteOnly | kWrites,
       kAdmin,
       "bring every active sqlite-driver environment's database file to this envdb's "
       "data-plane version; one entry per environment {environmentId, databaseName, path, "
       "fromVersion, toVersion, applied, error}, an error reported in its entry"},
  };
}

}  // namespace envdb::dataplane
