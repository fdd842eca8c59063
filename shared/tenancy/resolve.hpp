// The router's hot path (docs/design.md#context-and-routing):
//
//   resolve_environment(environment_id [, scope = 'readwrite'])
//     -> {environmentId, organizationId, envType, status, driver, databaseName,
//         databaseUrl, region, credential: {id, scope, username, token, expiresAt}}
//
// One indexed query joins the environment (primary key), its database
// (unique environment_id) and the active credential of the scope (the unique
// partial index on (database_id, scope) WHERE status = 'active'), then one
// AES-GCM open. Refuses an environment that is not active (conflict); no
// active credential of the scope, or one past its expires_at, is not_found.
//
// Nothing is written on this path except last_accessed_at, and that only
// where the stored value is NULL or more than kTouchSeconds old, and where
// the host takes the access to write later (Host::defer_touch) or the store
// is writable; the touch never waits for a row lock (Postgres: SKIP LOCKED)
// and never fails a resolve in SQLite (a busy or read-only database just
// skips it). No audit event: this runs on every request.
#pragma once
#include "core/cpp_only.hpp"
#include "core/function.hpp"
#include "core/host.hpp"

#include <vector>

namespace envdb::resolve {

constexpr int64_t kTouchSeconds = 60;

// The resolve itself, for an environment id already checked with require_id:
// resolve_environment's answer (JSON text). Every lookup that ends in an
// environment (by id, by hostname) goes through here, so the role rules and
// any caching apply to all of them alike.
Value resolve(api::Call& c, const std::string& environment_id, std::string scope);

// A host may defer last_accessed_at touches into the session's resolve cache
// (Host::defer_touch, RowCache::note_touch); a resolve writes them all, each with the
// time it was resolved, once the oldest is kTouchSeconds old or
// kMaxPendingTouches are pending (`force`: now), in one write transaction. A
// busy or read-only store drops the batch: last_accessed_at is bookkeeping,
// never a reason to fail.
constexpr size_t kMaxPendingTouches = 1000;
void flush_touches(Host& host, RowCache& cache, int64_t now, bool force);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::resolve
