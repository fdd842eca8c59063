// The database worker: one per control-plane database at a time, bound to
// it. Each pass
//   1. writes the last_accessed_at accesses resolves recorded in shared
//      memory (touch_log.hpp), in one UPDATE,
//   2. claims due postgres jobs one by one (FOR UPDATE SKIP LOCKED) and carries
//      each out on its server, then reports it (complete, retry with backoff,
//      or failed), and converges that database's logins again; after each job
//      it writes the accesses and expires the deadlines passed meanwhile. The
//      jobs come first: the job a commit woke the worker for waits for none of
//      the duties below,
//   3. reclaims jobs a dead worker left running (its process is gone) and
//      drops the old content a copy left when its worker stopped before that,
//   4. expires the credentials whose deadline passed (credentials::expire_due)
//      and runs the policy sweep,
//   5. claims again (the jobs step 3 put back, once due; any queued meanwhile),
//   6. converges the logins of every postgres database on every server to
//      what the catalog says now (converge.hpp).
// The launcher starts the worker, and asks it for a pass, when a committed
// transaction queued a job (the commit also sets the worker's latch) and
// every few seconds for each control plane, so deadlines and changes that
// queue nothing (a suspension) reach the servers within seconds. Between
// passes the worker stays connected (wait_for_request) until another database
// needs its slot or a session wants this database to itself.
//
// Nothing a less-privileged role can take is waited on: jobs are claimed with
// row locks and SKIP LOCKED; a running job belongs to a live worker process
// (pg_stat_activity), not to an advisory lock. One error boundary per job and
// per server (run_guarded): an error becomes the job's report or a log line,
// never an exception leaving the worker.
#include <vector>

#include "core/clock.hpp"
#include "core/json.hpp"
#include "jobs/outbox.hpp"
#include "postgres/converge.hpp"
#include "postgres/copier.hpp"
#include "postgres/hosts.hpp"
#include "postgres/mover.hpp"
#include "postgres/provisioner.hpp"
#include "postgres/statements.hpp"
#include "secrets/credentials.hpp"
#include "tenancy/backups.hpp"
#include "tenancy/policies.hpp"
#include "tenancy/resolve.hpp"
#include "tenancy/usage.hpp"
#include "touch_log.hpp"
#include "worker.hpp"
#include "worker_internal.hpp"

extern "C" {
#include "catalog/pg_authid.h"
#include "storage/lmgr.h"
}

