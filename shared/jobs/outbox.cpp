#include "jobs/outbox.hpp"

#include <algorithm>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "jobs/turso.hpp"
#include "secrets/vault.hpp"
#include "tenancy/backups.hpp"
#include "tenancy/copy.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/move.hpp"
#include "tenancy/provision.hpp"
#include "tenancy/teardown.hpp"

namespace envdb::outbox {

namespace {

using T = api::Type;

constexpr int64_t kMaxJobsPerClaim = 1000;
constexpr size_t kMaxUrl = 4096;
constexpr size_t kMaxWorker = 256;
constexpr size_t kMaxErrorChars = 4000;

const std::string kTursoInOrder =
    "AND NOT EXISTS (SELECT 1 FROM envdb.sys_provisioning_job p WHERE p.database_id = "
    "j.database_id AND p.status IN ('pending', 'running') AND (p.created_at < j.created_at OR "
    "(p.created_at = j.created_at AND p.id < j.id))) ";

// The first `max_chars` UTF-8 characters of `s` (already valid UTF-8).
std::string truncate_chars(const std::string& s, size_t max_chars) {
  size_t chars = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xc0) == 0x80) continue;  // continuation byte
    if (chars++ == max_chars) return s.substr(0, i);
  }
  return s;
}

// A JSON object with its keys in sorted order. Postgres hands jsonb back in
// its own key order and SQLite as written; sorting makes both hosts answer alike.
Json sorted_keys(const Json& j) { return Json::parse(nlohmann::json::parse(j.dump()).dump()); }

Row load_job(Store& store, const std::string& id) {
  auto row = query_one(store,
                       std::string("SELECT ") + records::kJobColumns +
                           " FROM envdb.sys_provisioning_job WHERE id = $1",
                       {id});
  if (!row) fail(Code::not_found, "job_id " + quote_value(id) + " names no provisioning job");
  return std::move(*row);
}

std::string job_id_arg(api::Call& c) {
  std::string id = c.text("job_id");
  require_id("job_id", id);
  return id;
}

void require_running(const Row& job) {
  if (job.text("status") != "running")
    fail(Code::invalid_transition, "job " + quote_value(job.text("id")) + " is " +
                                       job.text("status") +
                                       ", not running; only a claimed job can be reported");
}

Json job_and_environment(Store& store, const std::string& job_id, const std::string& env_id) {
  return Json{{"job", records::job_json(load_job(store, job_id))},
              {"environment", records::environment_json(
                                  records::load_environment(store, "environment_id", env_id))}};
}

// Each key of tokens a credential scope, each value a usable token.
void require_tokens(const Json& tokens) {
  for (auto& [scope, token] : tokens.items()) {
    if (!vault::is_scope(scope))
      fail(Code::invalid_parameter, "tokens key " + quote_value(scope) +
                                        " is not a credential scope (readwrite, readonly, admin)");
    // Never quote a token: only say what is wrong with it.
    if (!token.is_string() || token.get<std::string>().empty() ||
        token.get<std::string>().size() > vault::kMaxTokenBytes)
      fail(Code::invalid_parameter,
           "tokens." + scope + " must be a non-empty string of at most 4096 bytes");
  }
}

// What a report may carry for a job of this kind and driver.
void require_report_fits_kind(const Row& job, const std::optional<std::string>& database_url,
                              const Json& tokens) {
  const std::string kind = job.text("kind");
  if (kind == "create_database" && job.text("driver") == "turso" && tokens.empty())
    fail(Code::invalid_parameter,
         "tokens is required to complete a turso job: envdb does not mint Turso tokens");
  // A drop leaves no database to reach or log in to.
  if (kind == "drop_database" && (database_url || !tokens.empty()))
    fail(Code::invalid_parameter, std::string(database_url ? "database_url" : "tokens") +
                                      " cannot be given for a drop_database job");
  // A copy, reset, backup or restore keeps the database where it is and its
  // credentials as they are.
  // A turso database made again has new tokens (turso::replacement_payload).
  if ((kind == "copy_database" || kind == "reset_database" || kind == "backup_database" ||
       kind == "restore_database" || kind == "delete_backup") &&
      (database_url || (!tokens.empty() && !turso::is_lifecycle_job(job))))
    fail(Code::invalid_parameter, std::string(database_url ? "database_url" : "tokens") +
                                      " cannot be given for a " + kind + " job");
}

