// The postgres driver's background workers. Three kinds, all in this library:
//
//   launcher   one static worker (shared_preload_libraries = 'envdb'), bound
//              to no database. It probes every connectable database once at
//              start (a crash or restart leaves jobs behind), then starts a
//              database worker whenever a database is requested: by a backend
//              whose committed transaction queued a postgres job (the commit
//              hook below sets the request and the launcher's latch), and
//              every kPeriodMs for each database known to hold envdb.
//   database   one per control-plane database at a time, bound to it. It
//              reclaims jobs a dead worker left running, then claims postgres
//              jobs one by one (FOR UPDATE SKIP LOCKED), carries each out on
//              its server (pgdriver::carry_out) and reports it complete or
//              failed. Exits when the queue is empty and nobody asked again.
//   setup      short-lived, bound to a new environment database (a worker's
//              database is fixed for life), runs the in-database script in
//              one transaction and reports through shared memory.
//
// The local server is reached without libpq, so no pg_hba entry or password
// is needed: statements run through SPI as the bootstrap superuser, and
// CREATE DATABASE (which refuses a transaction block) runs as a top-level
// utility statement in its own transaction. Registered servers
// (sys_database_host) are reached with libpq.
//
// Errors: a Postgres ERROR inside C++ goes through pg::guarded() and becomes
// an envdb::Error; every job failure ends as fail_provisioning_job with the
// message (no statement text, so no verifier or password). No C++ exception
// leaves a worker's entry point.
extern "C" {
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "nodes/plannodes.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#if PG_VERSION_NUM < 160000
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif

PGDLLEXPORT void envdb_launcher_main(Datum arg);
PGDLLEXPORT void envdb_database_worker_main(Datum arg);
PGDLLEXPORT void envdb_setup_worker_main(Datum arg);
}

#include <cstring>
#include <optional>
#include <string>

#include "api.hpp"
#include "errors.hpp"
#include "pg_guard.hpp"
#include "pgdriver.hpp"
#include "spi_store.hpp"
#include "worker.hpp"

namespace envdb::pg::worker {

namespace {

// The description of one of envdb's background workers: `function` is its
// entry point in this library and `name` its name in pg_stat_activity.
BackgroundWorker worker_description(const char* function, const char* name, int restart_time,
                                    Datum main_arg, pid_t notify_pid) {
  BackgroundWorker w;
  std::memset(&w, 0, sizeof w);
  w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  w.bgw_start_time = BgWorkerStart_RecoveryFinished;
  w.bgw_restart_time = restart_time;
  snprintf(w.bgw_library_name, BGW_MAXLEN, "envdb");
  snprintf(w.bgw_function_name, BGW_MAXLEN, "%s", function);
  snprintf(w.bgw_name, BGW_MAXLEN, "%s", name);
  snprintf(w.bgw_type, BGW_MAXLEN, "%s", name);
  w.bgw_main_arg = main_arg;
  w.bgw_notify_pid = notify_pid;
  return w;
}

constexpr int kMaxDatabases = 256;
constexpr int kMaxSetups = 4;
constexpr size_t kSetupSqlBytes = 8192;
constexpr int kMaxRunning = 2;            // database workers at a time
constexpr long kTickMs = 1000;            // launcher wake-up
constexpr long kPeriodMs = 15000;         // re-visit known control planes
constexpr int32 kLockClass = 1701737060;  // 'envd': advisory locks of running jobs

struct DatabaseSlot {
  Oid db;              // InvalidOid: free
  bool requested;      // someone asked for a pass
  bool running;        // a database worker was started and has not finished
  bool control_plane;  // envdb was found in it
  uint32 generation;   // of the worker started last
};

struct SetupSlot {
  bool in_use;
  bool done;
  bool ok;
  char dbname[NAMEDATALEN];
  char sql[kSetupSqlBytes];
  char error[1024];
};

struct Shared {
  slock_t mutex;
  Latch* launcher_latch;
  DatabaseSlot databases[kMaxDatabases];
  SetupSlot setups[kMaxSetups];
};

Shared* shared = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
bool wake_after_commit = false;

void shmem_request() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(sizeof(Shared));
}

void shmem_startup() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  shared = static_cast<Shared*>(ShmemInitStruct("envdb", sizeof(Shared), &found));
  if (!found) {
    std::memset(shared, 0, sizeof(Shared));
    SpinLockInit(&shared->mutex);
  }
  LWLockRelease(AddinShmemInitLock);
}

