#include "tenancy/usage.hpp"

#include <cstring>
#include <filesystem>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "postgres/hosts.hpp"
#include "postgres/statements.hpp"

namespace envdb::usage {

namespace {

using T = api::Type;

// A petabyte in megabytes: larger limits are not limits.
constexpr int64_t kMaxLimitMb = 1024LL * 1024 * 1024;

bool is_sqlite_host(Host& host) { return std::strcmp(host.name(), "sqlite") == 0; }

std::optional<int64_t> stored_integer(const Row& r, const char* column) {
  if (is_null(r[column])) return std::nullopt;
  return r.integer(column);
}

// The file and its write-ahead log: what the database occupies on disk.
int64_t sqlite_bytes(Host& host, const Row& db) {
  namespace fs = std::filesystem;
  const std::string path =
      row_rules::sqlite_file(host, db.text("database_name"), db.opt_text("database_url"));
  int64_t total = 0;
  for (const std::string& p : {path, path + "-wal"}) {
    std::error_code ec;
    const auto size = fs::file_size(p, ec);
    if (!ec) total += static_cast<int64_t>(size);
  }
  return total;
}

// The size of a database of the server the store runs on; nullopt when it
// does not exist (yet).
std::optional<int64_t> local_postgres_bytes(Store& store, const std::string& database_name) {
  auto row = query_one(store,
                       "SELECT pg_catalog.pg_database_size(d.oid) AS bytes FROM "
                       "pg_catalog.pg_database d WHERE d.datname = $1",
                       {database_name});
  if (!row) return std::nullopt;
  return row->integer("bytes");
}

// The decision for one database: read-only when at or over its limit.
// Returns the new state when it changed.
std::optional<bool> decide(Host& host, const std::string& database_id) {
  Store& store = host.store();
  auto row = query_one(store,
                       "SELECT d.id, d.environment_id, d.storage_limit_mb, d.usage_bytes, "
                       "d.storage_read_only, e.organization_id FROM "
                       "envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = "
                       "d.environment_id WHERE d.id = $1",
                       {database_id});
  if (!row) return std::nullopt;
  const auto limit = stored_integer(*row, "storage_limit_mb");
  const auto bytes = stored_integer(*row, "usage_bytes");
  const bool over = limit && bytes && *bytes >= *limit * kMegabyte;
  if (over == row->boolean("storage_read_only")) return std::nullopt;
  execute(store,
          "UPDATE envdb.sys_environment_database SET storage_read_only = $2, updated_at = "
          "$3::timestamptz WHERE id = $1",
          {database_id, over, now_iso()});
  audit::record(host,
                {over ? "database.storage_read_only" : "database.storage_writable",
                 row->text("organization_id"), row->text("environment_id"), "database", database_id,
                 Json{{"storageLimitMb", limit ? Json(*limit) : Json(nullptr)},
                      {"usageBytes", bytes ? Json(*bytes) : Json(nullptr)}}});
  return over;
}

std::string usage_environment_id(api::Call& c) {
  std::string id = c.text("environment_id");
  require_id("environment_id", id);
  return id;
}

Row database_of(Store& store, const std::string& environment_id) {
  (void)records::load_environment(store, "environment_id", environment_id);
  auto db = records::database_of_environment(store, environment_id);
  if (!db)
    fail(Code::not_found, "environment_id " + quote_value(environment_id) + " has no database");
  return std::move(*db);
}

void require_not_dropped(const Row& db, const std::string& environment_id) {
  if (auto dropped = db.opt_text("dropped_at"))
    fail(Code::invalid_transition, "the database of environment_id " + quote_value(environment_id) +
                                       " was dropped at " + *dropped + "; it has no usage");
}

Json database_now(Store& store, const std::string& database_id) {
  return records::database_json(records::load_database(store, "database_id", database_id));
}

// A database measured now, by whatever this host can reach.
int64_t measure(Host& host, const Row& db, const std::string& environment_id) {
  const std::string driver = db.text("driver");
  const std::string name = db.text("database_name");
  if (driver == "sqlite") {
    if (!is_sqlite_host(host))
      fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                               " is a sqlite database, measured from its file by the SQLite host");
    return sqlite_bytes(host, db);
  }
  if (driver == "turso")
    fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                             " is a turso database: its worker reports its size with "
                             "report_environment_usage");
  if (is_null(db["provisioned_at"]))
    fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                             " has no database to measure yet (it is being provisioned)");
  const auto placed = query_one(host.store(),
                                "SELECT host_id FROM envdb.sys_environment_database WHERE id = $1",
                                {db.text("id")});
  const auto host_id = placed ? placed->opt_text("host_id") : std::nullopt;
  if (!host_id) {
    if (!is_postgres(host.store()))
      fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                               " is a postgres database this host cannot reach; report its size "
                               "with report_environment_usage");
    if (auto bytes = local_postgres_bytes(host.store(), name)) return *bytes;
    fail(Code::conflict, "the database of environment_id " + quote_value(environment_id) +
                             " does not exist on this server");
  }
  const postgres::Server server = postgres::load_server(host, *host_id);
  auto session = host.connect_server(server);
  if (!session)
    fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                             " lives on database host " + quote_value(server.name) +
                             ", which this host cannot reach; report its size with "
                             "report_environment_usage");
  auto bytes = session->query_value(size_sql(name));
  if (!bytes)
    fail(Code::conflict, "the database of environment_id " + quote_value(environment_id) +
                             " does not exist on database host " + quote_value(server.name));
  return std::stoll(*bytes);
}

