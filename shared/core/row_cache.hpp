// A bounded, session-local cache of catalog rows (the router's resolve rows),
// valid for one catalog generation. The host says what a generation is
// (Host::catalog_generation): Postgres, a backend counter moved by the
// relcache invalidations the catalog's triggers send; SQLite, the main
// database's data version and the connection's own change count. A lookup at
// any other generation than the one the rows were read at empties the cache
// first, so a row is never served across a committed change of the tables it
// came from. Least recently used rows go first when it is full.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/value.hpp"

namespace envdb {

// Two numbers, compared as a pair (SQLite needs both of its counters).
// `fill` (not compared): rows read now may be kept. False where the session's
// own uncommitted writes could be in them and still roll back without
// moving the generation (SQLite inside a write transaction); kept rows are
// still served while the generation holds.
struct Generation {
  uint64_t a = 0;
  uint64_t b = 0;
  bool fill = true;
  bool operator==(const Generation& o) const { return a == o.a && b == o.b; }
  bool operator!=(const Generation& o) const { return !(*this == o); }
};

class RowCache {
 public:
  // Default bound of a session's cache, in rows (a resolve row is about
  // 2 KiB with its key and the answer text it keeps, by bytes()' estimate:
  // about 20 MiB per session at the bound).
  static constexpr size_t kDefaultCapacity = 10000;

  explicit RowCache(size_t capacity = kDefaultCapacity) : capacity_(capacity) {}

  // The row kept under key at generation g, or nullptr (a miss). A different
  // generation than the rows were read at drops them all.
  const std::vector<Value>* find(const Generation& g, const std::string& key);
  // Keeps row under key, read at generation g (dropping rows of any other).
  void put(const Generation& g, const std::string& key, std::vector<Value> row);
  // Replaces one column of a kept row (the core's own bookkeeping, which the
  // generation does not cover: last_accessed_at).
  void set_column(const std::string& key, size_t column, Value v);
  // The generation moved because of the session's own write to columns the
  // rows do not hold: keep them under the new generation.
  void restamp(const Generation& from, const Generation& to) {
    if (generation_ == from) generation_ = to;
  }
  void clear();
  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }
  void set_capacity(size_t capacity);
  // An estimate of the heap the kept rows use, in bytes.
  size_t bytes() const { return bytes_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

  // last_accessed_at touches not yet written, for hosts that defer them
  // (Host::defers_touches): database id -> when it was resolved (ms).
  void note_touch(const std::string& database_id, int64_t at_ms);
  size_t pending_touches() const { return touches_.size(); }
  int64_t first_touch_ms() const { return first_touch_ms_; }
  // Hands the pending touches over (and forgets them).
  std::vector<std::pair<std::string, int64_t>> take_touches();

 private:
  struct Entry {
    std::string key;
    std::vector<Value> row;
    size_t bytes;
  };
  void evict_to(size_t n);
  size_t capacity_;
  Generation generation_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  std::unordered_map<std::string, int64_t> touches_;
  int64_t first_touch_ms_ = 0;
};

}  // namespace envdb
