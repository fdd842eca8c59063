// Moving a postgres-driver environment database to another registered host:
//   move_environment(environment_id, host_id)
//
// The call checks and queues; the worker copies; the job's completion
// switches. Rules: the environment's database uses the postgres driver (the
// sqlite and turso drivers have no hosts: conflict naming environment_id),
// is provisioned and not dropped, has no backup (they live beside it on its
// server: conflict), and the environment is active or suspended; host_id (an
// id or a name) is a registered host of the database's region other than
// its current one, that takes a new database (not drained, healthy, not
// full), and where no earlier copy of this database still waits for its
// drop. The environment is in maintenance (resolve refuses it, its logins
// are closed) until the move_database job ends, then gets its previous status
// back. Audited as environment.move.
//
// The job (postgres/mover.hpp) builds the database on the target; its
// completion, in one catalog transaction, points the database row at the new
// host and URL (the resolve cache follows catalog writes), re-seals its
// credentials to the new URL, audits environment.moved and queues a
// retire_database job for the old server (payload {databaseName, hostId,
// dropAfter}): the worker claims it once drop_grace_seconds have passed and
// drops the old database and its roles there. A failed move leaves the
// environment where it was.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/store.hpp"

namespace envdb::move {

// The outbox's report of a move_database job: on completion (with the URL
// the worker made), the switch described above. Other kinds: no-op. A
// move_database job must report its URL, a retire_database job none
// (invalid_parameter).
void job_done(Host& host, const Row& job, const std::optional<std::string>& database_url,
              const std::string& now);

std::vector<api::Function> functions();

}  // namespace envdb::move