Value measure_environment_usage(api::Call& c) {
  const std::string id = usage_environment_id(c);
  Store& store = c.store;
  const Row db = database_of(store, id);
  require_not_dropped(db, id);
  const int64_t bytes = measure(c.host, db, id);
  Atomic tx(store);
  record(c.host, db.text("id"), bytes);
  tx.done();
  return api::json_result(Json{{"database", database_now(store, db.text("id"))}});
}

Value report_environment_usage(api::Call& c) {
  const std::string id = usage_environment_id(c);
  const auto bytes = c.opt_integer("bytes");
  if (!bytes) fail(Code::invalid_parameter, "bytes is required");
  if (*bytes < 0)
    fail(Code::invalid_parameter, "bytes " + std::to_string(*bytes) + " must not be negative");
  Store& store = c.store;
  const Row db = database_of(store, id);
  require_not_dropped(db, id);
  if (db.text("driver") == "sqlite")
    fail(Code::conflict, "environment_id " + quote_value(id) +
                             " is a sqlite database, measured from its file "
                             "(measure_environment_usage); its size is not reported");
  Atomic tx(store);
  record(c.host, db.text("id"), *bytes);
  tx.done();
  return api::json_result(Json{{"database", database_now(store, db.text("id"))}});
}

Value set_storage_limit(api::Call& c) {
  const std::string id = usage_environment_id(c);
  const auto megabytes = c.opt_integer("megabytes");
  if (megabytes && (*megabytes < 1 || *megabytes > kMaxLimitMb))
    fail(Code::invalid_parameter, "megabytes " + std::to_string(*megabytes) +
                                      " must be between 1 and " + std::to_string(kMaxLimitMb) +
                                      " (NULL: no limit)");
  Host& host = c.host;
  Store& store = c.store;
  Atomic tx(store);
  Row env = records::load_environment(store, "environment_id", id);
  if (env.text("status") == "archived")
    fail(Code::invalid_transition,
         "environment_id " + quote_value(id) + " is archived; its storage limit no longer changes");
  const Row db = database_of(store, id);
  const std::string database_id = db.text("id");
  const auto previous = stored_integer(db, "storage_limit_mb");
  if (previous != megabytes) {
    execute(store,
            "UPDATE envdb.sys_environment_database SET storage_limit_mb = $2::bigint, updated_at = "
            "$3::timestamptz WHERE id = $1",
            {database_id, megabytes ? Value(*megabytes) : null_value(), now_iso()});
    audit::record(host, {"database.storage_limit", env.text("organization_id"), id, "database",
                         database_id,
                         Json{{"from", previous ? Json(*previous) : Json(nullptr)},
                              {"to", megabytes ? Json(*megabytes) : Json(nullptr)}}});
    (void)decide(host, database_id);
  }
  tx.done();
  return api::json_result(Json{{"database", database_now(store, database_id)}});
}

