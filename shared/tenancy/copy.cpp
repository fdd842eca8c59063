#include "tenancy/copy.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "catalog/audit.hpp"
#include "catalog/dataplane.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "jobs/turso.hpp"
#include "secrets/crypto.hpp"
#include "tenancy/lifecycle.hpp"

namespace envdb::copy {

namespace fs = std::filesystem;

namespace {

using T = api::Type;

// The data-plane tables a schema copy keeps as they are in the source (the
// identity stamp is re-stamped instead).
const char* const kKeptTables[] = {"sys_schema_migration", "sys_package_installation",
                                   "sys_environment_info"};

int64_t elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

std::string hex_of(const std::string& bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char ch : bytes) {
    out += kDigits[ch >> 4];
    out += kDigits[ch & 0x0f];
  }
  return out;
}

std::string sql_literal(const std::string& text) {
  std::string out = "'";
  for (char ch : text) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

void remove_with_side_files(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-journal", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

bool kept_table(const std::string& name) {
  for (const char* t : kKeptTables)
    if (name == t) return true;
  return false;
}

// Mode schema, on the snapshot: every row of every table goes, except the
// data-plane tables'. Triggers are taken off while the rows go (a user's
// trigger may refuse deletes) and put back as they were; the VACUUM that
// follows gives the free pages back.
void empty_user_tables(Store& file) {
  std::vector<std::pair<std::string, std::string>> triggers;
  for (const Row& r : query(file,
                            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                            "AND sql IS NOT NULL ORDER BY rowid"))
    triggers.emplace_back(r.text("name"), r.text("sql"));
  std::vector<std::string> tables;
  // Shadow tables belong to their virtual table, which empties them itself.
  for (const Row& r : query(file,
                            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type IN "
                            "('table', 'virtual') AND name NOT LIKE 'sqlite_%' ORDER BY name"))
    if (!kept_table(r.text("name"))) tables.push_back(r.text("name"));
  file.exec("BEGIN");
  try {
    for (auto& [name, sql] : triggers) file.exec("DROP TRIGGER \"" + name + "\"");
    for (const std::string& t : tables) {
      std::string quoted;
      for (char ch : t) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      file.exec("DELETE FROM \"" + quoted + "\"");
    }
    if (query_one(file, "SELECT 1 AS present FROM sqlite_master WHERE name = 'sqlite_sequence'"))
      file.exec("DELETE FROM sqlite_sequence");
    for (auto& [name, sql] : triggers) file.exec(sql);
    file.exec("COMMIT");
  } catch (...) {
    try {
      file.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
  file.exec("VACUUM");
}

// The identity stamp of the copy: the target's, with the source's schema
// version (its ledger came with it). The environment id is immutable, so
// the one row is replaced rather than updated.
void restamp(Store& file, const Identity& id) {
  auto version = dataplane::schema_version(file);
  file.exec("BEGIN");
  try {
    execute(file, "DELETE FROM envdb.sys_environment_info");
    execute(file,
            "INSERT INTO envdb.sys_environment_info (environment_id, organization_id, "
            "database_name, schema_version, initialized_at) VALUES ($1, $2, $3, $4, $5)",
            {id.environment_id, id.organization_id, id.database_name,
             Value(version.value_or(dataplane::current_version())), now_iso()});
    file.exec("COMMIT");
  } catch (...) {
    try {
      file.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

// Before a file is renamed over `path`: what its WAL holds is written into
// it (a WAL file left beside the new file would be replayed into it), and a
// hot journal is rolled back by the open itself.
void settle(Host& host, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  {
    auto file = host.open_database_file(path);
    (void)query(*file, "PRAGMA wal_checkpoint(TRUNCATE)");
  }
  // A reader kept the WAL from being emptied: renaming now would hand its
  // frames to the new file. Nothing has changed yet; the caller may retry.
  const auto wal = fs::file_size(path + "-wal", ec);
  if (!ec && wal > 0)
    fail(Code::conflict, "database file " + quote_value(path) +
                             " has a write-ahead log another connection keeps in use; close the "
                             "connections to it and retry (nothing was changed)");
}

Row environment_arg(api::Call& c, const char* field) {
  std::string id = c.text(field);
  require_id(field, id);
  return records::load_environment(c.store, field, id);
}

Row database_arg(Store& store, const Row& env, const std::string& field) {
  auto db = database_with_host(store, env.text("id"));
  if (!db) fail(Code::conflict, field + " " + quote_value(env.text("id")) + " has no database");
  row_rules::require_database(*db);
  if (!is_null((*db)["dropped_at"]))
    fail(Code::invalid_transition,
         field + " " + quote_value(env.text("id")) + ": its database was dropped");
  return std::move(*db);
}

std::string file_of(Host& host, const Row& db) {
  return row_rules::sqlite_file(host, db.text("database_name"), db.opt_text("database_url"));
}

Json result(Store& store, const std::string& target_id, const std::optional<Row>& job,
            const Json& extra, int64_t ms) {
  Json out{{"environment", records::environment_json(
                               records::load_environment(store, "environment_id", target_id))}};
  for (auto& [k, v] : extra.items()) out[k] = v;
  out["job"] = job ? Json{{"id", job->text("id")},
                          {"kind", job->text("kind")},
                          {"status", job->text("status")}}
                   : Json(nullptr);
  out["durationMs"] = ms;
  return out;
}

Value copy_environment(api::Call& c) {
  const auto start = std::chrono::steady_clock::now();
  Row source = environment_arg(c, "source_environment_id");
  const std::string target_id = c.text("target_environment_id");
  require_id("target_environment_id", target_id);
  const std::string mode = c.opt_text("mode", 64).value_or("full");
  require_mode("mode", mode);
  const bool force = c.opt_boolean("force").value_or(false);
  if (target_id == source.text("id"))
    fail(Code::invalid_parameter, "target_environment_id " + quote_value(target_id) +
                                      " is the source itself; a copy needs another environment");
  Row target = records::load_environment(c.store, "target_environment_id", target_id);
  if (target.text("organization_id") != source.text("organization_id"))
    fail(Code::invalid_parameter,
         "target_environment_id " + quote_value(target_id) + " belongs to organization " +
             quote_value(target.text("organization_id")) + ", not to the source's " +
             quote_value(source.text("organization_id")) + "; copies stay inside one organization");
  require_copy_source(source, "source_environment_id");
  require_overwritable(target, force, "target_environment_id");
  Row source_db = database_arg(c.store, source, "source_environment_id");
  Row target_db = database_arg(c.store, target, "target_environment_id");
  if (source_db.text("driver") != target_db.text("driver"))
    fail(Code::conflict, "target_environment_id " + quote_value(target_id) + " uses driver " +
                             target_db.text("driver") + ", the source " + source_db.text("driver") +
                             "; copies stay within one driver");
  const std::string driver = target_db.text("driver");
  Json detail{{"sourceEnvironmentId", source.text("id")},
              {"mode", mode},
              {"force", force},
              {"driver", driver}};

  Atomic tx(c.store);
  std::optional<Row> job;
  if (driver == "sqlite") {
    lifecycle::require(target_id, target.text("status"), "maintenance");
    audit::record(c.host, {"environment.copy", target.text("organization_id"), target_id,
                           "environment", target_id, detail});
    // Last: nothing the call writes after it can fail but the commit.
    const int64_t bytes = replace_file(c.host, file_of(c.host, source_db),
                                       file_of(c.host, target_db), mode,
                                       Identity{target_id, target.text("organization_id"),
                                                target_db.text("database_name")});
    detail["sizeBytes"] = bytes;
  } else {
    const std::string previous = hold(c.host, target);
    Json payload = job_payload(c.host, target_db, previous);
    payload.update(
        Json{{"mode", mode},
             {"sourceEnvironmentId", source.text("id")},
             {"sourceDatabaseId", source_db.text("id")},
             {"sourceDatabaseName", source_db.text("database_name")},
             {"sourceHostId",
              source_db.opt_text("host_id") ? Json(source_db.text("host_id")) : Json(nullptr)},
             {"targetDatabaseName", target_db.text("database_name")},
             {"targetHostId",
              target_db.opt_text("host_id") ? Json(target_db.text("host_id")) : Json(nullptr)}});
    job =
        queue::enqueue(c.host, {target_id, target_db.text("id"), "copy_database", driver, payload});
    detail["jobId"] = job->text("id");
    audit::record(c.host, {"environment.copy", target.text("organization_id"), target_id,
                           "environment", target_id, detail});
  }
  tx.done();
  return api::json_result(result(c.store, target_id, job,
                                 Json{{"sourceEnvironmentId", source.text("id")}, {"mode", mode}},
                                 elapsed_ms(start)));
}

Value reset_environment(api::Call& c) {
  const auto start = std::chrono::steady_clock::now();
  Row env = environment_arg(c, "environment_id");
  const bool force = c.opt_boolean("force").value_or(false);
  const std::string id = env.text("id");
  require_overwritable(env, force, "environment_id");
  Row db = database_arg(c.store, env, "environment_id");
  const std::string driver = db.text("driver");

  Atomic tx(c.store);
  std::optional<Row> job;
  Json detail{{"force", force}, {"driver", driver}};
  if (driver == "sqlite") {
    lifecycle::require(id, env.text("status"), "maintenance");
    audit::record(c.host, {"environment.reset", env.text("organization_id"), id, "environment", id,
                           detail});
    // A new file of the current data-plane schema, with the same identity,
    // renamed over the old one.
    const std::string final_path = file_of(c.host, db);
    const std::string temp = final_path + ".tmp-" + hex_of(crypto::random_bytes(8));
    try {
      crash_point();
      {
        auto file = c.host.open_database_file(temp);
        dataplane::initialize(*file, id, env.text("organization_id"), db.text("database_name"));
      }
      crash_point();
      sync_file(temp);
      crash_point();
      settle(c.host, final_path);
      if (std::rename(temp.c_str(), final_path.c_str()) != 0)
        throw Error(Code::internal, "cannot rename " + quote_value(temp) + " to " +
                                        quote_value(final_path) + ": " + std::strerror(errno));
      crash_point();
      sync_directory(fs::path(final_path).parent_path().string());
    } catch (...) {
      remove_with_side_files(temp);
      throw;
    }
  } else {
    const std::string previous = hold(c.host, env);
    job = queue::enqueue(c.host, {id, db.text("id"), "reset_database", driver,
                                  job_payload(c.host, db, previous)});
    detail["jobId"] = job->text("id");
    audit::record(c.host, {"environment.reset", env.text("organization_id"), id, "environment", id,
                           detail});
  }
  tx.done();
  return api::json_result(result(c.store, id, job, Json::object(), elapsed_ms(start)));
}

}  // namespace

void require_mode(const std::string& field, const std::string& mode) {
  if (mode != "full" && mode != "schema")
    fail(Code::invalid_parameter,
         field + " " + quote_value(mode) + " is not a copy mode (full, schema)");
}

void require_overwritable(const Row& target, bool force, const std::string& field) {
  const std::string id = target.text("id");
  const std::string status = target.text("status");
  if (status != "active" && status != "suspended")
    fail(Code::invalid_transition, field + " " + quote_value(id) + " is " + status +
                                       "; only an active or suspended environment's database "
                                       "can be replaced");
  if (force) return;
  if (target.text("env_type") == "production" || target.boolean("is_protected") ||
      target.boolean("is_default"))
    fail(Code::conflict,
         field + " " + quote_value(id) + " is " +
             (target.boolean("is_default")              ? std::string("its organization's default")
              : target.text("env_type") == "production" ? std::string("a production environment")
                                                        : std::string("protected")) +
             "; replacing its database needs force => true");
}

void require_copy_source(const Row& source, const std::string& field) {
  const std::string status = source.text("status");
  if (status != "active" && status != "suspended")
    fail(Code::invalid_transition, field + " " + quote_value(source.text("id")) + " is " + status +
                                       "; only an active or suspended environment can be copied");
}

void crash_point() {
  static int reached = 0;
  static const char* at = std::getenv("ENVDB_TEST_CRASH_AT");
  if (!at) return;
  if (++reached == std::atoi(at)) ::_exit(137);
}

void sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(Code::internal,
                "cannot open " + quote_value(path) + " to sync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0)
    throw Error(Code::internal, "cannot sync " + quote_value(path) + ": " + std::strerror(saved));
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

int64_t replace_file(Host& host, const std::string& source_path, const std::string& final_path,
                     const std::string& mode, const std::optional<Identity>& identity) {
  const std::string temp = final_path + ".tmp-" + hex_of(crypto::random_bytes(8));
  try {
    crash_point();
    {
      // One read transaction of the source: a consistent snapshot even while
      // others write to it.
      auto source = host.open_database_file(source_path);
      source->exec("VACUUM INTO " + sql_literal(temp));
    }
    crash_point();
    {
      auto file = host.open_database_file(temp);
      if (mode == "schema") empty_user_tables(*file);
      crash_point();
      if (identity) restamp(*file, *identity);
    }
    crash_point();
    sync_file(temp);
    crash_point();
    settle(host, final_path);
    crash_point();
    if (std::rename(temp.c_str(), final_path.c_str()) != 0)
      throw Error(Code::internal, "cannot rename " + quote_value(temp) + " to " +
                                      quote_value(final_path) + ": " + std::strerror(errno));
    crash_point();
    sync_directory(fs::path(final_path).parent_path().string());
  } catch (...) {
    remove_with_side_files(temp);
    throw;
  }
  std::error_code ec;
  const auto size = fs::file_size(final_path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

Json job_payload(Host& host, const Row& database, const std::string& previous_status) {
  Json p = database.text("driver") == "turso"
               ? turso::replacement_payload(host, database.text("id"), previous_status)
               : Json::object();
  p["databaseName"] = database.text("database_name");
  p["hostId"] = database.opt_text("host_id") ? Json(database.text("host_id")) : Json(nullptr);
  p["previousStatus"] = previous_status;
  return p;
}

std::optional<Row> database_with_host(Store& store, const std::string& environment_id) {
  return query_one(store,
                   std::string("SELECT ") + records::kDatabaseColumns +
                       ", host_id FROM envdb.sys_environment_database WHERE environment_id = $1",
                   {environment_id});
}

std::string hold(Host& host, const Row& environment) {
  std::string previous = environment.text("status");
  lifecycle::require(environment.text("id"), previous, "maintenance");
  execute(host.store(),
          "UPDATE envdb.sys_environment SET status = 'maintenance', updated_at = $2::timestamptz "
          "WHERE id = $1",
          {environment.text("id"), now_iso()});
  return previous;
}

namespace {

bool holds_environment(const std::string& kind) {
  return kind == "copy_database" || kind == "reset_database" || kind == "restore_database" ||
         kind == "move_database";  // tenancy/move
}

// Gives a held environment its previous status back (active when the payload
// does not say). An environment no longer in maintenance is left alone.
void release(Host& host, const Row& job, const std::string& now, const std::string& outcome) {
  const std::string env_id = job.text("environment_id");
  Row env = records::load_environment(host.store(), "environment_id", env_id);
  if (env.text("status") != "maintenance") return;
  Json payload = Json::object();
  if (auto text = job.opt_text("payload")) payload = Json::parse(*text, nullptr, false);
  std::string previous = "active";
  if (payload.is_object() && payload.contains("previousStatus") &&
      payload["previousStatus"].is_string() && payload["previousStatus"] == "suspended")
    previous = "suspended";
  lifecycle::require(env_id, "maintenance", previous);
  execute(host.store(),
          "UPDATE envdb.sys_environment SET status = $2, updated_at = $3::timestamptz "
          "WHERE id = $1",
          {env_id, previous, now});
  audit::record(host, {"environment.maintenance_end", env.text("organization_id"), env_id,
                       "environment", env_id,
                       Json{{"kind", job.text("kind")},
                            {"jobId", job.text("id")},
                            {"outcome", outcome},
                            {"status", previous}}});
}

}  // namespace

void job_done(Host& host, const Row& job, const std::string& now) {
  if (holds_environment(job.text("kind"))) release(host, job, now, "done");
}

void job_failed(Host& host, const Row& job, bool retry, const std::string& now) {
  if (!retry && holds_environment(job.text("kind"))) release(host, job, now, "failed");
}

Json copy_from_source(Store& store, const std::string& source_id, const std::string& mode,
                      const std::string& organization_id, const std::string& driver) {
  require_mode("copy_mode", mode);
  Row source = records::load_environment(store, "copy_from", source_id);
  if (source.text("organization_id") != organization_id)
    fail(Code::invalid_parameter,
         "copy_from " + quote_value(source_id) + " belongs to organization " +
             quote_value(source.text("organization_id")) + "; copies stay inside one organization");
  require_copy_source(source, "copy_from");
  Row db = database_arg(store, source, "copy_from");
  if (db.text("driver") != driver)
    fail(Code::conflict, "copy_from " + quote_value(source_id) + " uses driver " +
                             db.text("driver") + ", the new environment " + driver +
                             "; copies stay within one driver");
  return Json{{"sourceEnvironmentId", source_id},
              {"sourceDatabaseId", db.text("id")},
              {"sourceDatabaseName", db.text("database_name")},
              {"sourceHostId", db.opt_text("host_id") ? Json(db.text("host_id")) : Json(nullptr)},
              {"mode", mode}};
}

void copy_into_new(Host& host, const Json& copy_from, const std::string& target_id) {
  Store& store = host.store();
  Row target = records::load_environment(store, "environment_id", target_id);
  Row target_db = database_arg(store, target, "environment_id");
  auto source_db = database_with_host(store, copy_from["sourceEnvironmentId"].get<std::string>());
  if (!source_db) throw Error(Code::internal, "the copy's source database is gone");
  replace_file(host, file_of(host, *source_db), file_of(host, target_db),
               copy_from["mode"].get<std::string>(),
               Identity{target_id, target.text("organization_id"),
                        target_db.text("database_name")});
}

namespace {

// The jobs that hold their environment in maintenance: the kinds above, and
// any job whose payload carries previousStatus (job_payload), so a kind
// added later counts without being listed here.
std::string holding_job(const char* alias) {
  const std::string a(alias);
  return "(" + a + ".kind IN ('copy_database', 'reset_database', 'restore_database') OR CAST(" + a +
         ".payload AS TEXT) LIKE '%\"previousStatus\"%')";
}

std::string no_holding_job_running(const std::string& environment) {
  return "NOT EXISTS (SELECT 1 FROM envdb.sys_provisioning_job p WHERE p.environment_id = " +
         environment + " AND p.status IN ('pending', 'running') AND " + holding_job("p") + ")";
}

}  // namespace

std::vector<Stranded> stranded_in_maintenance(Store& store) {
  std::vector<Stranded> out;
  // One statement: the status and the absence of a job are read together.
  for (const Row& r :
       query(store,
             "SELECT e.id, e.organization_id, (SELECT j.id FROM envdb.sys_provisioning_job "
             "j WHERE j.environment_id = e.id AND " +
                 holding_job("j") +
                 " AND j.created_at >= e.updated_at ORDER BY j.created_at DESC, j.id DESC "
                 "LIMIT 1) AS job_id FROM envdb.sys_environment e WHERE e.status = "
                 "'maintenance' AND " +
                 no_holding_job_running("e.id") + " ORDER BY e.id")) {
    Stranded s{r.text("id"), r.text("organization_id"), "suspended", r.opt_text("job_id")};
    if (s.job_id) {
      auto job = query_one(store, "SELECT payload FROM envdb.sys_provisioning_job WHERE id = $1",
                           {*s.job_id});
      Json payload =
          Json::parse(job ? job->opt_text("payload").value_or("{}") : "{}", nullptr, false);
      if (payload.is_object() && payload.contains("previousStatus") &&
          payload["previousStatus"].is_string() &&
          (payload["previousStatus"] == "active" || payload["previousStatus"] == "suspended"))
        s.release_to = payload["previousStatus"].get<std::string>();
      else
        s.job_id.reset();
    }
    out.push_back(std::move(s));
  }
  return out;
}

bool release_stranded(Host& host, const Stranded& s, const std::string& now) {
  lifecycle::require(s.environment_id, "maintenance", s.release_to);
  const auto changed =
      query(host.store(),
            "UPDATE envdb.sys_environment SET status = $2, updated_at = $3::timestamptz WHERE id = "
            "$1 AND status = 'maintenance' AND " +
                no_holding_job_running("$1") + " RETURNING id",
            {s.environment_id, s.release_to, now});
  if (changed.empty()) return false;
  audit::record(host, {"environment.maintenance_end", s.organization_id, s.environment_id,
                       "environment", s.environment_id,
                       Json{{"kind", nullptr},
                            {"jobId", s.job_id ? Json(*s.job_id) : Json(nullptr)},
                            {"outcome", "check"},
                            {"status", s.release_to}}});
  return true;
}

std::vector<api::Function> functions() {
  return {
      {"copy_environment",
       {{"source_environment_id", T::text, nullptr},
        {"target_environment_id", T::text, nullptr},
        {"mode", T::text, "'full'"},
        {"force", T::boolean, "false"}},
       T::json,
       copy_environment,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "replace the target environment's database content with the source's (mode full: "
       "everything; schema: every table, index, view and trigger without rows, the data-plane "
       "tables as in the source); the target keeps its id, database, credentials and members and "
       "is re-stamped with its own identity. Same organization and driver; a production, "
       "protected or default target needs force. sqlite: done in the call; postgres and turso: "
       "the target is in maintenance until its copy_database job completes"},
      {"reset_environment",
       {{"environment_id", T::text, nullptr}, {"force", T::boolean, "false"}},
       T::json,
       reset_environment,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "empty an environment's database back to the current data-plane schema, keeping its "
       "identity, credentials and members; a production, protected or default environment needs "
       "force. sqlite: done in the call; postgres and turso: in maintenance until its "
       "reset_database job completes"},
  };
}

}  // namespace envdb::copy