// Marks `db` requested; returns the launcher's latch (NULL when none runs).
// Called with no lock held; never raises an error.
Latch* request_database(Oid db) {
  if (!shared || !OidIsValid(db)) return nullptr;
  SpinLockAcquire(&shared->mutex);
  DatabaseSlot* slot = nullptr;
  DatabaseSlot* free_slot = nullptr;
  for (auto& s : shared->databases) {
    if (s.db == db) {
      slot = &s;
      break;
    }
    if (!free_slot && !OidIsValid(s.db)) free_slot = &s;
  }
  if (!slot && free_slot) {
    slot = free_slot;
    std::memset(slot, 0, sizeof *slot);
    slot->db = db;
  }
  if (slot) slot->requested = true;
  Latch* latch = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  return latch;
}

void transaction_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      if (wake_after_commit) {
        wake_after_commit = false;
        if (Latch* latch = request_database(MyDatabaseId)) SetLatch(latch);
      }
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      wake_after_commit = false;
      break;
    default:
      break;
  }
}

// ---- transactions and sessions -------------------------------------------

void abort_transaction() noexcept {
  try {
    guarded([] {
      AbortCurrentTransaction();
      return 0;
    });
  } catch (...) {
  }
}

// Runs f inside a transaction with SPI connected and a snapshot; commits,
// or aborts and rethrows.
template <typename F>
auto in_transaction(F&& f) -> decltype(f()) {
  guarded([] {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    return 0;
  });
  try {
    spi_connect();
    auto result = f();
    spi_finish();
    guarded([] {
      PopActiveSnapshot();
      CommitTransactionCommand();
      return 0;
    });
    return result;
  } catch (...) {
    abort_transaction();
    throw;
  }
}

