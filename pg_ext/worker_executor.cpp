// The executor: runs envdb's statements on a Postgres server for the
// database worker. The local server is reached without libpq, so no pg_hba
// entry or password is needed: statements run through SPI as the bootstrap
// superuser, and CREATE DATABASE (which refuses a transaction block) runs as
// a top-level utility statement in its own transaction. A script that must
// run inside another database (a worker's database is fixed for life) goes
// to a short-lived setup worker bound to it, which reports through shared
// memory. Registered servers (sys_database_host) are reached with libpq
// (server_session.hpp).
#include "worker_internal.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "storage/procarray.h"
}

#include "postgres/copier.hpp"

namespace envdb::pg::worker {

void abort_transaction() noexcept {
  try {
    guarded([] {
      AbortCurrentTransaction();
      return 0;
    });
  } catch (...) {
  }
}

namespace {

// A free setup-worker slot, marked in use; -1 when every slot is busy.
int claim_setup_slot() {
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
  return index;
}

// Waits (inside guarded) until the setup worker of `handle` has reported in
// `slot` (it sets this worker's latch then) and its process has left the
// server's process array, without waiting for the postmaster to notice its
// exit (tens of ms on a busy machine): a rename or drop of the database it
// was in would wait 100 ms per look at a session still there. False when it
// stopped without reporting.
bool wait_for_report(BackgroundWorkerHandle* handle, SetupSlot* slot) {
  bool latched = false;
  pid_t pid = 0;
  bool done = false;
  for (;;) {
    pg_read_barrier();
    if (slot->done) {
      done = true;
      break;
    }
    if (GetBackgroundWorkerPid(handle, &pid) == BGWH_STOPPED) {
      pg_read_barrier();
      done = slot->done;
      break;
    }
    const int events =
        WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10L, PG_WAIT_EXTENSION);
    if (events & WL_LATCH_SET) {
      ResetLatch(MyLatch);
      latched = true;
    }
    CHECK_FOR_INTERRUPTS();
  }
  // Its process goes next (it touches nothing of the slot after reporting).
  while (GetBackgroundWorkerPid(handle, &pid) != BGWH_STOPPED &&
         (pid == 0 || BackendPidGetProc(pid) != nullptr)) {
    pg_usleep(1000L);
    CHECK_FOR_INTERRUPTS();
  }
  // A wake-up meant for something else is passed on.
  if (latched) SetLatch(MyLatch);
  return done;
}

// The server this library runs in.
class LocalSession : public postgres::ServerSession {
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
        ProcessUtility(stmt, text, false, PROCESS_UTILITY_TOPLEVEL, nullptr, nullptr, None_Receiver,
                       nullptr);
        if (ActiveSnapshotSet()) PopActiveSnapshot();
        CommitTransactionCommand();
        return 0;
      });
    } catch (...) {
      abort_transaction();
      throw;
    }
  }

  // The guard beside the statement is a setup worker in this worker's own
  // database, running clear_template_sql every 50 ms until this worker lets
  // go of an advisory lock it holds meanwhile (or about 20 s pass). No slot or
  // worker free: the statement alone (its own wait and retry remain).
  void create_from_template(const std::string& sql, const std::string& template_db) override {
    const std::string lock = "1701737060, " + std::to_string(MyProcPid);
    const std::string own_db = in_transaction([] {
      const char* name = get_database_name(MyDatabaseId);
      return std::string(name ? name : "");
    });
    // Between two rounds it waits on the advisory lock itself (50 ms at a
    // time), so it stops as soon as the statement is done, not at its next
    // round.
    const std::string guard =
        "DO $envdb_guard$BEGIN\n"
        "PERFORM pg_catalog.set_config('lock_timeout', '50ms', true);\n"
        "FOR i IN 1..400 LOOP\n"
        "  PERFORM pg_catalog.pg_stat_clear_snapshot();\n"
        "  PERFORM * FROM (" +
        postgres::clear_template_sql(template_db, MyProcPid) +
        ") c;\n"
        "  BEGIN\n"
        "    PERFORM pg_catalog.pg_advisory_lock(" +
        lock +
        ");\n"
        "    PERFORM pg_catalog.pg_advisory_unlock(" +
        lock +
        ");\n    EXIT;\n"
        "  EXCEPTION WHEN lock_not_available THEN NULL;\n  END;\nEND LOOP; END$envdb_guard$";
    const int index = !own_db.empty() && own_db.size() < NAMEDATALEN &&
                              guard.size() < kSetupSqlBytes
                          ? claim_setup_slot()
                          : -1;
    if (index < 0) {
      exec_top_level(sql);
      return;
    }
    SetupSlot* slot = &shared->setups[index];
    slot->done = slot->ok = false;
    slot->error[0] = '\0';
    std::memcpy(slot->dbname, own_db.c_str(), own_db.size() + 1);
    std::memcpy(slot->sql, guard.c_str(), guard.size() + 1);
    pg_write_barrier();
    (void)query_value("SELECT pg_catalog.pg_advisory_lock(" + lock + ")::text");
    BackgroundWorkerHandle* handle = nullptr;
    guarded([&] {
      BackgroundWorker w = worker_description("envdb_setup_worker_main", "envdb setup worker",
                                              BGW_NEVER_RESTART, Int32GetDatum(index), MyProcPid);
      if (!RegisterDynamicBackgroundWorker(&w, &handle)) handle = nullptr;
      return 0;
    });
    auto finish = [&] {
      try {
        (void)query_value("SELECT pg_catalog.pg_advisory_unlock(" + lock + ")::text");
      } catch (...) {
      }
      if (handle) {
        try {
          guarded([&] {
            (void)wait_for_report(handle, slot);
            pfree(handle);
            return 0;
          });
        } catch (...) {
        }
      }
      SpinLockAcquire(&shared->mutex);
      slot->in_use = false;
      SpinLockRelease(&shared->mutex);
    };
    try {
      exec_top_level(sql);
    } catch (...) {
      finish();
      throw;
    }
    finish();
  }

  void exec_in_database(const std::string& database_name, const std::string& sql) override {
    if (database_name.size() >= NAMEDATALEN || sql.size() >= kSetupSqlBytes)
      throw Error(Code::internal, "the setup script of " + database_name + " is too long");
    const int index = claim_setup_slot();
    if (index < 0)
      throw Transient(Code::conflict, "every envdb setup worker slot is busy; the job is retried");
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
    const int started = guarded([index, slot] {
      BackgroundWorker w = worker_description("envdb_setup_worker_main", "envdb setup worker",
                                              BGW_NEVER_RESTART, Int32GetDatum(index), MyProcPid);
      BackgroundWorkerHandle* handle = nullptr;
      if (!RegisterDynamicBackgroundWorker(&w, &handle)) return 0;
      (void)wait_for_report(handle, slot);
      pfree(handle);
      return 1;
    });
    pg_read_barrier();
    const bool done = slot->done, ok = slot->ok;
    const std::string error = slot->error;
    release();
    if (started == 0)
      throw Transient(
          Code::conflict,
          "no background worker slot is free (max_worker_processes) to set up database " +
              quote_value(database_name));
    if (!done)
      throw Error(Code::internal, "the setup worker of database " + quote_value(database_name) +
                                      " stopped before it finished (could it connect?)");
    if (!ok)
      throw Error(Code::internal, "in database " + quote_value(database_name) + ": " + error);
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
    return postgres::database_url(host, PostPortNumber, database_name);
  }
};

}  // namespace

std::unique_ptr<postgres::ServerSession> open_session(
    const std::optional<postgres::Server>& server) {
  if (server) return connect_registered_server(*server, kWorkerConnection);
  return std::make_unique<LocalSession>();
}

}  // namespace envdb::pg::worker

using namespace envdb::pg::worker;

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
  // Who waits for the report: read before it is given (the slot is then
  // someone else's).
  const pid_t waiter = MyBgworkerEntry ? MyBgworkerEntry->bgw_notify_pid : 0;
  pg_write_barrier();
  slot->done = true;
  if (waiter > 0) {
    if (PGPROC* proc = BackendPidGetProc(waiter)) SetLatch(&proc->procLatch);
  }
  proc_exit(0);
}
