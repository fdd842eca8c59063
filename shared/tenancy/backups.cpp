#include "tenancy/backups.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include "catalog/audit.hpp"
#include "catalog/dataplane.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "postgres/copier.hpp"
#include "tenancy/copy.hpp"
#include "tenancy/provision.hpp"

namespace envdb::backups {

namespace fs = std::filesystem;

const char* const kBackupColumns =
    "id, environment_id, database_id, label, location, driver, size_bytes, status, "
    "schema_version, created_by, created_at, updated_at, completed_at, deleted_at";

Json backup_json(const Row& r) {
  auto integer = [&](const char* c) { return is_null(r[c]) ? Json(nullptr) : Json(r.integer(c)); };
  return Json{{"id", r.text("id")},
              {"environmentId", r.text("environment_id")},
              {"databaseId", r.text("database_id")},
              {"label", json_text(r.opt_text("label"))},
              {"location", r.text("location")},
              {"driver", r.text("driver")},
              {"sizeBytes", integer("size_bytes")},
              {"status", r.text("status")},
              {"schemaVersion", integer("schema_version")},
              {"createdBy", json_text(r.opt_text("created_by"))},
              {"createdAt", r.text("created_at")},
              {"updatedAt", r.text("updated_at")},
              {"completedAt", json_text(r.opt_text("completed_at"))},
              {"deletedAt", json_text(r.opt_text("deleted_at"))}};
}

std::string backup_directory(Host& host) {
  return (fs::path(settings::sqlite_data_dir(host)) / "backups").string();
}

namespace {

using T = api::Type;

constexpr size_t kMaxLabel = 200;

Row load_backup(Store& store, const std::string& field, const std::string& id) {
  auto row = query_one(store,
                       std::string("SELECT ") + kBackupColumns +
                           " FROM envdb.sys_environment_backup WHERE id = $1",
                       {id});
  if (!row) fail(Code::not_found, field + " " + quote_value(id) + " names no backup");
  return std::move(*row);
}

Row environment_arg(api::Call& c) {
  std::string id = c.text("environment_id");
  require_id("environment_id", id);
  return records::load_environment(c.store, "environment_id", id);
}

Row database_of(Store& store, const Row& env) {
  auto db = copy::database_with_host(store, env.text("id"));
  if (!db || !is_null((*db)["dropped_at"]))
    fail(Code::invalid_transition, "environment_id " + quote_value(env.text("id")) +
                                       " has no database to back up or restore");
  row_rules::require_database(*db);
  return std::move(*db);
}

// A backup file's path, always rebuilt from the id: a location read back
// from the catalog is never trusted as a path.
std::string sqlite_backup_path(Host& host, const std::string& backup_id) {
  require_id("backup_id", backup_id);
  return (fs::path(backup_directory(host)) / (backup_id + ".db")).string();
}

void ensure_backup_directory(Host& host) {
  const fs::path dir = backup_directory(host);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    fail(Code::invalid_parameter,
         "backup directory " + quote_value(dir.string()) + " cannot be created: " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
}

void set_status(Store& store, const std::string& id, const std::string& status,
                const std::string& now) {
  execute(store,
          std::string("UPDATE envdb.sys_environment_backup SET status = $2, updated_at = "
                      "$3::timestamptz") +
              (status == "ready" ? ", completed_at = $3::timestamptz" : "") +
              (status == "deleted" ? ", deleted_at = $3::timestamptz" : "") + " WHERE id = $1",
          {id, status, now});
}

// Deletes one backup: the file now (sqlite), or a delete_backup job.
void delete_one(Host& host, const Row& backup, const std::string& reason) {
  Store& store = host.store();
  const std::string now = now_iso();
  const std::string id = backup.text("id");
  std::optional<std::string> job_id;
  if (backup.text("driver") == "sqlite") {
    provision::delete_database_file(sqlite_backup_path(host, id));
    set_status(store, id, "deleted", now);
  } else {
    set_status(store, id, "deleting", now);
    auto db = query_one(store,
                        "SELECT database_name, host_id FROM envdb.sys_environment_database "
                        "WHERE id = $1",
                        {backup.text("database_id")});
    Row job =
        queue::enqueue(host,
                       {backup.text("environment_id"), backup.text("database_id"), "delete_backup",
                        backup.text("driver"),
                        Json{{"backupId", id},
                             {"location", backup.text("location")},
                             {"databaseName", db ? Json(db->text("database_name")) : Json(nullptr)},
                             {"hostId", db && db->opt_text("host_id") ? Json(db->text("host_id"))
                                                                      : Json(nullptr)}}});
    job_id = job.text("id");
  }
  auto env = query_one(store, "SELECT organization_id FROM envdb.sys_environment WHERE id = $1",
                       {backup.text("environment_id")});
  audit::record(host, {"backup.delete", env ? env->opt_text("organization_id") : std::nullopt,
                       backup.text("environment_id"), "backup", id,
                       Json{{"reason", reason},
                            {"driver", backup.text("driver")},
                            {"jobId", job_id ? Json(*job_id) : Json(nullptr)}}});
}

// Retention: the environment's ready backups beyond the count (newest kept)
// or older than the age are deleted.
void prune(Host& host, const std::string& environment_id) {
  Store& store = host.store();
  const int64_t keep = settings::setting_seconds(host, "backup_retention_count");
  const int64_t max_age = settings::setting_seconds(host, "backup_retention_seconds");
  if (keep == 0 && max_age == 0) return;
  const std::string oldest_kept = iso_from_ms(now_ms() - max_age * 1000);
  int64_t seen = 0;
  for (const Row& b :
       query(store,
             std::string("SELECT ") + kBackupColumns +
                 " FROM envdb.sys_environment_backup WHERE environment_id = $1 AND status = "
                 "'ready' ORDER BY created_at DESC, id DESC",
             {environment_id})) {
    ++seen;
    const bool too_many = keep > 0 && seen > keep;
    const bool too_old = max_age > 0 && ms_from_iso(b.text("created_at")).value_or(now_ms()) <
                                            ms_from_iso(oldest_kept).value_or(0);
    if (too_many || too_old) delete_one(host, b, too_many ? "retention_count" : "retention_age");
  }
}

Value backup_environment(api::Call& c) {
  const auto start = std::chrono::steady_clock::now();
  Row env = environment_arg(c);
  const auto label = c.opt_text("label", kMaxLabel);
  const std::string env_id = env.text("id");
  const std::string status = env.text("status");
  if (status != "active" && status != "suspended")
    fail(Code::invalid_transition, "environment_id " + quote_value(env_id) + " is " + status +
                                       "; only an active or suspended environment is backed up");
  Row db = database_of(c.store, env);
  const std::string driver = db.text("driver");
  const std::string id = new_uuid_v7();
  const std::string now = now_iso();

  provision::Undo undo(c.host);
  Atomic tx(c.store);
  std::string location;
  std::optional<Row> job;
  std::optional<int64_t> size;
  std::optional<int64_t> version;
  if (driver == "sqlite") {
    ensure_backup_directory(c.host);
    location = sqlite_backup_path(c.host, id);
  } else if (driver == "postgres") {
    // A database on the environment's server, made from it as a template.
    // "<database_name>_b_<26 base32>": beside its database, so a drop of the
    // database finds its backups by name (postgres/copier).
    location = postgres::backup_database_name(db.text("database_name"), id);
  } else {
    // Turso keeps the history: the backup is a point in time of the database.
    location = "turso:" + db.text("database_name") + "@" + now;
  }
  execute(c.store,
          "INSERT INTO envdb.sys_environment_backup (id, environment_id, database_id, label, "
          "location, driver, status, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, "
          "$5, $6, 'pending', $7, $8::timestamptz, $8::timestamptz)",
          {id, env_id, db.text("id"), optional_value(label), location, driver,
           optional_value(c.host.actor()), now});
  if (driver == "sqlite") {
    const std::string source =
        row_rules::sqlite_file(c.host, db.text("database_name"), db.opt_text("database_url"));
    size = copy::replace_file(c.host, source, location, "full", std::nullopt);
    undo.add_file(location);
    {
      auto file = c.host.open_database_file(location);
      version = dataplane::schema_version(*file);
    }
    execute(c.store,
            "UPDATE envdb.sys_environment_backup SET status = 'ready', size_bytes = $2, "
            "schema_version = $3, completed_at = $4::timestamptz WHERE id = $1",
            {id, *size, version ? Value(*version) : null_value(), now});
  } else {
    job = queue::enqueue(c.host, {env_id, db.text("id"), "backup_database", driver,
                                  Json{{"backupId", id},
                                       {"location", location},
                                       {"databaseName", db.text("database_name")},
                                       {"hostId", db.opt_text("host_id") ? Json(db.text("host_id"))
                                                                         : Json(nullptr)}}});
  }
  audit::record(c.host, {"environment.backup", env.text("organization_id"), env_id, "backup", id,
                         Json{{"driver", driver},
                              {"label", json_text(label)},
                              {"sizeBytes", size ? Json(*size) : Json(nullptr)},
                              {"jobId", job ? Json(job->text("id")) : Json(nullptr)}}});
  if (driver == "sqlite") prune(c.host, env_id);
  undo.keep();
  tx.done();
  Json out{{"backup", backup_json(load_backup(c.store, "backup_id", id))}};
  out["job"] = job ? Json{{"id", job->text("id")},
                          {"kind", job->text("kind")},
                          {"status", job->text("status")}}
                   : Json(nullptr);
  out["durationMs"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  return api::json_result(out);
}

Value list_environment_backups(api::Call& c) {
  Row env = environment_arg(c);
  Json out = Json::array();
  for (const Row& b :
       query(c.store,
             std::string("SELECT ") + kBackupColumns +
                 " FROM envdb.sys_environment_backup WHERE environment_id = $1 AND status <> "
                 "'deleted' ORDER BY created_at DESC, id DESC",
             {env.text("id")}))
    out.push_back(backup_json(b));
  return api::json_result(out);
}

Value restore_environment(api::Call& c) {
  const auto start = std::chrono::steady_clock::now();
  Row env = environment_arg(c);
  const std::string backup_id = c.text("backup_id");
  require_id("backup_id", backup_id);
  const bool force = c.opt_boolean("force").value_or(false);
  const std::string env_id = env.text("id");
  Row backup = load_backup(c.store, "backup_id", backup_id);
  if (backup.text("environment_id") != env_id)
    fail(Code::invalid_parameter,
         "backup_id " + quote_value(backup_id) + " is a backup of environment " +
             quote_value(backup.text("environment_id")) + ", not of " + quote_value(env_id));
  if (backup.text("status") != "ready")
    fail(Code::invalid_transition, "backup_id " + quote_value(backup_id) + " is " +
                                       backup.text("status") + "; only a ready backup is restored");
  copy::require_overwritable(env, force, "environment_id");
  Row db = database_of(c.store, env);
  const std::string driver = db.text("driver");

  Atomic tx(c.store);
  std::optional<Row> job;
  Json detail{{"backupId", backup_id}, {"force", force}, {"driver", driver}};
  if (driver == "sqlite") {
    audit::record(c.host, {"environment.restore", env.text("organization_id"), env_id,
                           "environment", env_id, detail});
    copy::replace_file(
        c.host, sqlite_backup_path(c.host, backup_id),
        row_rules::sqlite_file(c.host, db.text("database_name"), db.opt_text("database_url")),
        "full", copy::Identity{env_id, env.text("organization_id"), db.text("database_name")});
  } else {
    const std::string previous = copy::hold(c.host, env);
    Json payload = copy::job_payload(c.host, db, previous);
    payload["backupId"] = backup_id;
    payload["location"] = backup.text("location");
    job = queue::enqueue(c.host, {env_id, db.text("id"), "restore_database", driver, payload});
    detail["jobId"] = job->text("id");
    audit::record(c.host, {"environment.restore", env.text("organization_id"), env_id,
                           "environment", env_id, detail});
  }
  tx.done();
  Json out{{"environment", records::environment_json(
                               records::load_environment(c.store, "environment_id", env_id))},
           {"backup", backup_json(load_backup(c.store, "backup_id", backup_id))}};
  out["job"] = job ? Json{{"id", job->text("id")},
                          {"kind", job->text("kind")},
                          {"status", job->text("status")}}
                   : Json(nullptr);
  out["durationMs"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count();
  return api::json_result(out);
}

Value delete_environment_backup(api::Call& c) {
  const std::string backup_id = c.text("backup_id");
  require_id("backup_id", backup_id);
  Row backup = load_backup(c.store, "backup_id", backup_id);
  const std::string status = backup.text("status");
  if (status != "ready" && status != "failed")
    fail(Code::invalid_transition, "backup_id " + quote_value(backup_id) + " is " + status +
                                       "; only a ready or failed backup is deleted");
  Atomic tx(c.store);
  delete_one(c.host, backup, "requested");
  tx.done();
  Json out{{"backup", backup_json(load_backup(c.store, "backup_id", backup_id))}};
  return api::json_result(out);
}

std::optional<std::string> backup_of_job(const Row& job) {
  Json p = Json::parse(job.opt_text("payload").value_or("{}"), nullptr, false);
  if (!p.is_object() || !p.contains("backupId") || !p["backupId"].is_string()) return std::nullopt;
  return p["backupId"].get<std::string>();
}

}  // namespace

void job_done(Host& host, const Row& job, const std::string& now) {
  const std::string kind = job.text("kind");
  if (kind != "backup_database" && kind != "delete_backup") return;
  auto id = backup_of_job(job);
  if (!id) return;
  set_status(host.store(), *id, kind == "backup_database" ? "ready" : "deleted", now);
  if (kind == "backup_database") prune(host, job.text("environment_id"));
}

void job_failed(Host& host, const Row& job, bool retry, const std::string& now) {
  const std::string kind = job.text("kind");
  if (retry || (kind != "backup_database" && kind != "delete_backup")) return;
  auto id = backup_of_job(job);
  // A backup that could not be made is failed; one that could not be
  // deleted is as it was (delete it again).
  if (id) set_status(host.store(), *id, kind == "backup_database" ? "failed" : "ready", now);
}

void record_size(Store& store, const std::string& backup_id, int64_t size_bytes) {
  execute(store, "UPDATE envdb.sys_environment_backup SET size_bytes = $2 WHERE id = $1",
          {backup_id, size_bytes});
}

void drop_all(Host& host, const std::string& environment_id) {
  for (const Row& b : query(host.store(),
                            std::string("SELECT ") + kBackupColumns +
                                " FROM envdb.sys_environment_backup WHERE environment_id = $1 "
                                "AND status IN ('ready', 'failed') ORDER BY created_at, id",
                            {environment_id}))
    delete_one(host, b, "database_dropped");
}

std::vector<std::pair<std::string, std::string>> stray_files(Host& host) {
  std::vector<std::pair<std::string, std::string>> out;
  std::error_code ec;
  const fs::path dir = backup_directory(host);
  if (!fs::is_directory(dir, ec)) return out;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (!it->is_regular_file(type_ec)) continue;
    const std::string name = it->path().filename().string();
    // <uuid>.db, its temporary <uuid>.db.tmp-<hex>, and SQLite's side files.
    const size_t dot = name.find(".db");
    if (dot != 36) continue;
    const std::string id = name.substr(0, dot);
    try {
      require_id("backup file", id);
    } catch (const Error&) {
      continue;
    }
    if (name.find(".tmp-") != std::string::npos) {
      out.emplace_back(it->path().string(),
                       "temporary file of a backup or restore that did not finish");
      continue;
    }
    auto row = query_one(host.store(),
                         "SELECT status FROM envdb.sys_environment_backup WHERE id = $1", {id});
    if (!row)
      out.emplace_back(it->path().string(),
                       "backup file that no sys_environment_backup row names (its call did not "
                       "commit)");
    else if (row->text("status") == "deleted")
      out.emplace_back(it->path().string(), "file of a deleted backup");
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<api::Function> functions() {
  return {
      {"backup_environment",
       {{"environment_id", T::text, nullptr}, {"label", T::text, "NULL"}},
       T::json,
       backup_environment,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "back up an active or suspended environment's database (sqlite: a snapshot file under "
       "sqlite_data_dir/backups, ready on return; postgres and turso: a backup_database job); "
       "the backup is registered in sys_environment_backup and retention "
       "(backup_retention_count, backup_retention_seconds) deletes older ones"},
      {"list_environment_backups",
       {{"environment_id", T::text, nullptr}},
       T::json,
       list_environment_backups,
       0,
       api::kAdmin,
       "an environment's backups that are not deleted, newest first"},
      {"restore_environment",
       {{"environment_id", T::text, nullptr},
        {"backup_id", T::text, nullptr},
        {"force", T::boolean, "false"}},
       T::json,
       restore_environment,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "replace an environment's database content with one of its ready backups, keeping its "
       "identity, credentials and members; a production, protected or default environment needs "
       "force. sqlite: done in the call; postgres and turso: in maintenance until its "
       "restore_database job completes"},
      {"delete_environment_backup",
       {{"backup_id", T::text, nullptr}},
       T::json,
       delete_environment_backup,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "delete a ready or failed backup (sqlite: its file now; postgres and turso: a "
       "delete_backup job); the row stays with status deleted"},
  };
}

}  // namespace envdb::backups
