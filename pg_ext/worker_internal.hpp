// What the three parts of envdb's background workers share (worker.cpp:
// shared memory and the launcher; worker_database.cpp: a control plane's
// jobs and convergence; worker_executor.cpp: running statements on a server).
#pragma once

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
#include <memory>
#include <optional>
#include <string>

#include "core/errors.hpp"
#include "core/failure_log.hpp"
#include "core/ids.hpp"
#include "pg_guard.hpp"
#include "postgres/provisioner.hpp"
#include "server_session.hpp"
#include "spi_store.hpp"

namespace envdb::pg::worker {

constexpr int kMaxDatabases = 256;
constexpr int kMaxSetups = 4;
constexpr size_t kSetupSqlBytes = 8192;

struct DatabaseSlot {
  Oid db;              // InvalidOid: free
  bool requested;      // someone asked for a pass
  bool running;        // a database worker was started and has not finished
  bool control_plane;  // envdb was found in it
  uint32 generation;   // of the worker started last
  Latch* latch;        // its running worker's, once connected (set: a pass at once)
};

struct SetupSlot {
  bool in_use;
  bool done;
  bool ok;
  char dbname[NAMEDATALEN];
  char sql[kSetupSqlBytes];
  char error[1024];
};

// A server whose convergence keeps failing (a database host that is down),
// per control plane: how much of it was logged (failure_log.hpp). In shared
// memory because a database worker does not live for ever (it makes way for
// another database, or for a session that drops or copies its own).
constexpr int kMaxFailingServers = 64;
struct FailingServer {
  Oid db;            // the control plane; InvalidOid: free
  char host_id[64];  // "": the server envdb runs on
  failure_log::State state;
};

struct Shared {
  slock_t mutex;
  Latch* launcher_latch;
  DatabaseSlot databases[kMaxDatabases];
  SetupSlot setups[kMaxSetups];
  FailingServer failing[kMaxFailingServers];
};

extern Shared* shared;

// The description of one of envdb's background workers: `function` is its
// entry point in this library and `name` its name in pg_stat_activity.
BackgroundWorker worker_description(const char* function, const char* name, int restart_time,
                                    Datum main_arg, pid_t notify_pid);

// A LOG or WARNING line "envdb: <message>"; never raises.
void log_message(int level, const std::string& message);

void abort_transaction() noexcept;

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

// A session on the server of a job: the local one (SPI, no libpq) when
// `server` is nullopt, else the registered server through libpq
// (connect_registered_server). Throws Transient when it cannot connect.
std::unique_ptr<postgres::ServerSession> open_session(
    const std::optional<postgres::Server>& server);

}  // namespace envdb::pg::worker