namespace envdb::pg::worker {

namespace {

constexpr int64_t kMaxAttempts = 8;  // tries of a job whose failures are transient

std::string worker_name() { return "envdb bgworker " + std::to_string(MyProcPid); }

void report_activity(const char* what) {
  guarded([what] {
    pgstat_report_activity(what ? STATE_RUNNING : STATE_IDLE, what);
    return 0;
  });
}

// The one error boundary of a step: what fails is logged, and the worker
// goes on with the next step (a job's own failure is its report instead).
template <typename F>
void boundary(const std::string& what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    log_message(LOG, what + " failed: " + e.what());
  } catch (...) {
    log_message(LOG, what + " failed");
  }
}

bool has_envdb() {
  return in_transaction(
      [] { return guarded([] { return OidIsValid(get_extension_oid("envdb", true)); }); });
}

// The server keyring (envdb.keyring_file / keyring_command in the server
// configuration) is what opens tokens; a session's SET does not reach here.
bool keyring_ready() {
  try {
    auto host = make_host();
    (void)host->keyring().active_key();
    return true;
  } catch (const Error&) {
    return false;
  }
}

int64_t pending_jobs() {
  return in_transaction([] {
    SpiStore store;
    auto row = query_one(store,
                         "SELECT count(*) AS n FROM envdb.sys_provisioning_job WHERE status = "
                         "'pending' AND driver = 'postgres'");
    return row ? row->integer("n") : int64_t{0};
  });
}

// Jobs left running by a database worker whose process is gone (a crash, a
// restart, a kill): back to pending, to be claimed again (claiming counts the
// attempt). Liveness is the process itself, in pg_stat_activity: no lock
// another role could hold stands for it. Only one database worker runs per
// control plane at a time and this one runs no job while it reclaims, so a job
// marked with this process's pid is stale too (a pid reused after a restart,
// or a job of its own whose report could not be written).
void reclaim_stale_jobs() {
  in_transaction([] {
    SpiStore store;
    // Most passes find no running job: this indexed look first spares them
    // planning the join with pg_stat_activity (about 10 ms in a new worker).
    auto running = query_one(store,
                             "SELECT EXISTS (SELECT FROM envdb.sys_provisioning_job WHERE status = "
                             "'running' AND driver = 'postgres') AS any");
    if (!running || !running->boolean("any")) return 0;
    execute(store,
            "UPDATE envdb.sys_provisioning_job j SET status = 'pending', worker = NULL, "
            "last_error = 'interrupted: its worker stopped before finishing; resumed', "
            "updated_at = now() WHERE j.status = 'running' AND j.driver = 'postgres' AND "
            "j.worker LIKE 'envdb bgworker %' AND NOT EXISTS (SELECT FROM "
            "pg_catalog.pg_stat_activity a WHERE a.pid <> pg_catalog.pg_backend_pid() AND "
            "a.backend_type = 'envdb database worker' AND j.worker = 'envdb bgworker ' || a.pid)");
    return 0;
  });
}

// The old content a copy, reset or restore swapped out on this server and
// left when its worker stopped between reporting the job and dropping it
// (run_job): dropped at the next pass.
void drop_retired_leftovers() {
  const auto names = in_transaction([] {
    SpiStore store;
    std::vector<std::string> out;
    for (const Row& r : query(store, postgres::retired_leftovers_sql()))
      out.push_back(r.text("name"));
    return out;
  });
  if (names.empty()) return;
  auto session = open_session(std::nullopt);
  for (const std::string& name : names) {
    session->exec_top_level("DROP DATABASE IF EXISTS " + postgres::quote_identifier(name) +
                            " WITH (FORCE)");
    log_message(LOG, "dropped " + name + ", the old content a copy, reset or restore left");
  }
}

// Deadlines: grace ends and expiries become revoked credentials (with their
// audit events) at the first pass after them, with no caller needed.
void expire_deadlines() {
  const int64_t n = in_transaction([] {
    auto host = make_host();
    return credentials::expire_due(*host);
  });
  if (n > 0)
    log_message(LOG, "expired " + std::to_string(n) + " credential(s) past their deadline");
}

// The policy sweep (policies.cpp): trials past their end suspended, past
// their grace archived, usage of this server's databases measured when due,
// storage decisions made; each step audited, in one transaction.
void enforce_policies() {
  const Json done = in_transaction([] {
    auto host = make_host();
    return policies::sweep(*host);
  });
  for (const char* key : {"suspendedTrials", "archivedTrials", "readOnly", "writable"})
    for (const auto& id : done[key])
      log_message(LOG, std::string(key) + ": " + id.get<std::string>());
}

// Usage of the databases on registered hosts whose measurement is due, one
// session per host; a host that fails is logged and the others go on.
void measure_hosts() {
  const auto due = in_transaction([] {
    auto host = make_host();
    return usage::due_on_hosts(*host);
  });
  size_t i = 0;
  while (i < due.size()) {
    const std::string host_id = *due[i].host_id;
    size_t end = i;
    while (end < due.size() && *due[end].host_id == host_id) ++end;
    boundary("measuring usage on database host " + host_id, [&] {
      const std::optional<postgres::Server> server = in_transaction([&] {
        auto host = make_host();
        return postgres::load_server(*host, host_id);
      });
      auto session = open_session(server);
      for (size_t k = i; k < end; ++k) {
        const auto bytes = session->query_value(usage::size_sql(due[k].database_name));
        if (!bytes) continue;
        in_transaction([&] {
          auto host = make_host();
          usage::record(*host, due[k].database_id, std::stoll(*bytes));
          return 0;
        });
      }
    });
    i = end;
  }
}

// Storage read-only decisions carried out: inside each database whose server
// does not carry its decision yet, the write privileges of the readwrite and
// admin scope roles are withdrawn or granted back, then the catalog records
// it. A crash in between runs the idempotent statements again next pass.
void converge_write_access() {
  const auto pending = in_transaction([] {
    SpiStore store;
    return usage::write_access_pending(store);
  });
  for (const usage::Hosted& d : pending) {
    boundary("storage access of database " + d.database_name, [&] {
      std::optional<postgres::Server> server;
      if (d.host_id)
        server = in_transaction([&] {
          auto host = make_host();
          return postgres::load_server(*host, *d.host_id);
        });
      open_session(server)->exec_in_database(d.database_name,
                                             usage::write_access_sql(d.database_name, d.read_only));
      in_transaction([&] {
        SpiStore store;
        usage::mark_applied(store, d.database_id, d.read_only);
        return 0;
      });
      log_message(LOG, std::string(d.read_only ? "withdrew" : "restored") +
                           " the write privileges in database " + d.database_name);
    });
  }
}

// One server's logins brought to what the catalog says now. A login to
// create is read again, with its token, in a transaction of its own.
void converge_server(postgres::ServerSession& session, const converge::ServerPlan& plan) {
  const auto steps = converge::apply(session, plan, [](const converge::Desired& d) {
    return in_transaction([&] {
      auto host = make_host();
      return converge::login_to_create(*host, d.credential_id);
    });
  });
  for (const converge::Action& a : steps) {
    const char* what = a.step == converge::Step::create    ? "enabled"
                       : a.step == converge::Step::enable  ? "updated"
                       : a.step == converge::Step::disable ? "disabled"
                                                           : "ended the sessions of";
    log_message(LOG, std::string(what) + " login " + a.login.name);
  }
}

void converge_database(postgres::ServerSession& session, const std::string& database_id,
                       bool creating) {
  const auto plans = in_transaction([&] {
    SpiStore store;
    return converge::desired(store, database_id, creating, now_ms());
  });
  for (const auto& p : plans) converge_server(session, p);
}

// What this control plane logged of a server's failures, across passes (each
// pass is a new process): a server that stays down is logged the first time,
// then at most every 5 minutes with a count, and once when it works again.
// `error` empty: the server converged. Returns the line to log, if any.
std::optional<std::string> note_server(const std::optional<std::string>& host_id,
                                       const std::string& what, const std::string& error) {
  const std::string key = host_id.value_or("");
  if (key.size() >= sizeof(FailingServer::host_id))  // not an id envdb makes: nothing kept
    return error.empty() ? std::nullopt : std::optional<std::string>(what + " failed: " + error);
  // The entry of (this control plane, key), else a free one; -1 when none.
  auto find = [&key] {
    int free_index = -1;
    for (int i = 0; i < kMaxFailingServers; ++i) {
      const FailingServer& f = shared->failing[i];
      if (f.db == MyDatabaseId && key == f.host_id) return i;
      if (free_index < 0 && !OidIsValid(f.db)) free_index = i;
    }
    return free_index;
  };
  failure_log::State state;
  SpinLockAcquire(&shared->mutex);
  const int found = find();
  if (found >= 0 && OidIsValid(shared->failing[found].db)) state = shared->failing[found].state;
  SpinLockRelease(&shared->mutex);
  const int64_t now = now_ms();
  std::optional<std::string> line = error.empty() ? failure_log::success(state, what, now)
                                                  : failure_log::failure(state, what, error, now);
  // Only one database worker runs per control plane, so the entry is still
  // ours; a free one may have been taken by another control plane meanwhile.
  SpinLockAcquire(&shared->mutex);
  if (const int i = find(); i >= 0) {
    FailingServer& f = shared->failing[i];
    if (state.failing || OidIsValid(f.db)) {
      f.db = state.failing ? MyDatabaseId : InvalidOid;
      std::memcpy(f.host_id, key.c_str(), key.size() + 1);
      f.state = state;
    }
  }  // else every entry is taken: this server's failures are logged every time
  SpinLockRelease(&shared->mutex);
  return line;
}

// A registered host's health (list_database_hosts): each contact the worker
// makes, good or failed, is recorded on its row (postgres::record_contact).
void note_contact(const std::string& host_id, const std::string& error) {
  boundary("recording the contact with database host " + host_id, [&] {
    in_transaction([&] {
      SpiStore store;
      postgres::record_contact(store, host_id, error);
      return 0;
    });
  });
}

std::unique_ptr<postgres::ServerSession> open_noted(const std::optional<postgres::Server>& server) {
  if (!server || server->id.empty()) return open_session(server);
  std::unique_ptr<postgres::ServerSession> session;
  try {
    session = open_session(server);
  } catch (const std::exception& e) {
    note_contact(server->id, e.what());
    throw;
  }
  note_contact(server->id, "");
  return session;
}

// Every server's logins; a server that fails is logged (note_server) and the
// others go on.
void converge_all() {
  report_activity("envdb: converging logins");
  const auto plans = in_transaction([] {
    SpiStore store;
    return converge::desired(store, std::nullopt, false, now_ms());
  });
  for (const auto& p : plans) {
    const std::string what =
        "converging the logins on " +
        (p.host_id ? "database host " + *p.host_id : std::string("this server"));
    std::string error;
    try {
      std::optional<postgres::Server> server;
      if (p.host_id)
        server = in_transaction([&] {
          auto host = make_host();
          return postgres::load_server(*host, *p.host_id);
        });
      converge_server(*open_noted(server), p);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown error";
    }
    if (auto line = note_server(p.host_id, what, error)) log_message(LOG, *line);
  }
  report_activity(nullptr);
}

// How pg_dump and pg_restore reach this server: its first socket directory
// (or localhost), its port, as the bootstrap superuser (the local server is
// reached without a password, as pg_hba allows that user locally).
postgres::Endpoint local_endpoint() {
  postgres::Endpoint e;
  const std::string dirs = Unix_socket_directories ? Unix_socket_directories : "";
  std::string first = dirs.substr(0, dirs.find(','));
  while (!first.empty() && first.front() == ' ') first.erase(0, 1);
  while (!first.empty() && first.back() == ' ') first.pop_back();
  e.host = first.empty() ? "localhost" : first;
  e.port = PostPortNumber;
  e.user = in_transaction([] {
    return guarded([] { return std::string(GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false)); });
  });
  return e;
}

