// The audit trail as an event feed: every audit event is numbered in commit
// order (sys_audit_event.seq, catalog/schema) and published.
//
//   events_since(cursor [, max_events = 100])
//     -> {events: [{seq, id, occurredAt, action, organizationId, environmentId,
//                   credentialId}], cursor}
//
// Postgres also sends each event, as its transaction commits, as
// NOTIFY envdb_events with the same keys but occurredAt (the numbering
// trigger in the catalog, so every writer is caught). A reader LISTENs, then
// calls events_since from its cursor until it gets no more, and again on each
// notification. Numbers are given at commit, one transaction at a time, so a
// reader that has seen number N has seen every smaller number there will ever
// be: nothing commits late behind its cursor. Numbers may skip (a transaction
// that failed while committing); never a secret in an event.
#pragma once
#include "core/cpp_only.hpp"

#include <vector>

#include "core/function.hpp"

namespace envdb::events {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::events