// A create_database job completes only an environment still waiting for it.
void require_still_provisioning(const Row& job, const Row& env) {
  if (job.text("kind") == "create_database" && env.text("status") != "provisioning")
    fail(Code::conflict, "environment " + quote_value(job.text("environment_id")) + " is " +
                             env.text("status") +
                             ", no longer provisioning; report the job with "
                             "fail_provisioning_job instead");
}

// Stores the reported tokens as active credentials; returns their scopes.
Json store_reported_tokens(Host& host, const Row& job,
                           const std::optional<std::string>& database_id, const Json& tokens) {
  if (turso::is_lifecycle_job(job)) return turso::complete(host, job, tokens);
  // Stored in one fixed scope order, not the request's key order: jsonb
  // reorders keys, and both hosts must create the same rows in the same order.
  Json scopes = Json::array();
  for (const char* scope : {"admin", "readwrite", "readonly"}) {
    if (!tokens.contains(scope)) continue;
    vault::store_token(host, *database_id, scope, tokens[scope].get<std::string>());
    scopes.push_back(scope);
  }
  return scopes;
}

// What the finished job means for its database and environment: a drop
// recorded, the environment active, or the database's new URL.
void record_job_outcome(Host& host, const Row& job, const std::optional<std::string>& database_id,
                        const std::optional<std::string>& database_url, const std::string& now) {
  const std::string kind = job.text("kind");
  if (kind == "drop_database" && database_id) {
    teardown::mark_dropped(host.store(), *database_id, now);
  } else if (kind == "create_database" && database_id) {
    provision::activate(host, job.text("environment_id"), "provisioning", *database_id,
                        database_url);
  } else if (database_url && database_id) {
    vault::set_database_url(host, *database_id, *database_url);  // re-seals its tokens
  }
  move::job_done(host, job, database_url, now);
  copy::job_done(host, job, now);
  backups::job_done(host, job, now);
}

}  // namespace

Value claim_provisioning_jobs(api::Call& c) {
  const std::string driver = c.text("driver", 64);
  provision::require_driver("driver", driver);
  const int64_t max_jobs = c.opt_integer("max_jobs").value_or(10);
  if (max_jobs < 1 || max_jobs > kMaxJobsPerClaim)
    fail(Code::invalid_parameter,
         "max_jobs " + std::to_string(max_jobs) + " must be between 1 and 1000");
  const auto worker = c.opt_text("worker", kMaxWorker);
  return api::json_result(claim_jobs(c.host, driver, max_jobs, worker, false));
}

