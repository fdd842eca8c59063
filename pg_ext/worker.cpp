// The postgres driver's background workers. Three kinds, all in this library:
//
//   launcher   one static worker (shared_preload_libraries = 'envdb'), bound
//              to no database (this file, with the shared memory and the
//              commit hook). It probes every connectable database once at
//              start (a crash or restart leaves jobs behind), then starts a
//              database worker whenever a database is requested: by a backend
//              whose committed transaction queued a postgres job (the commit
//              hook below sets the request and the launcher's latch), and
//              every kPeriodMs for each database known to hold envdb, so
//              deadlines and changes that queue no job converge on time, and
//              for each database whose resolves recorded last_accessed_at
//              accesses in shared memory (touch_log.hpp), for the database
//              worker to write.
//   database   one per control-plane database at a time, bound to it
//              (worker_database.cpp): jobs, deadlines, convergence. It stays
//              between passes, woken by its latch, until another database
//              needs its slot or a session wants its database to itself.
//   setup      short-lived, bound to a new environment database (a worker's
//              database is fixed for life), runs a script in one transaction
//              and reports through shared memory (worker_executor.cpp, which
//              also runs statements on the local server and on registered
//              ones).
//
// Errors: a Postgres ERROR inside C++ goes through pg::guarded() and becomes
// an envdb::Error; no C++ exception leaves a worker's entry point.
#include "worker.hpp"
#include "touch_log.hpp"
#include "worker_internal.hpp"

namespace envdb::pg::worker {

Shared* shared = nullptr;

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

namespace {

constexpr int kMaxRunning = 2;    // database workers at a time
constexpr long kTickMs = 1000;    // launcher wake-up
constexpr long kPeriodMs = 2000;  // re-visit known control planes (deadlines, convergence)

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
    std::memset(static_cast<void*>(shared), 0, sizeof(Shared));  // all zero: every slot free
    SpinLockInit(&shared->mutex);
  }
  LWLockRelease(AddinShmemInitLock);
}

// Marks `db` requested. Returns the latches that make it happen: the
// launcher's (it starts a worker for the database) and that of the database's
// worker when one runs (it waits for its next pass). Either may be NULL.
// Called with no lock held; never raises an error.
struct Wake {
  Latch* launcher = nullptr;
  Latch* worker = nullptr;
};

Wake request_database(Oid db) {
  Wake wake;
  if (!shared || !OidIsValid(db)) return wake;
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
  if (slot) {
    slot->requested = true;
    if (slot->running) wake.worker = slot->latch;
  }
  wake.launcher = shared->launcher_latch;
  SpinLockRelease(&shared->mutex);
  return wake;
}

void transaction_callback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      if (wake_after_commit) {
        wake_after_commit = false;
        const Wake wake = request_database(MyDatabaseId);
        if (wake.worker) SetLatch(wake.worker);
        if (wake.launcher) SetLatch(wake.launcher);
      }
      break;
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE: wake_after_commit = false; break;
    default: break;
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

// Calls fn(row) for every row of pg_database, in a transaction of its own
// (the launcher is bound to no database: pg_database is shared).
template <typename Fn>
void for_each_database(Fn fn) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  (void)GetTransactionSnapshot();
  Relation rel = table_open(DatabaseRelationId, AccessShareLock);
  TableScanDesc scan = table_beginscan_catalog(rel, 0, nullptr);
  HeapTuple tuple;
  while (HeapTupleIsValid(tuple = heap_getnext(scan, ForwardScanDirection)))
    fn(*(Form_pg_database)GETSTRUCT(tuple));
  table_endscan(scan);
  table_close(rel, AccessShareLock);
  CommitTransactionCommand();
}

// Every database that can hold a control plane: connectable, not a template,
// not an environment database (their names start with kDatabaseNamePrefix).
void probe_all_databases() {
  for_each_database([](const FormData_pg_database& db) {
    if (!db.datallowconn || db.datistemplate) return;
    if (strncmp(NameStr(db.datname), kDatabaseNamePrefix, strlen(kDatabaseNamePrefix)) == 0) return;
    (void)request_database(db.oid);
  });
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

// Every database with accesses waiting to be written (touch_log.hpp),
// including one that no job ever woke; those of a database dropped since are
// forgotten, so no worker is started for it again and again.
void request_touched_databases() {
  Oid waiting[touch_log::kDatabases];
  const int n = touch_log::waiting_databases(waiting);
  if (n == 0) return;
  bool exists[touch_log::kDatabases] = {};
  for_each_database([&](const FormData_pg_database& db) {
    for (int i = 0; i < n; ++i) exists[i] = exists[i] || waiting[i] == db.oid;
  });
  for (int i = 0; i < n; ++i) {
    if (exists[i])
      (void)request_database(waiting[i]);
    else
      touch_log::forget(waiting[i]);
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

  // The launcher is restarted 2 s after it stops (a crash restart included):
  // deadlines wait for it.
  BackgroundWorker w = worker_description("envdb_launcher_main", "envdb launcher", 2, (Datum)0, 0);
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
      request_touched_databases();
      last_period = now;
    }
  }
}
