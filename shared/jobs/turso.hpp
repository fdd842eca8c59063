// The turso driver's lifecycle as outbox jobs. envdb cannot reach Turso
// itself: an external worker claims `turso` jobs, calls the Turso Platform API
// and reports back (docs/guides/turso-worker.md). Every change of the catalog
// that Turso must follow queues one job here, through queue::enqueue:
//
//   action    kind             at Turso                              on complete (tokens)
//   create    create_database  create the database, mint `mint`      stored as the first
//   credentials rotate    create_login     mint a token for the scope            the new active
//   credential; the
//                                                                    replaced one rotating for
//                                                                    grace
//   resume    create_login     mint a token per live scope           replace the active credentials
//   revoke,   disable_login    invalidate every token of the         replace the active credentials
//   expire,                    database (Turso invalidates per       of `mint`; every rotating one
//   is suspend,                   database, not per token), then mint   revoked (its token died)
//   archive                    `mint` (empty unless active)
//   drop      drop_database    delete the database                   droppedAt recorded
//   replace   copy_database,   make the content again (copy, reset,  replace the active credentials
//             reset_database,  restore), mint `mint`                 of `mint`
//             restore_database
//
// A payload never holds a secret. `mint` of an invalidating or resume job is
// computed again when the job is claimed, from the catalog as it is then, so a
// change committed after the job was queued is not lost. Jobs of one database
// are claimed one at a time in the order they were queued (claim_provisioning_jobs).
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::turso {

// The payload of a turso create_database job.
Json create_payload(const Row& environment, const Row& database);

// Queues the job of `action` (see the table) for a turso database, when
// Turso may have it: provisioned, or its create_database job pending or
// running (the jobs run in order). `credential_ids`: the credentials the job
// is about (revoked, expired or rotated out). `grace_seconds`: rotate only.
// Returns the job's row, or nullopt when none was queued (another driver).
std::optional<Row> queue(Host& host, const std::string& database_id, const std::string& action,
                         const std::vector<std::string>& credential_ids,
                         std::optional<int64_t> grace_seconds = std::nullopt);

// The drop_database job of a turso database (drop_environment_database).
Row queue_drop(Host& host, const Row& environment, const Row& database);

// At claim time: the job's payload brought up to date with the catalog (the
// `mint` list), written back to the job row. Other jobs are returned as they
// are.
Json refresh_on_claim(Host& host, const Row& job);

// The payload part of a copy_database, reset_database or restore_database job
// (action `replace`): Turso cannot replace a database's content in place, so
// the worker makes it again and its tokens die with it; it invalidates the
// old ones and mints a token for every scope live in `previous_status`
// (active: every active credential; suspended: none, resume mints them).
Json replacement_payload(Host& host, const std::string& database_id,
                         const std::string& previous_status);

// Whether complete_provisioning_job hands this job to complete().
bool is_lifecycle_job(const Row& job);

// Completes a lifecycle job (create_login, disable_login) with the tokens the
// worker minted: `tokens` must hold exactly the payload's mint scopes
// (invalid_parameter otherwise). Stores them sealed, revokes what the
// invalidation killed, audits each change. Returns the scopes stored.
Json complete(Host& host, const Row& job, const Json& tokens);

}  // namespace envdb::turso