Json claim_jobs(Host& host, const std::string& driver, int64_t max_jobs,
                const std::optional<std::string>& worker, bool due_only) {
  Store& store = host.store();
  const bool pg = store.dialect() == Dialect::postgres;
  // A job reported failed with retry waits 2^attempts seconds (at most
  // kMaxBackoffSeconds) from its last report before it is claimed again.
  const std::string due = due_only && pg ? " AND (j.attempts = 0 OR j.updated_at <= "
                                           "$4::timestamptz - pg_catalog.make_interval(secs => "
                                           "LEAST(pg_catalog.power(2, LEAST(j.attempts, 16)), " +
                                               std::to_string(kMaxBackoffSeconds) + ")))"
                                         : "";
  // One statement: the rows the subquery picks are the rows updated. Postgres
  // skips rows another claimer holds; a SQLite write is serialised anyway.
  const std::string sql = std::string(
                              "UPDATE envdb.sys_provisioning_job SET status = 'running', "
                              "attempts = attempts + 1, worker = $3, started_at = $4::timestamptz, "
                              "finished_at = NULL, updated_at = $4::timestamptz "
                              "WHERE id IN (SELECT j.id FROM envdb.sys_provisioning_job j "
                              "WHERE j.status = 'pending' AND j.driver = $1 " +
                              // turso: the jobs of one database one at a time, in the
                              // order they were queued (a revoke after a mint must reach
                              // Turso after it).
                              (driver == "turso" ? kTursoInOrder : "") + due +
                              // A retired copy waits out its drop grace (tenancy/move).
                              (pg ? " AND (j.kind <> 'retire_database' OR (j.payload ->> "
                                    "'dropAfter')::timestamptz <= $4::timestamptz)"
                                  : " AND (j.kind <> 'retire_database' OR "
                                    "json_extract(j.payload, '$.dropAfter') <= $4)") +
                              " ORDER BY j.created_at, j.id LIMIT $2") +
                          (pg ? " FOR UPDATE SKIP LOCKED" : "") + ") RETURNING " +
                          records::kJobColumns;

  Atomic tx(store);
  std::vector<Row> claimed =
      query(store, sql, {driver, max_jobs, worker ? Value(*worker) : null_value(), now_iso()});
  std::sort(claimed.begin(), claimed.end(), [](const Row& a, const Row& b) {
    const std::string ka = a.text("created_at"), kb = b.text("created_at");
    return ka != kb ? ka < kb : a.text("id") < b.text("id");
  });
  Json out = Json::array();
  Json ids = Json::array();
  for (const Row& job : claimed) {
    Json j = records::job_json(job);
    if (driver == "turso") j["payload"] = turso::refresh_on_claim(host, job);
    std::optional<Row> db;
    if (auto database_id = job.opt_text("database_id"))
      db = query_one(store,
                     "SELECT id, driver, database_name, database_url, region "
                     "FROM envdb.sys_environment_database WHERE id = $1",
                     {*database_id});
    // A worker acts on the name it is handed: a row envdb never wrote is
    // refused here, not passed on (the claim changes nothing).
    if (db) row_rules::require_database(*db);
    out.push_back(Json{{"id", j["id"]},
                       {"kind", j["kind"]},
                       {"driver", j["driver"]},
                       {"status", j["status"]},
                       {"environmentId", j["environmentId"]},
                       {"databaseId", j["databaseId"]},
                       {"databaseName", db ? Json(db->text("database_name")) : Json(nullptr)},
                       {"region", db ? Json(db->text("region")) : Json(nullptr)},
                       {"attempts", j["attempts"]},
                       {"payload", sorted_keys(j["payload"])}});
    ids.push_back(j["id"]);
  }
  if (!claimed.empty())
    audit::record(host, {"job.claim", std::nullopt, std::nullopt, "provisioning_job", std::nullopt,
                         Json{{"driver", driver},
                              {"worker", worker ? Json(*worker) : Json(nullptr)},
                              {"jobIds", ids}}});
  tx.done();
  return out;
}

Value complete_provisioning_job(api::Call& c) {
  const std::string job_id = job_id_arg(c);
  const auto database_url = c.opt_text("database_url", kMaxUrl);
  if (database_url && database_url->empty())
    fail(Code::invalid_parameter, "database_url must not be empty");
  const Json tokens = c.opt_object("tokens").value_or(Json::object());
  return api::json_result(complete_job(c.host, job_id, database_url, tokens));
}

Json complete_job(Host& host, const std::string& job_id,
                  const std::optional<std::string>& database_url, const Json& tokens) {
  Store& store = host.store();
  Row job = load_job(store, job_id);
  require_running(job);
  require_tokens(tokens);
  require_report_fits_kind(job, database_url, tokens);
  const std::string environment_id = job.text("environment_id");
  Row env = records::load_environment(store, "environment_id", environment_id);
  require_still_provisioning(job, env);
  const auto database_id = job.opt_text("database_id");
  if (!tokens.empty() && !database_id)
    fail(Code::invalid_parameter,
         "tokens were given for job " + quote_value(job_id) + ", which has no database");
  if (!tokens.empty()) (void)host.keyring().active_key();

  Atomic tx(store);
  const std::string now = now_iso();
  const Json scopes = store_reported_tokens(host, job, database_id, tokens);
  record_job_outcome(host, job, database_id, database_url, now);
  execute(store,
          "UPDATE envdb.sys_provisioning_job SET status = 'done', finished_at = $2::timestamptz, "
          "updated_at = $2::timestamptz WHERE id = $1",
          {job_id, now});
  audit::record(host, {"job.complete", env.text("organization_id"), environment_id,
                       "provisioning_job", job_id,
                       Json{{"kind", job.text("kind")},
                            {"driver", job.text("driver")},
                            {"databaseUrl", database_url ? Json(*database_url) : Json(nullptr)},
                            {"scopes", scopes}}});
  tx.done();
  return job_and_environment(store, job_id, environment_id);
}

