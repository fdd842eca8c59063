#include "jobs/turso.hpp"

#include <set>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "jobs/queue.hpp"
#include "secrets/vault.hpp"

namespace envdb::turso {

namespace {

// The actions whose job invalidates every token of the database at Turso.
bool invalidates(const std::string& action) {
  return action == "revoke" || action == "expire" || action == "suspend" || action == "archive";
}

// Turso's token kinds: a read-only token for the readonly scope, full access
// otherwise.
const char* authorization(const std::string& scope) {
  return scope == "readonly" ? "read-only" : "full-access";
}

Json mint_entry(const std::string& scope, const std::optional<std::string>& expires_at,
                const std::optional<std::string>& replaces) {
  return Json{{"scope", scope},
              {"authorization", authorization(scope)},
              {"expiresAt", json_text(expires_at)},
              {"replaces", json_text(replaces)}};
}

std::optional<Row> load_database(Store& store, const std::string& database_id) {
  return query_one(store,
                   "SELECT d.id, d.environment_id, d.database_name, d.database_url, d.region, "
                   "d.driver, d.provisioned_at, e.status AS environment_status, "
                   "e.organization_id FROM envdb.sys_environment_database d "
                   "JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE d.id = $1",
                   {database_id});
}

Json base_payload(const std::string& action, const Row& db) {
  return Json{{"action", action},
              {"environmentId", db.text("environment_id")},
              {"databaseId", db.text("id")},
              {"databaseName", db.text("database_name")},
              {"databaseUrl", json_text(db.opt_text("database_url"))},
              {"region", db.text("region")},
              {"invalidateTokens", invalidates(action)},
              {"credentialIds", Json::array()},
              {"mint", Json::array()}};
}

// A fresh token for every credential that must keep working after the
// invalidation (or again after a suspension): the active ones not expired,
// when the environment is active. Each keeps its own expiry.
Json live_mints(Store& store, const std::string& database_id, const std::string& env_status) {
  Json out = Json::array();
  if (env_status != "active") return out;
  for (const Row& r : query(store,
                            "SELECT id, scope, expires_at FROM envdb.sys_database_credential "
                            "WHERE database_id = $1 AND status = 'active' AND (expires_at IS NULL "
                            "OR expires_at > $2::timestamptz) ORDER BY scope, id",
                            {database_id, now_iso()}))
    out.push_back(mint_entry(r.text("scope"), r.opt_text("expires_at"), r.text("id")));
  return out;
}

std::optional<Row> active_of_scope(Store& store, const std::string& database_id,
                                   const std::string& scope) {
  return query_one(store,
                   "SELECT id FROM envdb.sys_database_credential WHERE database_id = $1 AND "
                   "scope = $2 AND status = 'active'",
                   {database_id, scope});
}

std::optional<std::string> opt_string(const Json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  return j[key].get<std::string>();
}

Json payload_of(const Row& job) {
  Json p = Json::parse(job.opt_text("payload").value_or("{}"), nullptr, false);
  return p.is_object() ? p : Json::object();
}

audit::Event credential_event(const Row& db, const char* action, const std::string& id) {
  audit::Event e;
  e.action = action;
  e.organization_id = db.text("organization_id");
  e.environment_id = db.text("environment_id");
  e.subject_type = "credential";
  e.subject_id = id;
  return e;
}

}  // namespace

Json create_payload(const Row& environment, const Row& database) {
  Json p{{"action", "create"},
         {"environmentId", environment.text("id")},
         {"databaseId", database.text("id")},
         {"databaseName", database.text("database_name")},
         {"databaseUrl", nullptr},
         {"region", database.text("region")},
         {"invalidateTokens", false},
         {"credentialIds", Json::array()},
         {"mint", Json::array()},
         {"scopes", vault::initial_scopes()}};
  for (const std::string& scope : vault::initial_scopes())
    p["mint"].push_back(mint_entry(scope, std::nullopt, std::nullopt));
  return p;
}

std::optional<Row> queue(Host& host, const std::string& database_id, const std::string& action,
                         const std::vector<std::string>& credential_ids,
                         std::optional<int64_t> grace_seconds) {
  Store& store = host.store();
  auto db = load_database(store, database_id);
  if (!db || db->text("driver") != "turso") return std::nullopt;
  // A database Turso never got needs nothing; one being created gets the job
  // after its create_database job (jobs of a database run in order).
  if (is_null((*db)["provisioned_at"]) &&
      !query_one(store,
                 "SELECT 1 AS present FROM envdb.sys_provisioning_job WHERE database_id = $1 AND "
                 "kind = 'create_database' AND status IN ('pending', 'running')",
                 {database_id}))
    return std::nullopt;
  Json p = base_payload(action, *db);
  for (const std::string& id : credential_ids) p["credentialIds"].push_back(id);
  std::string kind = "create_login";
  if (invalidates(action)) {
    kind = "disable_login";
    p["mint"] = live_mints(store, database_id, db->text("environment_status"));
  } else if (action == "resume") {
    p["mint"] = live_mints(store, database_id, db->text("environment_status"));
  } else if (action == "rotate") {
    if (credential_ids.size() != 1)
      throw Error(Code::internal, "a turso rotate job names exactly one credential");
    auto previous = query_one(store,
                              "SELECT scope FROM envdb.sys_database_credential WHERE id = $1",
                              {credential_ids[0]});
    if (!previous) throw Error(Code::internal, "the rotated credential is gone");
    p["mint"].push_back(
        mint_entry(previous->text("scope"), vault::new_expiry(host), credential_ids[0]));
    p["graceSeconds"] = grace_seconds.value_or(0);
  } else {
    throw Error(Code::internal, "no turso job for action " + quote_value(action));
  }
  return queue::enqueue(host, {db->text("environment_id"), database_id, kind, "turso", p});
}

Row queue_drop(Host& host, const Row& environment, const Row& database) {
  auto db = load_database(host.store(), database.text("id"));
  if (!db) throw Error(Code::internal, "the database to drop is gone");
  return queue::enqueue(host, {environment.text("id"), database.text("id"), "drop_database",
                               "turso", base_payload("drop", *db)});
}

Json replacement_payload(Host& host, const std::string& database_id,
                         const std::string& previous_status) {
  auto db = load_database(host.store(), database_id);
  if (!db) throw Error(Code::internal, "the database to replace is gone");
  Json p = base_payload("replace", *db);
  p["invalidateTokens"] = true;
  p["mint"] = live_mints(host.store(), database_id, previous_status);
  return p;
}

bool is_lifecycle_job(const Row& job) {
  const std::string kind = job.text("kind");
  return job.text("driver") == "turso" &&
         (kind == "create_login" || kind == "disable_login" || kind == "copy_database" ||
          kind == "reset_database" || kind == "restore_database");
}

Json refresh_on_claim(Host& host, const Row& job) {
  Json p = payload_of(job);
  if (!is_lifecycle_job(job) || !job.opt_text("database_id")) return p;
  Store& store = host.store();
  const std::string database_id = job.text("database_id");
  auto db = load_database(store, database_id);
  if (!db) return p;
  const std::string action = opt_string(p, "action").value_or("");
  // The database may have got its URL since the job was queued.
  p["databaseUrl"] = json_text(db->opt_text("database_url"));
  if (invalidates(action) || action == "resume") {
    p["mint"] = live_mints(store, database_id, db->text("environment_status"));
  } else if (action == "rotate" && p.contains("mint") && p["mint"].is_array()) {
    for (Json& m : p["mint"]) {
      auto current = active_of_scope(store, database_id, opt_string(m, "scope").value_or(""));
      m["replaces"] = current ? Json(current->text("id")) : Json(nullptr);
    }
  }
  execute(store, "UPDATE envdb.sys_provisioning_job SET payload = $2::jsonb WHERE id = $1",
          {job.text("id"), p.dump()});
  return p;
}

namespace {

// The mint entries of a job's payload; the reported tokens must be exactly
// one for each of their scopes.
std::vector<Json> mints_matching_tokens(const std::string& job_id, const Json& p,
                                        const Json& tokens) {
  std::vector<Json> mints;
  std::set<std::string> wanted;
  if (p.contains("mint") && p["mint"].is_array())
    for (const Json& m : p["mint"]) {
      auto scope = opt_string(m, "scope");
      if (!scope || !vault::is_scope(*scope)) continue;
      mints.push_back(m);
      wanted.insert(*scope);
    }
  std::string asked;
  for (const std::string& s : wanted) asked += (asked.empty() ? "" : ", ") + s;
  for (auto& [scope, token] : tokens.items())
    if (!wanted.count(scope))
      fail(Code::invalid_parameter,
           "tokens." + scope + " was not asked for: job " + quote_value(job_id) + " mints " +
               (asked.empty() ? std::string("no token") : "a token for " + asked));
  for (const std::string& scope : wanted)
    if (!tokens.contains(scope))
      fail(Code::invalid_parameter, "tokens." + scope + " is required: job " + quote_value(job_id) +
                                        " mints a token for " + asked);
  return mints;
}

// Turso invalidated every token of the database: the rotating ones are gone
// for good (the active ones of `mint` are replaced by store_minted).
void revoke_rotating(Host& host, const Row& db, const std::string& job_id, const std::string& now) {
  const std::string database_id = db.text("id");
  for (const Row& r : query(host.store(),
                            "UPDATE envdb.sys_database_credential SET status = 'revoked', "
                            "revoked_at = $2::timestamptz WHERE database_id = $1 AND status = "
                            "'rotating' RETURNING id, scope",
                            {database_id, now})) {
    audit::Event e = credential_event(db, "credential.revoke", r.text("id"));
    e.detail = Json{{"databaseId", database_id},
                    {"scope", r.text("scope")},
                    {"previousStatus", "rotating"},
                    {"reason", "turso tokens invalidated"},
                    {"jobId", job_id}};
    audit::record(host, e);
  }
}

// The active credential a minted token replaces: rotated out (a rotate job,
// with its grace) or revoked.
void retire_replaced(Host& host, const Row& db, const Row& current, const std::string& scope,
                     const Json& p, const std::string& job_id, const std::string& now) {
  Store& store = host.store();
  if (opt_string(p, "action").value_or("") == "rotate") {
    vault::rotate_out(store, current.text("id"),
                      p.contains("graceSeconds") && p["graceSeconds"].is_number_integer()
                          ? p["graceSeconds"].get<int64_t>()
                          : 0);
    return;
  }
  execute(store,
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$2::timestamptz WHERE id = $1",
          {current.text("id"), now});
  audit::Event e = credential_event(db, "credential.revoke", current.text("id"));
  e.detail = Json{{"databaseId", db.text("id")},
                  {"scope", scope},
                  {"previousStatus", "active"},
                  {"reason", "replaced by a token minted by job " + job_id},
                  {"jobId", job_id}};
  audit::record(host, e);
}

// One minted token sealed as its scope's active credential, superseding
// `previous`.
void store_minted(Host& host, const Row& db, const Json& m, const std::string& token,
                  const std::optional<std::string>& previous, const std::string& job_id) {
  const std::string database_id = db.text("id");
  const std::string scope = m["scope"].get<std::string>();
  Json credential =
      vault::insert_sealed(host, database_id, scope, token, opt_string(m, "expiresAt"), previous);
  audit::Event e = credential_event(db, "credential.issue", credential["id"].get<std::string>());
  e.detail =
      Json{{"databaseId", database_id}, {"scope", scope},  {"kmsKeyId", credential["kmsKeyId"]},
           {"tokenSource", "turso"},    {"jobId", job_id}, {"supersededId", json_text(previous)}};
  audit::record(host, e);
}

}  // namespace

Json complete(Host& host, const Row& job, const Json& tokens) {
  Store& store = host.store();
  const std::string job_id = job.text("id");
  const Json p = payload_of(job);
  const std::vector<Json> mints = mints_matching_tokens(job_id, p, tokens);

  const std::string database_id = job.text("database_id");
  auto db = load_database(store, database_id);
  if (!db) fail(Code::not_found, "job " + quote_value(job_id) + " names no database");
  const std::string now = now_iso();
  if (p.contains("invalidateTokens") && p["invalidateTokens"].is_boolean() &&
      p["invalidateTokens"].get<bool>())
    revoke_rotating(host, *db, job_id, now);

  Json stored = Json::array();
  // An archived environment gets no new credentials; Turso's tokens die with
  // the archive job that follows.
  if (db->text("environment_status") == "archived") return stored;
  for (const Json& m : mints) {
    const std::string scope = m["scope"].get<std::string>();
    const auto replaces = opt_string(m, "replaces");
    auto current = active_of_scope(store, database_id, scope);
    // Someone issued another credential of this scope meanwhile: it stays.
    // The token minted here is known to no one and dies with the next
    // invalidation.
    if (current && current->text("id") != replaces.value_or("")) continue;
    if (current) retire_replaced(host, *db, *current, scope, p, job_id, now);
    const std::optional<std::string> previous =
        current ? std::optional<std::string>(current->text("id")) : std::nullopt;
    store_minted(host, *db, m, tokens[scope].get<std::string>(), previous, job_id);
    stored.push_back(scope);
  }
  return stored;
}

}  // namespace envdb::turso