// The directory of this server's programs (pg_dump, pg_restore beside postgres).
std::string bindir() {
  std::string path = my_exec_path;
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

// A move (postgres/mover.hpp): a session on each server, the content streamed
// by the server's own pg_dump and pg_restore while this worker keeps
// answering its interrupts.
std::string move_database(const postgres::Work& work, const postgres::Progress& progress) {
  auto source = open_noted(work.server);
  auto target = open_noted(work.move_target);
  const postgres::Endpoint from = work.server ? postgres::endpoint_of(*work.server)
                                              : local_endpoint();
  const postgres::Endpoint to = work.move_target ? postgres::endpoint_of(*work.move_target)
                                                 : local_endpoint();
  postgres::MovePlan plan{work.database_name, work.logins, work.restrict_connect};
  bool latched = false;
  auto pause = [&latched] {
    guarded([&latched] {
      const int events = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100L,
                                   PG_WAIT_EXTENSION);
      if (events & WL_LATCH_SET) {
        ResetLatch(MyLatch);
        latched = true;
      }
      CHECK_FOR_INTERRUPTS();
      return 0;
    });
  };
  const std::string url = postgres::carry_out_move(
      plan, *source, *target,
      [&] { postgres::stream_database(bindir(), from, to, work.database_name, pause); }, progress);
  // A wake-up meant for the next pass is passed on.
  if (latched) SetLatch(MyLatch);
  return url;
}

