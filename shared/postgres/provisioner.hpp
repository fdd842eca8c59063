// The postgres driver's jobs, control-plane side: what a worker must know to
// carry out one job (load_work), carrying it out on a ServerSession
// (carry_out), and the jobs credential changes queue (queue_job). The Postgres
// host's background worker (pg_ext/worker*.cpp) runs them.
#pragma once
#include "core/cpp_only.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/json.hpp"
#include "postgres/statements.hpp"

namespace envdb::postgres {

// Everything a worker needs to carry out one postgres job: read from the
// control plane in one transaction, executed on the server after it.
struct Work {
  std::string job_id;
  // create_database | create_login | disable_login | drop_database, and the
  // copies (copier.hpp): copy_database | reset_database | backup_database |
  // restore_database | delete_backup
  std::string kind;
  std::string environment_id;
  std::string organization_id;
  std::string environment_status;
  std::string database_id;
  std::string database_name;
  Roles roles;
  std::optional<Server> server;  // nullopt: the local server
  std::vector<Login> logins;     // every credential of the database
  // create_database: environment logins may connect to no other database of
  // the server (setting restrict_server_connect).
  bool restrict_connect = false;
  Json payload = Json::object();  // the job's payload (copies: source, mode, backup)
  // move_database: the host it moves to (payload.targetHostId); the job's
  // `server` is where the database is now, and its live logins have their
  // verifiers though the environment is in maintenance. retire_database:
  // `server` is the host the database left (payload.hostId).
  std::optional<Server> move_target;
};

// Whether `kind` is one of the copies carried out by copier.hpp.
bool is_copy_kind(const std::string& kind);

// Where a copy's steps are, for whoever watches (the worker shows it in
// pg_stat_activity and its log).
using Progress = std::function<void(const std::string&)>;

// retire_database, the old copy a move left (tenancy/move): dropped with
// its roles and logins as drop_database does, on the server it left.
// move_database is not carried out here: the host runs postgres/mover.hpp
// with a session on each server.
// Carries out a job on the server: the scope roles, then (create_database)
// the database, its grants and its schema, then the logins: through
// `converge_logins` when given (it reads the catalog again, see converge.hpp),
// else every login of `work` (live: LOGIN with VALID UNTIL; otherwise NOLOGIN
// and its sessions ended). Idempotent, so a retry after a partial run
// converges. drop_database drops the database, removes what the
// environment's roles own in every other database of the server (DROP OWNED
// BY), then drops its roles and logins; a failure names the database or the
// roles that stopped it. Returns the database URL for create_database.
// A copy, reset, backup or restore (is_copy_kind) builds the new content
// beside the target and swaps it in (copier.hpp); `result` (when given)
// receives what it measured: {"cloneMs", "handMs", "swapMs", "dropMs",
// "totalMs", "attempts", "sizeBytes"}, and, on the server the worker runs on,
// "retired": the old content it left for the caller to drop after reporting
// the job (drop_retired). The target's logins are left to the convergence
// after the job.
std::optional<std::string> carry_out(const Work& work, ServerSession& server,
                                     const std::function<void()>& converge_logins = nullptr,
                                     Json* result = nullptr, const Progress& progress = nullptr);

// Loads a claimed job. Verifiers are computed for live credentials (the
// keyring must hold their keys: key_unavailable otherwise); with `verifiers`
// false only a move's are (a caller that passes converge_logins to carry_out
// creates the logins from the catalog as it is then, so a verifier computed
// here, a PBKDF2 of 4096 rounds each, would be thrown away). not_found when
// the job is gone, invalid_parameter when it is not a postgres job.
Work load_work(Host& host, const std::string& job_id, bool verifiers = true);

// Queues a job of `kind` for a postgres database that is provisioned (a
// database still being created gets every credential from its create job),
// with {credentialId} as payload when given. Returns whether one was queued
// and tells the host (Host::jobs_queued).
bool queue_job(Host& host, const std::string& database_id, const std::string& kind,
               const std::optional<std::string>& credential_id);
}  // namespace envdb::postgres
