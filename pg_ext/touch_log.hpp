// last_accessed_at without a write on the resolve path (Postgres, with the
// preload): a resolve records the access in a table in shared memory, and the
// control plane's database worker writes the recorded accesses at its next
// pass (every few seconds, worker.cpp kPeriodMs), in one UPDATE per pass.
// Without the preload, or with the table full, the resolve touches the row
// itself as before.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace envdb::pg::touch_log {

// From _PG_init while shared_preload_libraries loads envdb.
void register_preloaded();
// Records that the current database's `database_id` was resolved at `at_ms`;
// false when it cannot (no preload, the table is full).
bool record(const std::string& database_id, int64_t at_ms);
// The database worker: takes out the current database's recorded accesses.
std::vector<std::pair<std::string, int64_t>> take();

}  // namespace envdb::pg::touch_log
