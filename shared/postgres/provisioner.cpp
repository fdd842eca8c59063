#include "postgres/provisioner.hpp"

#include <cctype>

#include "catalog/records.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "postgres/converge.hpp"
#include "postgres/copier.hpp"
#include "postgres/hosts.hpp"
#include "secrets/vault.hpp"

namespace envdb::postgres {

bool queue_job(Host& host, const std::string& database_id, const std::string& kind,
               const std::optional<std::string>& credential_id) {
  Store& store = host.store();
  auto db = query_one(store,
                      "SELECT environment_id, driver, provisioned_at FROM "
                      "envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db || db->text("driver") != "postgres" || is_null((*db)["provisioned_at"])) return false;
  Json payload = Json::object();
  if (credential_id) payload["credentialId"] = *credential_id;
  queue::enqueue(host, {db->text("environment_id"), database_id, kind, "postgres", payload});
  return true;
}

Work load_work(Host& host, const std::string& job_id, bool verifiers) {
  Store& store = host.store();
  require_id("job_id", job_id);
  auto job = query_one(
      store,
      "SELECT j.id, j.kind, j.driver, j.environment_id, j.database_id, j.payload, e.status, "
      "e.organization_id, d.database_name, d.host_id FROM "
      "envdb.sys_provisioning_job j JOIN envdb.sys_environment e ON e.id = "
      "j.environment_id JOIN envdb.sys_environment_database d ON d.id = "
      "j.database_id WHERE j.id = $1",
      {job_id});
  if (!job) fail(Code::not_found, "job_id " + quote_value(job_id) + " names no database job");
  if (job->text("driver") != "postgres")
    fail(Code::invalid_parameter, "job " + quote_value(job_id) + " is a " + job->text("driver") +
                                      " job, not a postgres one");
  Work w;
  w.job_id = job_id;
  w.kind = job->text("kind");
  w.environment_id = job->text("environment_id");
  w.organization_id = job->text("organization_id");
  w.environment_status = job->text("status");
  w.database_id = job->text("database_id");
  w.database_name = job->text("database_name");
  w.roles = roles_for(w.database_name);
  if (auto payload = job->opt_text("payload")) {
    Json parsed = Json::parse(*payload, nullptr, false);
    if (parsed.is_object()) w.payload = std::move(parsed);
  }

  if (w.kind == "retire_database") {
    // The server the database left, not the one it lives on now.
    if (w.payload.contains("hostId") && w.payload["hostId"].is_string())
      w.server = load_server(host, w.payload["hostId"].get<std::string>());
  } else if (auto host_id = job->opt_text("host_id")) {
    w.server = load_server(host, *host_id);
  }
  if (w.kind == "move_database") {
    if (!w.payload.contains("targetHostId") || !w.payload["targetHostId"].is_string())
      throw Error(Code::internal, "move job " + job_id + " names no target host");
    w.move_target = load_server(host, w.payload["targetHostId"].get<std::string>());
  }
  const std::string restrict = settings::setting(host, "restrict_server_connect");
  // A move is restricted as a database made on its target would be.
  const bool registered = w.kind == "move_database" ? w.move_target.has_value()
                                                    : w.server.has_value();
  w.restrict_connect = restrict == "all" || (restrict == "hosts" && registered);

  const int64_t now_ms_value = now_ms();
  const std::string moved_status = w.payload.contains("previousStatus") &&
                                           w.payload["previousStatus"] == "suspended"
                                       ? "suspended"
                                       : "active";
  for (const Row& c : query(store,
                            std::string("SELECT ") + vault::kSealedColumns +
                                ", status, expires_at FROM envdb.sys_database_credential WHERE "
                                "database_id = $1 ORDER BY issued_at, id",
                            {w.database_id})) {
    Login l;
    l.credential_id = c.text("id");
    l.scope = c.text("scope");
    l.name = login_name(w.database_name, l.scope, l.credential_id);
    l.valid_until = c.opt_text("expires_at");
    // A move recreates the logins the environment has outside its maintenance.
    l.live = converge::login_live(c.text("status"), l.valid_until,
                                  w.kind == "move_database" ? moved_status : w.environment_status,
                                  now_ms_value);
    if (l.live && (verifiers || w.kind == "move_database")) {
      const crypto::SecretBytes token(vault::open_token(host, c));
      l.verifier = crypto::scram_sha256_verifier(token.view(), crypto::random_bytes(16));
    }
    w.logins.push_back(std::move(l));
  }
  return w;
}

bool is_copy_kind(const std::string& kind) {
  return kind == "copy_database" || kind == "reset_database" || kind == "backup_database" ||
         kind == "restore_database" || kind == "delete_backup";
}

namespace {

std::optional<std::string> payload_text(const Json& payload, const char* key) {
  if (!payload.is_object() || !payload.contains(key) || !payload[key].is_string())
    return std::nullopt;
  return payload[key].get<std::string>();
}

// A copy's plan from its job: `kind` and `payload` are the job's, or, for a
// new environment as a copy, copy_database and its payload.copyFrom.
CopyPlan copy_plan(const Work& w, const std::string& kind, const Json& payload) {
  CopyPlan p;
  p.kind = kind;
  p.target = w.database_name;
  p.environment_id = w.environment_id;
  p.organization_id = w.organization_id;
  p.mode = payload_text(payload, "mode").value_or("full");
  if (kind == "copy_database") {
    p.source = payload_text(payload, "sourceDatabaseName");
    if (!p.source) throw Error(Code::internal, "copy job " + w.job_id + " names no source");
    (void)roles_for(*p.source);  // validates the name
    // CREATE DATABASE ... TEMPLATE copies within one server.
    const auto source_host = payload_text(payload, "sourceHostId");
    const std::optional<std::string> target_host =
        w.server ? std::optional<std::string>(w.server->id) : std::nullopt;
    if (source_host != target_host)
      fail(Code::conflict, "the source database " + quote_value(*p.source) +
                               " is on another server than the target; copies stay on one "
                               "server (move_environment moves a database)");
  } else if (kind != "reset_database") {
    // The backup's database, as the catalog recorded it.
    p.backup = payload_text(payload, "location");
    if (!p.backup) throw Error(Code::internal, "backup job " + w.job_id + " names no location");
    // Only a database beside this one (backup_database_name) is used.
    const std::string prefix = w.database_name + "_b_";
    bool ok = p.backup->size() <= 63 && p.backup->compare(0, prefix.size(), prefix) == 0;
    for (char c : *p.backup)
      ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    if (!ok)
      fail(Code::invalid_parameter, "backup location " + quote_value(*p.backup) +
                                        " is not a database beside " +
                                        quote_value(w.database_name));
  }
  return p;
}

// Removes what the environment's roles own in every other database of the
// server (a large object in `postgres`, a table in the control plane), then
// the roles themselves: a DROP ROLE would fail on any of those.
void drop_everything(const Work& w, ServerSession& server) {
  std::vector<std::string> logins;
  for (const Login& l : w.logins) logins.push_back(l.name);
  const auto statements = drop_database_sql(w.database_name, w.roles, logins);
  server.exec_top_level(statements.front());
  // Its backups and what a copy left beside it ("<name>_..."): its roles own
  // what they hold, and a backup accepts no connection for DROP OWNED.
  const auto beside = server.query_value(beside_databases_sql(w.database_name));
  const Json names = beside ? Json::parse(*beside, nullptr, false) : Json::array();
  if (names.is_array())
    for (const Json& name : names)
      if (name.is_string())
        server.exec_top_level("DROP DATABASE IF EXISTS " +
                              quote_identifier(name.get<std::string>()) + " WITH (FORCE)");
  const auto listed = server.query_value(other_databases_sql(w.database_name));
  const Json others = listed ? Json::parse(*listed, nullptr, false) : Json::array();
  if (others.is_array()) {
    for (const Json& db : others) {
      if (!db.is_string()) continue;
      try {
        server.exec_in_database(db.get<std::string>(), drop_owned_sql(w.database_name));
      } catch (const Error& e) {
        throw Error(Code::internal, "cannot remove what the roles of " +
                                        quote_value(w.database_name) + " own in database " +
                                        quote_value(db.get<std::string>()) + ": " + e.what());
      }
    }
  }
  try {
    for (size_t i = 1; i < statements.size(); ++i) server.exec(statements[i]);
    server.exec(drop_leftover_roles_sql(w.database_name));
  } catch (const Error& e) {
    throw Error(Code::internal, "cannot drop the roles of " + quote_value(w.database_name) +
                                    " (they still own or are granted something in a database "
                                    "envdb cannot reach): " +
                                    e.what());
  }
}

}  // namespace

std::optional<std::string> carry_out(const Work& w, ServerSession& server,
                                     const std::function<void()>& converge_logins, Json* result,
                                     const Progress& progress) {
  if (w.kind == "move_database")
    throw Error(Code::internal, "a move_database job needs a session on each server (mover.hpp)");
  if (w.kind == "drop_database" || w.kind == "retire_database") {
    drop_everything(w, server);
    return std::nullopt;
  }
  if (is_copy_kind(w.kind)) {
    CopyPlan plan = copy_plan(w, w.kind, w.payload);
    // On the server the worker runs on, the old content is dropped after the
    // report (the target is back sooner; the worker's pass drops what a crash
    // in between left, retired_leftovers_sql). Only when the caller reads the
    // result, which names it.
    plan.keep_retired = !w.server && result;
    const CopyOutcome o = carry_out_copy(plan, server, progress);
    if (result) {
      *result = Json{{"cloneMs", o.clone_ms}, {"handMs", o.hand_ms},   {"swapMs", o.swap_ms},
                     {"dropMs", o.drop_ms},   {"totalMs", o.total_ms}, {"attempts", o.attempts}};
      if (o.size_bytes) (*result)["sizeBytes"] = *o.size_bytes;
      if (o.retired) (*result)["retired"] = *o.retired;
    }
    // The target's logins are not converged here: they would be made NOLOGIN
    // (maintenance) just before the report ends the maintenance and the
    // convergence after the job gives them back; the swap has ended the
    // target's sessions already.
    return std::nullopt;
  }
  server.exec(script(ensure_roles_sql(w.roles)));
  std::optional<std::string> url;
  if (w.kind == "create_database") {
    const auto owner = server.query_value(database_owner_sql(w.database_name));
    // A new environment as a copy (payload.copyFrom): the copy is built
    // beside it and swapped in, its data plane the source's, re-stamped.
    const bool copy = w.payload.contains("copyFrom") && w.payload["copyFrom"].is_object();
    if (must_create_database(w.database_name, owner, w.roles)) {
      if (copy) {
        const CopyOutcome o =
            carry_out_copy(copy_plan(w, "copy_database", w.payload["copyFrom"]), server, progress);
        if (result) *result = Json{{"cloneMs", o.clone_ms}, {"totalMs", o.total_ms}};
      } else {
        server.exec_top_level(create_database_sql(w.database_name, w.roles));
      }
    }
    std::vector<std::string> grants = database_grants_sql(w.database_name, w.roles);
    if (w.restrict_connect) grants.push_back(restrict_connect_sql(w.database_name));
    server.exec(script(grants));
    if (!copy)
      server.exec_in_database(w.database_name, in_database_sql(w.roles, w.environment_id,
                                                               w.organization_id, w.database_name));
    url = server.url(w.database_name);
  }
  if (converge_logins) {
    // The logins as the catalog says now, not as it said when the job was
    // loaded: a revoke committed during the steps above counts.
    converge_logins();
    return url;
  }
  for (const Login& l : w.logins) {
    if (l.live) {
      server.exec(ensure_login_sql(l, w.roles));
    } else {
      server.exec(disable_login_sql(l.name));
      (void)server.query_value(terminate_sessions_sql(l.name));
    }
  }
  return url;
}

}  // namespace envdb::postgres
