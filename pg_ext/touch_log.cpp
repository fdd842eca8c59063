extern "C" {
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

#include <cstring>

#include "pg_guard.hpp"
#include "touch_log.hpp"

namespace envdb::pg::touch_log {

namespace {

// Accesses recorded between two passes of the workers, over all control
// planes of the server. A resolve records an environment at most once a
// minute per backend, so this holds 8192 distinct environments resolved
// within a pass interval (about 2 s) before resolves fall back to writing.
constexpr int kSlots = 8192;
constexpr size_t kIdBytes = 48;  // a database id is a 36-character UUID

struct Slot {
  Oid db;
  int64 at_ms;
  char database_id[kIdBytes];
};

struct Table {
  int used;
  Slot slots[kSlots];
};

Table* table = nullptr;
LWLock* lock = nullptr;
shmem_request_hook_type previous_request_hook = nullptr;
shmem_startup_hook_type previous_startup_hook = nullptr;
constexpr const char* kTranche = "envdb touches";

void shmem_request() {
  if (previous_request_hook) previous_request_hook();
  RequestAddinShmemSpace(sizeof(Table));
  RequestNamedLWLockTranche(kTranche, 1);
}

void shmem_startup() {
  if (previous_startup_hook) previous_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  table = static_cast<Table*>(ShmemInitStruct("envdb touches", sizeof(Table), &found));
  if (!found) table->used = 0;
  lock = &(GetNamedLWLockTranche(kTranche))->lock;
  LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void register_preloaded() {
  previous_request_hook = shmem_request_hook;
  shmem_request_hook = shmem_request;
  previous_startup_hook = shmem_startup_hook;
  shmem_startup_hook = shmem_startup;
}

bool record(const std::string& database_id, int64_t at_ms) {
  if (!table || !lock || database_id.size() >= kIdBytes) return false;
  const char* id = database_id.c_str();
  const size_t n = database_id.size();
  return guarded([&] {
    bool kept = false;
    LWLockAcquire(lock, LW_EXCLUSIVE);
    if (table->used < kSlots) {
      Slot& s = table->slots[table->used++];
      s.db = MyDatabaseId;
      s.at_ms = at_ms;
      std::memcpy(s.database_id, id, n);
      s.database_id[n] = '\0';
      kept = true;
    }
    LWLockRelease(lock);
    return kept;
  });
}

std::vector<std::pair<std::string, int64_t>> take() {
  std::vector<std::pair<std::string, int64_t>> out;
  if (!table || !lock) return out;
  // Copied out under the lock into plain memory first (no C++ allocation
  // while an LWLock is held inside guarded()).
  static Slot mine[kSlots];
  const int taken = guarded([] {
    int n = 0, kept = 0;
    LWLockAcquire(lock, LW_EXCLUSIVE);
    for (int i = 0; i < table->used; ++i) {
      if (table->slots[i].db == MyDatabaseId)
        mine[n++] = table->slots[i];
      else
        table->slots[kept++] = table->slots[i];
    }
    table->used = kept;
    LWLockRelease(lock);
    return n;
  });
  out.reserve(static_cast<size_t>(taken));
  for (int i = 0; i < taken; ++i) out.emplace_back(mine[i].database_id, mine[i].at_ms);
  return out;
}

}  // namespace envdb::pg::touch_log
