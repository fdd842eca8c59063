#include "core/row_cache.hpp"

#include <openssl/crypto.h>

namespace envdb {

namespace {

// What a row costs on the heap: the strings' buffers, the vector, the list
// node and the map's bucket entry (a fixed allowance for the last two).
size_t heap_bytes(const std::string& key, const std::vector<Value>& row) {
  size_t n = sizeof(Value) * row.capacity() + key.capacity() * 2 + 96;
  for (const Value& v : row) {
    if (auto s = std::get_if<std::string>(&v)) n += s->capacity() + 1;
    if (auto b = std::get_if<Blob>(&v)) n += b->bytes.capacity() + 1;
  }
  return n;
}

// Sealed tokens only, but wiped all the same: nothing of a credential stays
// behind in freed memory.
void wipe(std::vector<Value>& row) {
  for (Value& v : row) {
    if (auto s = std::get_if<std::string>(&v)) OPENSSL_cleanse(s->data(), s->capacity());
    if (auto b = std::get_if<Blob>(&v)) OPENSSL_cleanse(b->bytes.data(), b->bytes.capacity());
  }
}

}  // namespace

const std::vector<Value>* RowCache::find(const Generation& g, const std::string& key) {
  if (g != generation_) {
    clear();
    generation_ = g;
  }
  auto it = map_.find(key);
  if (it == map_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  lru_.splice(lru_.begin(), lru_, it->second);
  return &it->second->row;
}

void RowCache::put(const Generation& g, const std::string& key, std::vector<Value> row) {
  if (capacity_ == 0 || !g.fill) return;
  if (g != generation_) {
    clear();
    generation_ = g;
  }
  auto it = map_.find(key);
  if (it != map_.end()) {
    bytes_ -= it->second->bytes;
    wipe(it->second->row);
    lru_.erase(it->second);
    map_.erase(it);
  }
  evict_to(capacity_ - 1);
  const size_t bytes = heap_bytes(key, row);
  lru_.push_front(Entry{key, std::move(row), bytes});
  map_.emplace(key, lru_.begin());
  bytes_ += bytes;
}

void RowCache::set_column(const std::string& key, size_t column, Value v) {
  auto it = map_.find(key);
  if (it == map_.end() || column >= it->second->row.size()) return;
  Entry& e = *it->second;
  e.row[column] = std::move(v);
  // What a row holds may grow after it was kept (resolve.cpp adds the
  // answer's text): the estimate follows, so bytes() stays the whole cost.
  bytes_ -= e.bytes;
  e.bytes = heap_bytes(e.key, e.row);
  bytes_ += e.bytes;
}

void RowCache::clear() {
  for (Entry& e : lru_) wipe(e.row);
  lru_.clear();
  map_.clear();
  bytes_ = 0;
}

void RowCache::set_capacity(size_t capacity) {
  capacity_ = capacity;
  evict_to(capacity);
}

void RowCache::note_touch(const std::string& database_id, int64_t at_ms) {
  if (touches_.empty()) first_touch_ms_ = at_ms;
  touches_[database_id] = at_ms;
}

std::vector<std::pair<std::string, int64_t>> RowCache::take_touches() {
  std::vector<std::pair<std::string, int64_t>> out(touches_.begin(), touches_.end());
  touches_.clear();
  first_touch_ms_ = 0;
  return out;
}

void RowCache::evict_to(size_t n) {
  while (map_.size() > n && !lru_.empty()) {
    Entry& last = lru_.back();
    bytes_ -= last.bytes;
    wipe(last.row);
    map_.erase(last.key);
    lru_.pop_back();
  }
}

}  // namespace envdb