struct Claimed {
  std::string id;
  int64_t attempts;
};

std::optional<Claimed> claim_one() {
  return in_transaction([]() -> std::optional<Claimed> {
    auto host = make_host();
    const Json jobs = outbox::claim_jobs(*host, "postgres", 1, worker_name(), true);
    if (jobs.empty()) return std::nullopt;
    return Claimed{jobs[0]["id"].get<std::string>(), jobs[0]["attempts"].get<int64_t>()};
  });
}

// A finished backup_database job: its backup's id and the size of the
// database the worker made (recorded with the completion, in one transaction).
struct BackupSize {
  std::string backup_id;
  int64_t bytes;
};

void report(const std::string& job_id, const std::optional<std::string>& url,
            const std::string& error, bool retry,
            const std::optional<BackupSize>& backup = std::nullopt) {
  try {
    in_transaction([&] {
      auto host = make_host();
      if (error.empty() && backup)
        backups::record_size(host->store(), backup->backup_id, backup->bytes);
      if (error.empty())
        outbox::complete_job(*host, job_id, url, Json::object());
      else
        outbox::fail_job(*host, job_id, error, retry);
      return 0;
    });
  } catch (const Error& e) {
    if (!error.empty()) {
      log_message(WARNING, "job " + job_id + " could not be reported failed: " + e.what());
    } else {
      // Completing was refused (the environment was archived meanwhile...).
      report(job_id, std::nullopt, std::string("the job ran but could not complete: ") + e.what(),
             false);
    }
  }
}