std::string first_line(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The server this library runs in.
class LocalSession : public pgdriver::ServerSession {
 public:
  void exec(const std::string& sql) override {
    in_transaction([&] {
      SpiStore store;
      store.exec(sql);
      return 0;
    });
  }

  std::optional<std::string> query_value(const std::string& sql) override {
    return in_transaction([&]() -> std::optional<std::string> {
      SpiStore store;
      auto rows = query(store, sql);
      if (rows.empty() || rows[0].size() == 0) return std::nullopt;
      const Value& v = rows[0].at(0);
      if (auto s = std::get_if<std::string>(&v)) return *s;
      if (auto b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
      if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
      return std::nullopt;
    });
  }

  void exec_top_level(const std::string& sql) override {
    const char* text = sql.c_str();
    try {
      guarded([text] {
        SetCurrentStatementStartTimestamp();
        StartTransactionCommand();
        PushActiveSnapshot(GetTransactionSnapshot());
        List* parsed = pg_parse_query(text);
        if (list_length(parsed) != 1) elog(ERROR, "envdb: one statement expected");
        RawStmt* raw = linitial_node(RawStmt, parsed);
        PlannedStmt* stmt = makeNode(PlannedStmt);
        stmt->commandType = CMD_UTILITY;
        stmt->canSetTag = false;
        stmt->utilityStmt = raw->stmt;
        stmt->stmt_location = raw->stmt_location;
        stmt->stmt_len = raw->stmt_len;
        ProcessUtility(stmt, text, false, PROCESS_UTILITY_TOPLEVEL, nullptr, nullptr,
                       None_Receiver, nullptr);
        if (ActiveSnapshotSet()) PopActiveSnapshot();
        CommitTransactionCommand();
        return 0;
      });
    } catch (...) {
      abort_transaction();
      throw;
    }
  }

  void exec_in_database(const std::string& database_name, const std::string& sql) override {
    if (database_name.size() >= NAMEDATALEN || sql.size() >= kSetupSqlBytes)
      throw Error(Code::internal, "the setup script of " + database_name + " is too long");
    int index = -1;
    SpinLockAcquire(&shared->mutex);
    for (int i = 0; i < kMaxSetups; ++i) {
      if (!shared->setups[i].in_use) {
        index = i;
        shared->setups[i].in_use = true;
        break;
      }
    }
    SpinLockRelease(&shared->mutex);
    if (index < 0)
      throw Error(Code::conflict, "every envdb setup worker slot is busy; the job is retried");
    SetupSlot* slot = &shared->setups[index];
    slot->done = slot->ok = false;
    slot->error[0] = '\0';
    std::memcpy(slot->dbname, database_name.c_str(), database_name.size() + 1);
    std::memcpy(slot->sql, sql.c_str(), sql.size() + 1);
    pg_write_barrier();
    auto release = [&] {
      SpinLockAcquire(&shared->mutex);
      slot->in_use = false;
      SpinLockRelease(&shared->mutex);
    };
    const int started = guarded([index] {
      BackgroundWorker w = worker_description("envdb_setup_worker_main", "envdb setup worker",
                                              BGW_NEVER_RESTART, Int32GetDatum(index), MyProcPid);
      BackgroundWorkerHandle* handle = nullptr;
      if (!RegisterDynamicBackgroundWorker(&w, &handle)) return 0;
      const BgwHandleStatus status = WaitForBackgroundWorkerShutdown(handle);
      pfree(handle);
      return status == BGWH_STOPPED ? 1 : 2;
    });
    pg_read_barrier();
    const bool done = slot->done, ok = slot->ok;
    const std::string error = slot->error;
    release();
    if (started == 0)
      throw Error(Code::conflict,
                  "no background worker slot is free (max_worker_processes) to set up database " +
                      quote_value(database_name));
    if (!done)
      throw Error(Code::internal, "the setup worker of database " + quote_value(database_name) +
                                      " stopped before it finished (could it connect?)");
    if (!ok) throw Error(Code::internal, "in database " + quote_value(database_name) + ": " + error);
  }

  std::string url(const std::string& database_name) override {
    std::string host = "localhost";
    const std::string listen = ListenAddresses ? ListenAddresses : "";
    const std::string first = listen.substr(0, listen.find(','));
    std::string trimmed;
    for (char c : first)
      if (c != ' ') trimmed += c;
    if (!trimmed.empty() && trimmed != "*" && trimmed != "0.0.0.0" && trimmed != "::")
      host = trimmed;
    return pgdriver::database_url(host, PostPortNumber, database_name);
  }
};

// A registered server, through libpq.
class RemoteSession : public pgdriver::ServerSession {
 public:
  explicit RemoteSession(const pgdriver::Server& server) : server_(server) {}
  ~RemoteSession() override {
    if (conn_) PQfinish(conn_);
  }

  void exec(const std::string& sql) override { run(maintenance(), sql, nullptr); }
  std::optional<std::string> query_value(const std::string& sql) override {
    std::optional<std::string> value;
    run(maintenance(), sql, &value);
    return value;
  }
  void exec_top_level(const std::string& sql) override { run(maintenance(), sql, nullptr); }
  void exec_in_database(const std::string& database_name, const std::string& sql) override {
    PGconn* conn = connect(database_name);
    try {
      // One query string of several statements is one implicit transaction.
      run(conn, sql, nullptr);
    } catch (...) {
      PQfinish(conn);
      throw;
    }
    PQfinish(conn);
  }
  std::string url(const std::string& database_name) override {
    return pgdriver::database_url(server_.host, server_.port, database_name);
  }

 private:
  PGconn* maintenance() {
    if (!conn_) conn_ = connect(server_.dbname);
    return conn_;
  }

  PGconn* connect(const std::string& dbname) {
    const std::string port = std::to_string(server_.port);
    const std::string password =
        server_.password ? std::string(server_.password->view()) : std::string();
    const char* keys[] = {"host",     "port",           "dbname",           "user",
                          "password", "connect_timeout", "application_name", nullptr};
    const char* values[] = {server_.host.c_str(),
                            port.c_str(),
                            dbname.c_str(),
                            server_.username.c_str(),
                            password.empty() ? nullptr : password.c_str(),
                            "10",
                            "envdb",
                            nullptr};
    PGconn* conn = PQconnectdbParams(keys, values, 0);
    if (!conn) throw Error(Code::internal, "out of memory connecting to database host");
    if (PQstatus(conn) != CONNECTION_OK) {
      const std::string message = first_line(PQerrorMessage(conn));
      PQfinish(conn);
      throw Error(Code::internal, "cannot connect to database host " + quote_value(server_.name) +
                                      ": " + message);
    }
    return conn;
  }

  void run(PGconn* conn, const std::string& sql, std::optional<std::string>* value) {
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      const char* primary = result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
      const std::string message = primary ? primary : first_line(PQerrorMessage(conn));
      PQclear(result);
      throw Error(Code::internal, "database host " + quote_value(server_.name) + ": " + message);
    }
    if (value && status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0 &&
        !PQgetisnull(result, 0, 0))
      *value = std::string(PQgetvalue(result, 0, 0));
    PQclear(result);
  }

  const pgdriver::Server& server_;
  PGconn* conn_ = nullptr;
};

// ---- the database worker -------------------------------------------------

Value call(Host& host, const char* name, std::vector<Value> args) {
  const api::Function* fn = api::find(name);
  if (!fn) throw Error(Code::internal, std::string("no envdb function ") + name);
  return api::invoke(host, *fn, std::move(args));
}

std::string worker_name() { return "envdb bgworker " + std::to_string(MyProcPid); }

void log_message(int level, const std::string& message) {
  const char* text = message.c_str();
  try {
    guarded([level, text] {
      ereport(level, (errmsg("envdb: %s", text)));
      return 0;
    });
  } catch (...) {
  }
}

bool has_envdb() {
  return in_transaction([] {
    return guarded([] { return OidIsValid(get_extension_oid("envdb", true)); });
  });
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

// Jobs left running by a worker that is gone (a crash, a restart, a killed
// process): its advisory lock went with it. Back to pending, to be claimed
// again (claiming counts the attempt).
void reclaim_stale_jobs() {
  in_transaction([] {
    SpiStore store;
    for (const Row& job : query(store,
                                "SELECT id FROM envdb.sys_provisioning_job WHERE status = "
                                "'running' AND driver = 'postgres' AND worker LIKE 'envdb "
                                "bgworker %' ORDER BY created_at, id FOR UPDATE SKIP LOCKED")) {
      const std::string id = job.text("id");
      auto free = query_one(store,
                            "SELECT pg_catalog.pg_try_advisory_lock($1::int, "
                            "pg_catalog.hashtext($2)) AS free",
                            {int64_t{kLockClass}, id});
      if (!free || !free->boolean("free")) continue;
      execute(store,
              "UPDATE envdb.sys_provisioning_job SET status = 'pending', worker = NULL, "
              "last_error = 'interrupted: its worker stopped before finishing; resumed', "
              "updated_at = now() WHERE id = $1",
              {id});
      execute(store, "SELECT pg_catalog.pg_advisory_unlock($1::int, pg_catalog.hashtext($2))",
              {int64_t{kLockClass}, id});
    }
    return 0;
  });
}

std::optional<std::string> claim_one() {
  return in_transaction([]() -> std::optional<std::string> {
    auto host = make_host();
    const Value v = call(*host, "claim_provisioning_jobs",
                         {std::string("postgres"), int64_t{1}, worker_name()});
    const Json jobs = Json::parse(std::get<std::string>(v));
    if (jobs.empty()) return std::nullopt;
    const std::string id = jobs[0]["id"].get<std::string>();
    // Held for the session until the job is reported: while it is held, the
    // job is not stale.
    execute(host->store(), "SELECT pg_catalog.pg_advisory_lock($1::int, pg_catalog.hashtext($2))",
            {int64_t{kLockClass}, id});
    return id;
  });
}

void report(const std::string& job_id, const std::optional<std::string>& url,
            const std::string& error) {
  try {
    in_transaction([&] {
      auto host = make_host();
      if (error.empty())
        call(*host, "complete_provisioning_job",
             {job_id, url ? Value(*url) : null_value(), null_value()});
      else
        call(*host, "fail_provisioning_job", {job_id, error, false});
      return 0;
    });
  } catch (const Error& e) {
    if (!error.empty()) {
      log_message(WARNING, "job " + job_id + " could not be reported failed: " + e.what());
    } else {
      // Completing was refused (the environment was archived meanwhile...).
      report(job_id, std::nullopt, std::string("the job ran but could not complete: ") + e.what());
    }
  }
  try {
    in_transaction([&] {
      SpiStore store;
      execute(store, "SELECT pg_catalog.pg_advisory_unlock($1::int, pg_catalog.hashtext($2))",
              {int64_t{kLockClass}, job_id});
      return 0;
    });
  } catch (...) {
  }
}

void run_job(const std::string& job_id) {
  std::optional<std::string> url;
  std::string error;
  try {
    pgdriver::Work work = in_transaction([&] {
      auto host = make_host();
      return pgdriver::load_work(*host, job_id);
    });
    guarded([] {
      pgstat_report_activity(STATE_RUNNING, "envdb: carrying out a postgres job");
      return 0;
    });
    if (work.server) {
      RemoteSession session(*work.server);
      url = pgdriver::carry_out(work, session);
    } else {
      LocalSession session;
      url = pgdriver::carry_out(work, session);
    }
  } catch (const Error& e) {
    error = e.what();
  } catch (const std::exception& e) {
    error = std::string("internal: ") + e.what();
  }
  if (!error.empty()) log_message(LOG, "postgres job " + job_id + " failed: " + error);
  report(job_id, url, error);
  guarded([] {
    pgstat_report_activity(STATE_IDLE, nullptr);
    return 0;
  });
}

// One pass over a database's queue. False when the database has no envdb.
bool pass() {
  if (ConfigReloadPending) {
    ConfigReloadPending = false;
    guarded([] {
      ProcessConfigFile(PGC_SIGHUP);
      return 0;
    });
  }
  if (!has_envdb()) return false;
  if (!keyring_ready()) {
    const int64_t waiting = pending_jobs();
    if (waiting > 0)
      log_message(LOG, std::to_string(waiting) +
                           " postgres job(s) wait: the server has no keyring (set "
                           "envdb.keyring_file or envdb.keyring_command in postgresql.conf)");
    return true;
  }
  reclaim_stale_jobs();
  while (auto job = claim_one()) run_job(*job);
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
    if (!my_completed) s.db = InvalidOid;
  }
  SpinLockRelease(&shared->mutex);
}

void database_worker(int index) noexcept {
  try {
    for (;;) {
      SpinLockAcquire(&shared->mutex);
      shared->databases[index].requested = false;
      SpinLockRelease(&shared->mutex);
      const bool control_plane = pass();
      SpinLockAcquire(&shared->mutex);
      DatabaseSlot& s = shared->databases[index];
      const bool again = control_plane && s.requested;
      if (!again) {
        s.running = false;
        s.control_plane = control_plane;
        if (!control_plane && !s.requested) s.db = InvalidOid;
      }
      SpinLockRelease(&shared->mutex);
      if (!again) return;
    }
  } catch (const std::exception& e) {
    log_message(LOG, std::string("database worker stopped: ") + e.what());
  } catch (...) {
    log_message(LOG, "database worker stopped");
  }
}

// ---- the launcher --------------------------------------------------------

BackgroundWorkerHandle* handles[kMaxDatabases];

void launcher_exit(int, Datum) {
  if (!shared) return;
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = nullptr;
  SpinLockRelease(&shared->mutex);
}

// Every database that can hold a control plane: connectable, not a template,
// not an environment database (their names start with "env-").
void probe_all_databases() {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  (void)GetTransactionSnapshot();
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  HeapTuple tuple;
  while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection))) {
    Form_pg_database db = (Form_pg_database)GETSTRUCT(tuple);
    if (!db->datallowconn || db->datistemplate) continue;
    if (strncmp(NameStr(db->datname), "env-", 4) == 0) continue;
    (void)request_database(db->oid);
  }
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  CommitTransactionCommand();
}