// Databases that are measured at all: created, not dropped, not archived.
const char* const kMeasurable =
    "FROM envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = "
    "d.environment_id WHERE d.dropped_at IS NULL AND d.provisioned_at IS NOT NULL AND e.status "
    "<> 'archived' AND (d.usage_measured_at IS NULL OR d.usage_measured_at <= $1::timestamptz)";

std::optional<std::string> due_cutoff(Host& host) {
  const int64_t interval = settings::setting_seconds(host, "usage_interval_seconds");
  if (interval <= 0) return std::nullopt;
  return iso_from_ms(now_ms() - interval * 1000);
}

}  // namespace

std::optional<int64_t> max_page_count(const std::string& driver,
                                      const std::optional<int64_t>& storage_limit_mb) {
  if (driver != "sqlite" || !storage_limit_mb) return std::nullopt;
  return *storage_limit_mb * (kMegabyte / kSqlitePageSize);
}

void record(Host& host, const std::string& database_id, int64_t bytes) {
  Store& store = host.store();
  const std::string now = now_iso();
  auto db = query_one(store,
                      "SELECT environment_id FROM envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db) fail(Code::not_found, "database_id " + quote_value(database_id) + " names no database");
  execute(store,
          "UPDATE envdb.sys_environment_database SET usage_bytes = $2, usage_measured_at = "
          "$3::timestamptz WHERE id = $1",
          {database_id, bytes, now});
  execute(store,
          "INSERT INTO envdb.sys_environment_usage (id, database_id, environment_id, day, bytes, "
          "max_bytes, samples, measured_at) VALUES ($6, $1, $2, $3, $4, $4, 1, $5::timestamptz) "
          "ON CONFLICT (database_id, day) DO UPDATE SET bytes = excluded.bytes, max_bytes = "
          "CASE WHEN excluded.bytes > sys_environment_usage.max_bytes THEN excluded.bytes ELSE "
          "sys_environment_usage.max_bytes END, samples = sys_environment_usage.samples + 1, "
          "measured_at = excluded.measured_at",
          {database_id, db->text("environment_id"), now.substr(0, 10), bytes, now, new_uuid_v7()});
  (void)decide(host, database_id);
}

int64_t measure_due(Host& host) {
  const auto cutoff = due_cutoff(host);
  if (!cutoff) return 0;
  Store& store = host.store();
  const bool sqlite = is_sqlite_host(host);
  if (!sqlite && !is_postgres(store)) return 0;
  const std::string which = sqlite ? "d.driver = 'sqlite'"
                                   : "d.driver = 'postgres' AND d.host_id IS NULL";
  const auto rows = query(store,
                          std::string("SELECT d.id, d.driver, d.database_name, d.database_url ") +
                              kMeasurable + " AND " + which + " ORDER BY d.id",
                          {*cutoff});
  int64_t measured = 0;
  for (const Row& db : rows) {
    std::optional<int64_t> bytes;
    if (sqlite) {
      try {
        bytes = sqlite_bytes(host, db);
      } catch (const Error&) {
        // A row envdb refuses (row_rules): check() reports it; not measured.
      }
    } else {
      bytes = local_postgres_bytes(store, db.text("database_name"));
    }
    if (!bytes) continue;
    record(host, db.text("id"), *bytes);
    ++measured;
  }
  return measured;
}

Json decide_all(Host& host) {
  Json out{{"readOnly", Json::array()}, {"writable", Json::array()}};
  const auto rows = query(host.store(),
                          "SELECT id FROM envdb.sys_environment_database WHERE dropped_at IS NULL "
                          "AND (storage_limit_mb IS NOT NULL OR storage_read_only) ORDER BY id");
  for (const Row& r : rows)
    if (auto changed = decide(host, r.text("id")))
      out[*changed ? "readOnly" : "writable"].push_back(r.text("id"));
  return out;
}

std::vector<Hosted> due_on_hosts(Host& host) {
  std::vector<Hosted> out;
  const auto cutoff = due_cutoff(host);
  if (!cutoff) return out;
  for (const Row& r : query(host.store(),
                            std::string("SELECT d.id, d.database_name, d.host_id ") + kMeasurable +
                                " AND d.driver = 'postgres' AND d.host_id IS NOT NULL ORDER BY "
                                "d.host_id, d.id",
                            {*cutoff}))
    out.push_back({r.text("id"), r.text("database_name"), r.opt_text("host_id"), false});
  return out;
}

std::string size_sql(const std::string& database_name) {
  return "SELECT pg_catalog.pg_database_size(d.oid) FROM pg_catalog.pg_database d WHERE "
         "d.datname = " +
         postgres::quote_literal(database_name);
}

std::vector<Hosted> write_access_pending(Store& store) {
  std::vector<Hosted> out;
  for (const Row& r :
       query(store,
             "SELECT d.id, d.database_name, d.host_id, d.storage_read_only FROM "
             "envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = "
             "d.environment_id WHERE d.driver = 'postgres' AND d.dropped_at IS NULL AND "
             "d.provisioned_at IS NOT NULL AND e.status <> 'archived' AND d.storage_read_only "
             "<> d.storage_read_only_applied ORDER BY d.id"))
    out.push_back({r.text("id"), r.text("database_name"), r.opt_text("host_id"),
                   r.boolean("storage_read_only")});
  return out;
}

std::string write_access_sql(const std::string& database_name, bool read_only) {
  const postgres::Roles r = postgres::roles_for(database_name);
  const std::string admin = postgres::quote_identifier(r.admin);
  const std::string rw = postgres::quote_identifier(r.readwrite);
  const std::string both = rw + ", " + admin;
  const std::string defaults = "ALTER DEFAULT PRIVILEGES FOR ROLE " + admin + " IN SCHEMA public ";
  std::vector<std::string> s;
  if (read_only) {
    s = {"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public FROM " + both,
         "REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA public FROM " + both,
         defaults + "REVOKE INSERT, UPDATE, DELETE ON TABLES FROM " + rw,
         defaults + "REVOKE USAGE, UPDATE ON SEQUENCES FROM " + rw};
  } else {
    // What provisioning granted (statements.cpp, in_database_sql), and the
    // owner's own privileges back.
    s = {"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + rw,
         "GRANT INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO " + admin,
         "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + both,
         defaults + "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + rw,
         defaults + "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + rw};
  }
  std::string out;
  for (const std::string& stmt : s) out += stmt + ";\n";
  return out;
}

void mark_applied(Store& store, const std::string& database_id, bool read_only) {
  execute(store,
          "UPDATE envdb.sys_environment_database SET storage_read_only_applied = $2 WHERE id = $1",
          {database_id, read_only});
}

std::vector<api::Function> functions() {
  using api::kAdmin;
  using api::kRequestForm;
  using api::kWrites;
  return {
      {"set_storage_limit",
       {{"environment_id", T::text, nullptr}, {"megabytes", T::integer, "NULL"}},
       T::json,
       set_storage_limit,
       kWrites | kRequestForm,
       kAdmin,
       "set (or, with NULL, clear) an environment database's storage limit in megabytes; the "
       "read-only decision follows at once from the latest measured usage"},
      {"measure_environment_usage",
       {{"environment_id", T::text, nullptr}},
       T::json,
       measure_environment_usage,
       kWrites | kRequestForm,
       kAdmin,
       "measure an environment database's size now (sqlite: file plus WAL; postgres: "
       "pg_database_size on its server), store it with the day's history and decide read-only "
       "against the limit"},
      {"report_environment_usage",
       {{"environment_id", T::text, nullptr}, {"bytes", T::integer, nullptr}},
       T::json,
       report_environment_usage,
       kWrites | kRequestForm,
       kAdmin,
       "an external worker reports a turso (or unreachable postgres) database's size; stored "
       "and decided like a measurement"},
  };
}

}  // namespace envdb::usage
