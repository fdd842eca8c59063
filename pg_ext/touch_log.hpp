// last_accessed_at without a write on the resolve path (Postgres, with the
// preload): a resolve due to touch an environment's database records the
// access in a bounded hash in shared memory, keyed by (control-plane database,
// environment database id) and keeping the latest time. The control plane's
// database worker takes its own database's accesses at its next pass and
// writes them in one UPDATE (worker_database.cpp); the launcher asks for a
// pass of every database with accesses waiting (worker.cpp), so a database no
// job ever woke is visited too. Without the preload, on a hot standby (nothing
// can write there), with envdb.deferred_touches off, or with the hash full,
// record() says no and the resolve touches the row itself as before.
#pragma once

extern "C" {
#include "postgres.h"
}

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace envdb::pg::touch_log {

// Accesses waiting at most, over all control planes of the server (about
// 80 bytes of shared memory each), and control-plane databases at most.
constexpr int kSlots = 65536;
constexpr int kDatabases = 64;

// From _PG_init in every process: the setting envdb.deferred_touches.
void define_setting();
// From _PG_init while shared_preload_libraries loads envdb: the shared memory.
void register_preloaded();
// Records that the current database's `database_id` was resolved at `at_ms`;
// false when it is not recorded (see above) and the caller writes it itself.
bool record(const std::string& database_id, int64_t at_ms);
// The database worker: takes out the current database's accesses.
std::vector<std::pair<std::string, int64_t>> take();
// The launcher: the databases with accesses waiting (at most kDatabases),
// and dropping the accesses of a database that no longer exists.
int waiting_databases(Oid* out);
void forget(Oid db);

}  // namespace envdb::pg::touch_log
