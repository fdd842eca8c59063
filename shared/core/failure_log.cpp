#include "core/failure_log.hpp"

namespace envdb::failure_log {

namespace {

// FNV-1a: the same in every process of a build (std::hash need not be).
uint64_t hash(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string seconds(int64_t ms) { return std::to_string((ms + 500) / 1000) + " s"; }

std::string minutes(int64_t ms) {
  return ms % 60000 == 0 ? std::to_string(ms / 60000) + " min" : seconds(ms);
}

}  // namespace

std::optional<std::string> failure(State& s, const std::string& what, const std::string& error,
                                   int64_t now_ms, int64_t interval_ms) {
  const uint64_t h = hash(error);
  if (!s.failing) {
    s = State{true, now_ms, now_ms, 1, 0, h};
    // The note before the error: a server's message may run over several lines.
    return what + " failed (while it keeps failing, logged at most every " + minutes(interval_ms) +
           "): " + error;
  }
  ++s.failures;
  if (h != s.message_hash || now_ms - s.last_written_ms >= interval_ms) {
    const int64_t unwritten = s.unwritten;
    s.unwritten = 0;
    s.last_written_ms = now_ms;
    s.message_hash = h;
    return what + " still fails (" + std::to_string(s.failures) + " failures in " +
           seconds(now_ms - s.first_ms) + ", " + std::to_string(unwritten) +
           " not logged): " + error;
  }
  ++s.unwritten;
  return std::nullopt;
}

std::optional<std::string> success(State& s, const std::string& what, int64_t now_ms) {
  if (!s.failing) return std::nullopt;
  const State was = s;
  s = State{};
  return what + " works again after " + std::to_string(was.failures) + " failure" +
         (was.failures == 1 ? "" : "s") + " in " + seconds(now_ms - was.first_ms) + " (" +
         std::to_string(was.unwritten) + " not logged)";
}

}  // namespace envdb::failure_log