void start_requested() {
  int running = 0;
  SpinLockAcquire(&shared->mutex);
  for (auto& s : shared->databases)
    if (OidIsValid(s.db) && s.running) ++running;
  SpinLockRelease(&shared->mutex);
  for (int i = 0; i < kMaxDatabases && running < kMaxRunning; ++i) {
    SpinLockAcquire(&shared->mutex);
    DatabaseSlot& s = shared->databases[i];
    const bool start = OidIsValid(s.db) && s.requested && !s.running;
    if (start) {
      s.running = true;
      ++s.generation;
    }
    SpinLockRelease(&shared->mutex);
    if (!start) continue;
    BackgroundWorker w = worker_description("envdb_database_worker_main", "envdb database worker",
                                            BGW_NEVER_RESTART, Int32GetDatum(i), MyProcPid);
    BackgroundWorkerHandle* handle = nullptr;
    if (RegisterDynamicBackgroundWorker(&w, &handle)) {
      if (handles[i]) pfree(handles[i]);
      handles[i] = handle;
      ++running;
    } else {
      SpinLockAcquire(&shared->mutex);
      s.running = false;  // requested stays set: tried again next tick
      SpinLockRelease(&shared->mutex);
      break;
    }
  }
}

// A worker that died without clearing its slot (or never started).
void reap_stopped() {
  for (int i = 0; i < kMaxDatabases; ++i) {
    if (!handles[i]) continue;
    pid_t pid;
    if (GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED) continue;
    pfree(handles[i]);
    handles[i] = nullptr;
    SpinLockAcquire(&shared->mutex);
    shared->databases[i].running = false;
    SpinLockRelease(&shared->mutex);
  }
}