Value fail_provisioning_job(api::Call& c) {
  const std::string job_id = job_id_arg(c);
  // A worker's error text is kept, not refused: a refused report would leave
  // the job running forever.
  const std::string error = truncate_chars(c.text("error", 1 << 20), kMaxErrorChars);
  if (error.empty()) fail(Code::invalid_parameter, "error must not be empty");
  const bool retry = c.opt_boolean("retry").value_or(false);
  return api::json_result(fail_job(c.host, job_id, error, retry));
}

Json fail_job(Host& host, const std::string& job_id, const std::string& error, bool retry) {
  Store& store = host.store();
  Row job = load_job(store, job_id);
  require_running(job);
  const std::string environment_id = job.text("environment_id");
  Row env = records::load_environment(store, "environment_id", environment_id);
  const bool fail_environment = !retry && job.text("kind") == "create_database" &&
                                env.text("status") == "provisioning";

  Atomic tx(store);
  const std::string now = now_iso();
  if (retry) {
    execute(store,
            "UPDATE envdb.sys_provisioning_job SET status = 'pending', last_error = $2, "
            "worker = NULL, started_at = NULL, updated_at = $3::timestamptz WHERE id = $1",
            {job_id, error, now});
  } else {
    execute(store,
            "UPDATE envdb.sys_provisioning_job SET status = 'failed', last_error = $2, "
            "finished_at = $3::timestamptz, updated_at = $3::timestamptz WHERE id = $1",
            {job_id, error, now});
  }
  if (fail_environment) {
    lifecycle::require(environment_id, "provisioning", "failed");
    execute(store,
            "UPDATE envdb.sys_environment SET status = 'failed', updated_at = $2::timestamptz "
            "WHERE id = $1",
            {environment_id, now});
  }
  copy::job_failed(host, job, retry, now);
  backups::job_failed(host, job, retry, now);
  // The error text stays in the job row: a worker's message is not vetted
  // for secrets, so the audit trail does not copy it.
  audit::record(host, {"job.fail", env.text("organization_id"), environment_id, "provisioning_job",
                       job_id,
                       Json{{"kind", job.text("kind")},
                            {"driver", job.text("driver")},
                            {"retry", retry},
                            {"attempts", job.integer("attempts")},
                            {"environmentFailed", fail_environment}}});
  tx.done();
  return job_and_environment(store, job_id, environment_id);
}

std::vector<api::Function> functions() {
  return {
      {"claim_provisioning_jobs",
       {{"driver", T::text, nullptr}, {"max_jobs", T::integer, "10"}, {"worker", T::text, "NULL"}},
       T::json,
       claim_provisioning_jobs,
       api::kWrites,
       api::kAdmin,
       "claim up to max_jobs (1 to 1000) pending jobs of a driver, oldest first: each job is "
       "claimed by exactly one caller and becomes running"},
      {"complete_provisioning_job",
       {{"job_id", T::text, nullptr},
        {"database_url", T::text, "NULL"},
        {"tokens", T::json, "NULL"}},
       T::json,
       complete_provisioning_job,
       api::kWrites,
       api::kAdmin,
       "report a running job done: records the database URL, stores each token of tokens "
       "(scope -> token; required for turso) as that scope's active credential, and makes the "
       "environment active; a drop_database job (no database_url or tokens) records the "
       "database dropped and leaves the environment archived"},
      {"fail_provisioning_job",
       {{"job_id", T::text, nullptr}, {"error", T::text, nullptr}, {"retry", T::boolean, "false"}},
       T::json,
       fail_provisioning_job,
       api::kWrites,
       api::kAdmin,
       "report a running job failed: with retry it is pending again, otherwise it and its "
       "environment become failed (retry_environment queues it again)"},
  };
}

}  // namespace envdb::outbox