void run_job(const Claimed& job) {
  std::optional<std::string> url;
  std::string error;
  bool retry = false;
  std::optional<BackupSize> backup;
  // The target whose old content is dropped after the report.
  std::optional<std::string> retired_of;
  std::string doing;
  try {
    const postgres::Work work = in_transaction([&] {
      auto host = make_host();
      // No verifiers: converge_database creates the logins from the
      // catalog as it is then, with verifiers of its own.
      return postgres::load_work(*host, job.id, false);
    });
    // What the worker is doing, in pg_stat_activity.query (operators, and
    // the crash series that stops it inside each kind of job).
    doing = "envdb: postgres job " + work.kind + " " + job.id;
    report_activity(doing.c_str());
    auto session = open_noted(work.server);
    Json result;
    // A copy's steps (no NOTICE reaches anyone from here): pg_stat_activity
    // shows the one running, the log each one and the figures at the end.
    auto progress = [&](const std::string& step) {
      report_activity((doing + ": " + step).c_str());
      log_message(LOG, "postgres job " + work.kind + " " + job.id + ": " + step);
    };
    if (work.kind == "move_database") {
      session.reset();
      url = move_database(work, progress);
    } else {
      url = postgres::carry_out(
          work, *session,
          [&] { converge_database(*session, work.database_id, work.kind == "create_database"); },
          &result, progress);
    }
    if (!result.is_null())
      log_message(LOG, "postgres job " + work.kind + " " + job.id + " done: " + result.dump());
    if (result.is_object() && result.contains("retired")) retired_of = work.database_name;
    if (work.kind == "backup_database" && result.is_object() && result.contains("sizeBytes") &&
        result["sizeBytes"].is_number_integer() && work.payload.contains("backupId") &&
        work.payload["backupId"].is_string())
      backup = BackupSize{work.payload["backupId"].get<std::string>(),
                          result["sizeBytes"].get<int64_t>()};
  } catch (const Transient& e) {
    error = e.what();
    retry = job.attempts < kMaxAttempts;
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty())
    log_message(LOG,
                "postgres job " + job.id + (retry ? " will be retried: " : " failed: ") + error);
  report(job.id, url, error, retry, backup);
  // The target is back: now the old content goes (a crash before this line
  // leaves it to the next pass, drop_retired_leftovers).
  if (retired_of && error.empty()) {
    boundary("dropping the old content of " + *retired_of, [&] {
      report_activity((doing + ": dropping the old content").c_str());
      (void)postgres::drop_retired(*open_session(std::nullopt), *retired_of);
    });
  }
  report_activity(nullptr);
}