void request_control_planes() {
  SpinLockAcquire(&shared->mutex);
  for (auto& s : shared->databases)
    if (OidIsValid(s.db) && s.control_plane) s.requested = true;
  SpinLockRelease(&shared->mutex);
}

}  // namespace

void note_job_queued() { wake_after_commit = true; }

void register_commit_hook() { RegisterXactCallback(transaction_callback, nullptr); }

void register_preloaded() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = shmem_startup;

  // The launcher is restarted 10 s after it stops.
  BackgroundWorker w = worker_description("envdb_launcher_main", "envdb launcher", 10, (Datum)0, 0);
  RegisterBackgroundWorker(&w);
}

}  // namespace envdb::pg::worker

using namespace envdb::pg::worker;

extern "C" void envdb_launcher_main(Datum) {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(nullptr, nullptr, 0);
  before_shmem_exit(launcher_exit, (Datum)0);
  SpinLockAcquire(&shared->mutex);
  shared->launcher_latch = MyLatch;
  SpinLockRelease(&shared->mutex);
  probe_all_databases();
  TimestampTz last_period = GetCurrentTimestamp();
  for (;;) {
    start_requested();
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kTickMs,
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
    if (ShutdownRequestPending) proc_exit(0);
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
    reap_stopped();
    const TimestampTz now = GetCurrentTimestamp();
    if (TimestampDifferenceExceeds(last_period, now, kPeriodMs)) {
      request_control_planes();
      last_period = now;
    }
  }
}

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

extern "C" void envdb_setup_worker_main(Datum arg) {
  pqsignal(SIGTERM, die);
  BackgroundWorkerUnblockSignals();
  SetupSlot* slot = &shared->setups[DatumGetInt32(arg)];
  pg_read_barrier();
  BackgroundWorkerInitializeConnection(slot->dbname, nullptr, 0);
  MemoryContext outer = CurrentMemoryContext;
  PG_TRY();
  {
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
    const int rc = SPI_execute(slot->sql, false, 0);
    if (rc < 0) elog(ERROR, "SPI_execute failed: %s", SPI_result_code_string(rc));
    SPI_finish();
    PopActiveSnapshot();
    CommitTransactionCommand();
    slot->ok = true;
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(outer);
    ErrorData* edata = CopyErrorData();
    FlushErrorState();
    strlcpy(slot->error, edata->message ? edata->message : "unknown error", sizeof slot->error);
    FreeErrorData(edata);
    AbortCurrentTransaction();
    slot->ok = false;
  }
  PG_END_TRY();
  pg_write_barrier();
  slot->done = true;
  proc_exit(0);
}
