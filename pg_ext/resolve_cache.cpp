extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "storage/sinval.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#if PG_VERSION_NUM < 160000
#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))
#endif

PGDLLEXPORT Datum envdb_invalidate_resolve_cache(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(envdb_invalidate_resolve_cache);
}

#include "pg_guard.hpp"
#include "resolve_cache.hpp"

namespace envdb::pg::resolve_cache {

namespace {

// The tables whose changes move the generation; looked up again after any
// invalidation of one of them (DROP EXTENSION and CREATE again, say).
constexpr int kTables = 3;
const char* const kTableNames[kTables] = {"sys_environment", "sys_environment_database",
                                          "sys_database_credential"};
Oid table_oids[kTables] = {InvalidOid, InvalidOid, InvalidOid};
bool oids_known = false;
uint64 counter = 1;

void relcache_changed(Datum, Oid relid) {
  // InvalidOid: every relation (a reset after the invalidation queue overflowed).
  if (relid == InvalidOid) {
    ++counter;
    oids_known = false;
    return;
  }
  for (Oid oid : table_oids)
    if (oid == relid) {
      ++counter;
      return;
    }
}

// The tables this transaction has already sent an invalidation for, with the
// subtransaction that sent it. One message per table and transaction reaches
// every other backend (and a standby's replay) at commit; sending it again for
// each statement only made this backend process it again at its next command,
// which also throws away every cached plan on the table. A later write in the
// same transaction moves this backend's own generation directly instead. An
// aborted subtransaction's messages are dropped, so its entries are too.
struct Sent {
  Oid relid;
  SubTransactionId by;
};
Sent sent[kTables];
int sent_count = 0;
bool xact_callbacks_registered = false;

bool wrote = false;  // this transaction wrote a table: its rollbacks move the generation

void forget_sent(XactEvent event, void*) {
  if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
      event == XACT_EVENT_PRE_PREPARE)
    return;
  // A rollback undoes writes that sent no message of their own (the later ones).
  if (wrote && (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)) ++counter;
  sent_count = 0;
  wrote = false;
}

void forget_aborted(SubXactEvent event, SubTransactionId my_subid, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  if (wrote) ++counter;
  int kept = 0;
  // Subtransaction ids grow: what my_subid or a child of it sent goes.
  for (int i = 0; i < sent_count; ++i)
    if (sent[i].by < my_subid) sent[kept++] = sent[i];
  sent_count = kept;
}

bool already_sent(Oid relid) {
  for (int i = 0; i < sent_count; ++i)
    if (sent[i].relid == relid) return true;
  return false;
}

bool look_up_oids() {
  return guarded([] {
    const Oid schema = get_namespace_oid("envdb", true);
    if (!OidIsValid(schema)) return false;
    for (int i = 0; i < kTables; ++i) {
      table_oids[i] = get_relname_relid(kTableNames[i], schema);
      if (!OidIsValid(table_oids[i])) return false;
    }
    return true;
  });
}

RowCache backend_cache;

int capacity_setting = static_cast<int>(RowCache::kDefaultCapacity);

}  // namespace

void register_callback() {
  CacheRegisterRelcacheCallback(relcache_changed, (Datum)0);
  DefineCustomIntVariable("envdb.resolve_cache_entries",
                          "Rows of resolve_environment kept per backend (0: no cache).", nullptr,
                          &capacity_setting, static_cast<int>(RowCache::kDefaultCapacity), 0,
                          10000000, PGC_USERSET, 0, nullptr, nullptr, nullptr);
}

RowCache* cache() {
  const auto capacity = static_cast<size_t>(capacity_setting);
  if (backend_cache.capacity() != capacity) backend_cache.set_capacity(capacity);
  return capacity ? &backend_cache : nullptr;
}

std::optional<Generation> generation() {
  const bool usable = guarded([] {
    // A resolve served from the cache opens no table, so nothing else takes
    // in the invalidations other sessions (or the standby's replay) sent.
    AcceptInvalidationMessages();
    return !IsolationUsesXactSnapshot();
  });
  if (!usable) return std::nullopt;
  if (!oids_known) {
    if (!look_up_oids()) return std::nullopt;
    oids_known = true;
    ++counter;  // rows kept before the lookup belong to a catalog no longer known
  }
  Generation g;
  g.a = counter;
  return g;
}

}  // namespace envdb::pg::resolve_cache

// The catalog's statement triggers: a relcache invalidation of the table that
// changed, sent at commit (and processed at once by this backend).
extern "C" Datum envdb_invalidate_resolve_cache(PG_FUNCTION_ARGS) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("invalidate_resolve_cache: not called as a trigger")));
  TriggerData* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  using namespace envdb::pg::resolve_cache;
  const Oid relid = RelationGetRelid(data->tg_relation);
  if (!xact_callbacks_registered) {
    RegisterXactCallback(forget_sent, nullptr);
    RegisterSubXactCallback(forget_aborted, nullptr);
    xact_callbacks_registered = true;
  }
  wrote = true;
  if (already_sent(relid)) {
    ++counter;  // this backend's rows read since the first write are stale too
    return PointerGetDatum(nullptr);
  }
  CacheInvalidateRelcache(data->tg_relation);
  if (sent_count < kTables) sent[sent_count++] = Sent{relid, GetCurrentSubTransactionId()};
  return PointerGetDatum(nullptr);
}