// The accesses resolves recorded since the last pass (touch_log.hpp), in one
// statement: each database's last_accessed_at moves to its recorded access
// when that is more than resolve::kTouchSeconds after the stored value (the
// resolve's once-a-minute rule; never backwards). A row locked by a
// credential change is skipped rather than waited for; its next access in a
// later minute records it again.
void write_touches() {
  const auto touches = touch_log::take();
  if (touches.empty()) return;
  Json batch = Json::array();
  for (const auto& [database_id, at] : touches)
    batch.push_back(Json{{"id", database_id}, {"at", iso_from_ms(at)}});
  in_transaction([&] {
    SpiStore store;
    execute(store,
            "UPDATE envdb.sys_environment_database d SET last_accessed_at = t.at FROM (SELECT "
            "e.id, x.at FROM json_to_recordset($1::json) AS x(id text, at timestamptz) JOIN "
            "envdb.sys_environment_database e ON e.id = x.id WHERE e.last_accessed_at IS NULL "
            "OR e.last_accessed_at < x.at - make_interval(secs => $2) FOR NO KEY UPDATE OF e "
            "SKIP LOCKED) t WHERE d.id = t.id",
            {batch.dump(), static_cast<int64_t>(resolve::kTouchSeconds)});
    return 0;
  });
}

// Claims and carries out due jobs until none is left. After each job, the
// accesses recorded meanwhile are written and the deadlines passed meanwhile
// applied: a long job holds back neither. `ran` is set once a job has run.
void run_jobs(bool& ran) {
  while (auto job = claim_one()) {
    run_job(*job);
    boundary("writing last_accessed_at", write_touches);
    boundary("expiring credentials", expire_deadlines);
    ran = true;
  }
}

// One pass over a database's queue and servers. False when the database has
// no envdb.
bool pass() {
  if (ConfigReloadPending) {
    ConfigReloadPending = false;
    guarded([] {
      ProcessConfigFile(PGC_SIGHUP);
      return 0;
    });
  }
  if (!has_envdb()) {
    // Accesses recorded before envdb was dropped here: nothing to write them to.
    (void)touch_log::take();
    return false;
  }
  // First, and again after each job: a long job does not hold them back.
  boundary("writing last_accessed_at", write_touches);
  // The jobs first: the one a commit woke this worker for is claimed before
  // the pass's other duties, which run after it (and after each job).
  const bool keyring = keyring_ready();
  bool ran = false;
  if (keyring) boundary("running postgres jobs", [&ran] { run_jobs(ran); });
  boundary("reclaiming the jobs of stopped workers", reclaim_stale_jobs);
  boundary("dropping the old content copies left", drop_retired_leftovers);
  // After a job, run_jobs has just expired them.
  if (!ran) boundary("expiring credentials", expire_deadlines);
  boundary("enforcing policies", enforce_policies);
  if (keyring) {
    // Jobs reclaimed above that are due, and any queued meanwhile.
    boundary("running postgres jobs", [] {
      bool more = false;
      run_jobs(more);
    });
  } else {
    const int64_t waiting = pending_jobs();
    if (waiting > 0)
      log_message(LOG, std::to_string(waiting) +
                           " postgres job(s) wait: the server has no keyring (set "
                           "envdb.keyring_file or envdb.keyring_command in postgresql.conf)");
  }
  boundary("converging logins", converge_all);
  if (keyring) boundary("measuring usage on database hosts", measure_hosts);
  boundary("converging storage access", converge_write_access);
  return true;
}

int my_slot = -1;
uint32 my_generation = 0;
bool my_completed = false;

