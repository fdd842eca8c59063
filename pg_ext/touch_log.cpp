extern "C" {
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
}

#include <cstring>

#include "pg_guard.hpp"
#include "touch_log.hpp"

namespace envdb::pg::touch_log {

namespace {

constexpr size_t kIdBytes = 44;  // an id envdb makes is a 36-character UUID

// The hash key: compared as bytes (HASH_BLOBS), so always zero-filled.
struct Key {
  Oid db;
  char database_id[kIdBytes];
};

struct Entry {
  Key key;  // first, as dynahash wants
  int64 at_ms;
};

// The databases with entries in the hash, for the launcher.
struct Header {
  int databases;
  Oid database[kDatabases];
};

constexpr const char* kTranche = "envdb touches";
Header* header = nullptr;
HTAB* entries = nullptr;
LWLock* lock = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
bool deferred_setting = true;

void shmem_request() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(MAXALIGN(sizeof(Header)) + hash_estimate_size(kSlots, sizeof(Entry)));
  RequestNamedLWLockTranche(kTranche, 1);
}

void shmem_startup() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  header = static_cast<Header*>(ShmemInitStruct("envdb touch databases", sizeof(Header), &found));
  if (!found) std::memset(static_cast<void*>(header), 0, sizeof(Header));
  HASHCTL info;
  std::memset(&info, 0, sizeof info);
  info.keysize = sizeof(Key);
  info.entrysize = sizeof(Entry);
  // Every element allocated up front: the hash never takes shared memory
  // beyond its share.
  entries = ShmemInitHash("envdb touches", kSlots, kSlots, &info,
                          HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  lock = &(GetNamedLWLockTranche(kTranche))->lock;
  LWLockRelease(AddinShmemInitLock);
}

// Under the lock: the index of `db` in the header, or -1.
int database_index(Oid db) {
  for (int i = 0; i < header->databases; ++i)
    if (header->database[i] == db) return i;
  return -1;
}

// Under the lock: `db` out of the header.
void drop_database(Oid db) {
  const int i = database_index(db);
  if (i < 0) return;
  header->database[i] = header->database[header->databases - 1];
  --header->databases;
}

}  // namespace

void define_setting() {
  DefineCustomBoolVariable(
      "envdb.deferred_touches",
      "resolve_environment records last_accessed_at in shared memory for the database worker to "
      "write (with the preload); off: the resolve writes it itself.",
      nullptr, &deferred_setting, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

void register_preloaded() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = shmem_startup;
}

bool record(const std::string& database_id, int64_t at_ms) {
  if (!deferred_setting || !entries || !lock || database_id.size() >= kIdBytes) return false;
  Key key;
  std::memset(&key, 0, sizeof key);
  key.db = MyDatabaseId;
  std::memcpy(key.database_id, database_id.data(), database_id.size());
  return guarded([&key, at_ms] {
    // A standby's accesses could never be written: the caller skips them.
    if (RecoveryInProgress()) return false;
    bool kept = false;
    LWLockAcquire(lock, LW_EXCLUSIVE);
    Entry* e = static_cast<Entry*>(hash_search(entries, &key, HASH_FIND, nullptr));
    if (e) {
      if (e->at_ms < at_ms) e->at_ms = at_ms;
      kept = true;
    } else if (hash_get_num_entries(entries) < kSlots &&
               (database_index(key.db) >= 0 || header->databases < kDatabases)) {
      bool found = false;
      e = static_cast<Entry*>(hash_search(entries, &key, HASH_ENTER_NULL, &found));
      if (e) {
        e->at_ms = at_ms;
        if (database_index(key.db) < 0) header->database[header->databases++] = key.db;
        kept = true;
      }
    }
    LWLockRelease(lock);
    return kept;
  });
}

std::vector<std::pair<std::string, int64_t>> take() {
  std::vector<std::pair<std::string, int64_t>> out;
  if (!entries || !lock) return out;
  const bool waiting = guarded([] {
    LWLockAcquire(lock, LW_SHARED);
    const bool any = database_index(MyDatabaseId) >= 0;
    LWLockRelease(lock);
    return any;
  });
  if (!waiting) return out;  // most passes: no buffer to set up
  // Copied out under the lock into memory allocated before it (no C++
  // allocation while an LWLock is held inside guarded()).
  struct Taken {
    char database_id[kIdBytes];
    int64 at_ms;
  };
  static std::vector<Taken> buffer;
  if (buffer.size() < static_cast<size_t>(kSlots)) buffer.resize(kSlots);
  Taken* mine = buffer.data();
  const int taken = guarded([mine] {
    int n = 0;
    LWLockAcquire(lock, LW_EXCLUSIVE);
    if (database_index(MyDatabaseId) >= 0) {
      HASH_SEQ_STATUS scan;
      hash_seq_init(&scan, entries);
      Entry* e;
      while ((e = static_cast<Entry*>(hash_seq_search(&scan))) != nullptr) {
        if (e->key.db != MyDatabaseId) continue;
        std::memcpy(mine[n].database_id, e->key.database_id, kIdBytes);
        mine[n].at_ms = e->at_ms;
        ++n;
        // Removing the element just returned is allowed during a scan.
        (void)hash_search(entries, &e->key, HASH_REMOVE, nullptr);
      }
      drop_database(MyDatabaseId);
    }
    LWLockRelease(lock);
    return n;
  });
  out.reserve(static_cast<size_t>(taken));
  for (int i = 0; i < taken; ++i) {
    const char* id = mine[i].database_id;
    out.emplace_back(std::string(id, strnlen(id, kIdBytes)), mine[i].at_ms);
  }
  return out;
}

int waiting_databases(Oid* out) {
  if (!header || !lock) return 0;
  LWLockAcquire(lock, LW_SHARED);
  const int n = header->databases;
  std::memcpy(out, header->database, sizeof(Oid) * static_cast<size_t>(n));
  LWLockRelease(lock);
  return n;
}

void forget(Oid db) {
  if (!entries || !lock) return;
  LWLockAcquire(lock, LW_EXCLUSIVE);
  HASH_SEQ_STATUS scan;
  hash_seq_init(&scan, entries);
  Entry* e;
  while ((e = static_cast<Entry*>(hash_seq_search(&scan))) != nullptr)
    if (e->key.db == db) (void)hash_search(entries, &e->key, HASH_REMOVE, nullptr);
  drop_database(db);
  LWLockRelease(lock);
}

}  // namespace envdb::pg::touch_log
