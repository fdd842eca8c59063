// The Postgres side of the resolve cache (core/row_cache.hpp): the backend's
// cache and its generation, a counter moved by the relcache invalidations of
// the tables the resolve rows come from. The catalog's statement triggers
// (envdb.invalidate_resolve_cache, generated with the tables in
// shared/catalog/schema.cpp) send those invalidations for plain DML; they go
// out at commit, are processed at the next resolve (AcceptInvalidationMessages)
// and are WAL-logged, so a hot standby's backends see them after replay. An
// aborted (sub)transaction replays its own invalidations locally, so rows read
// from its uncommitted writes are dropped too.
#pragma once

#include <optional>

#include "core/row_cache.hpp"

namespace envdb::pg::resolve_cache {

// From _PG_init: the relcache callback.
// and the setting envdb.resolve_cache_entries (rows per backend; 0: off).
void register_callback();
// nullptr when the setting is 0.
RowCache* cache();
// nullopt: do not use the cache in this call (REPEATABLE READ or SERIALIZABLE:
// the transaction's snapshot may predate the invalidations already taken in;
// or the catalog's tables are not there).
std::optional<Generation> generation();

}  // namespace envdb::pg::resolve_cache