// A worker that stops abnormally (its database was dropped, a FATAL error)
// frees its slot: the database is asked for again by its next commit that
// queues a job, or at the next server start.
void database_worker_exit(int, Datum) {
  if (!shared || my_slot < 0) return;
  SpinLockAcquire(&shared->mutex);
  DatabaseSlot& s = shared->databases[my_slot];
  if (s.generation == my_generation) {
    s.running = false;
    s.latch = nullptr;
    if (!my_completed) s.db = InvalidOid;
  }
  SpinLockRelease(&shared->mutex);
}

constexpr long kPollMs = 100;  // between passes: how often the worker looks whether it should go

// Whether a session waits to have this database to itself: DROP DATABASE,
// ALTER DATABASE ... RENAME or SET TABLESPACE (AccessExclusiveLock on it)
// and CREATE DATABASE with it as the template (ShareLock) take a lock a
// connection's RowExclusiveLock conflicts with, then wait up to 5 s for the
// database's other sessions to leave.
bool database_wanted() {
  return guarded([] {
    LOCKTAG tag;
    SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, MyDatabaseId, 0);
    if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL) return true;
    LockRelease(&tag, RowExclusiveLock, true);
    return false;
  });
}

// Between passes the worker stays connected, waiting on its latch, so that a
// job a commit queues is claimed by a process whose connection and catalog
// caches are ready (a new worker takes about 60 ms before its claim: start,
// connection, the first read of each catalog table). True when a pass is
// requested (by a commit, or the launcher's period); false when the worker
// should go: a session waits to drop, rename or copy this database (looked at
// first, so that a stream of requests cannot keep it waiting), or another
// database waits for a worker slot.
bool wait_for_request(int index) {
  for (;;) {
    if (database_wanted()) return false;
    bool requested = false, slot_wanted = false;
    SpinLockAcquire(&shared->mutex);
    requested = shared->databases[index].requested;
    for (const auto& s : shared->databases)
      slot_wanted = slot_wanted || (OidIsValid(s.db) && s.requested && !s.running);
    SpinLockRelease(&shared->mutex);
    if (requested) return true;
    if (slot_wanted) return false;
    guarded([] {
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kPollMs,
                      PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
      return 0;
    });
  }
}

void database_worker(int index) noexcept {
  try {
    SpinLockAcquire(&shared->mutex);
    shared->databases[index].latch = MyLatch;
    SpinLockRelease(&shared->mutex);
    for (;;) {
      SpinLockAcquire(&shared->mutex);
      shared->databases[index].requested = false;
      SpinLockRelease(&shared->mutex);
      const bool control_plane = pass();
      SpinLockAcquire(&shared->mutex);
      // From now on the launcher's period asks this worker for passes.
      shared->databases[index].control_plane = control_plane;
      SpinLockRelease(&shared->mutex);
      // A request that came during the pass is seen at once.
      if (control_plane && wait_for_request(index)) continue;
      SpinLockAcquire(&shared->mutex);
      DatabaseSlot& s = shared->databases[index];
      s.running = false;
      s.latch = nullptr;
      if (!control_plane && !s.requested) s.db = InvalidOid;
      SpinLockRelease(&shared->mutex);
      return;
    }
  } catch (const std::exception& e) {
    log_message(LOG, std::string("database worker stopped: ") + e.what());
  } catch (...) {
    log_message(LOG, "database worker stopped");
  }
}

}  // namespace

}  // namespace envdb::pg::worker

using namespace envdb::pg::worker;

extern "C" void envdb_database_worker_main(Datum arg) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  my_slot = DatumGetInt32(arg);
  SpinLockAcquire(&shared->mutex);
  const Oid db = shared->databases[my_slot].db;
  my_generation = shared->databases[my_slot].generation;
  SpinLockRelease(&shared->mutex);
  before_shmem_exit(database_worker_exit, (Datum)0);
  if (!OidIsValid(db)) proc_exit(0);
  BackgroundWorkerInitializeConnectionByOid(db, InvalidOid, 0);
  database_worker(my_slot);
  my_completed = true;
  proc_exit(0);
}
