// failure_log: how often a failure that repeats is written to a log. A worker
// that retries every few seconds (the postgres worker's convergence pass on
// a database host that is down) would otherwise write the same line on every
// try. The first failure is written; while it goes on, one line at most every
// `interval_ms` with the number of failures not written since; a different
// message is written at once (something else went wrong); the first success
// after failures writes one line saying it works again.
//
// The state is plain data so a host can keep it where its workers outlive
// each other (the Postgres host: shared memory, one entry per server).
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace envdb::failure_log {

constexpr int64_t kDefaultIntervalMs = int64_t{5} * 60 * 1000;

struct State {
  bool failing = false;
  int64_t first_ms = 0;  // the first failure of this run of failures
  int64_t last_written_ms = 0;
  int64_t failures = 0;       // in this run
  int64_t unwritten = 0;      // failures since the last line written
  uint64_t message_hash = 0;  // of the last message written
};

// A failure of `what` (for example "converging the logins on database host
// eu-1") with `error` at `now_ms`: the line to write, or nullopt to stay quiet.
std::optional<std::string> failure(State& state, const std::string& what, const std::string& error,
                                   int64_t now_ms, int64_t interval_ms = kDefaultIntervalMs);

// A success of `what`: the recovery line when it had been failing, else nullopt.
std::optional<std::string> success(State& state, const std::string& what, int64_t now_ms);

}  // namespace envdb::failure_log
