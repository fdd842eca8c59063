// Copying and resetting environment databases (Dev -> Prod deployment):
//   copy_environment(source_environment_id, target_environment_id, mode, force)
//   reset_environment(environment_id, force)
// and a new environment as a copy (provision_environment's copy_from).
//
// The target keeps its id, database_name, credentials and members: only the
// content of its database is replaced. Rules: the target is another
// environment of the source's organization, on the same driver; a production,
// protected or default target needs force (conflict otherwise); the source is
// active or suspended; the target is active or suspended.
//
// Per driver:
//   sqlite    done in the call: a consistent snapshot (VACUUM INTO) of the
//             source into <target file>.tmp-<hex> inside sqlite_data_dir,
//             emptied for mode schema, re-stamped with the target's identity,
//             fsynced, then renamed over the target file. A kill at any point
//             leaves the old or the new file; check() deletes the temporary.
//   postgres, turso
//             the target goes to status maintenance (resolve refuses it) and
//             a copy_database / reset_database job is queued; the job's
//             completion gives the target back the status it had
//             (payload.previousStatus), and so does its failure without
//             retry (the worker swaps only a finished copy in, so the old
//             database is intact). Payloads: docs/reference.md#copies-and-backups.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::copy {

// "full" or "schema"; invalid_parameter naming `field` otherwise.
void require_mode(const std::string& field, const std::string& mode);

// A target whose content is about to be replaced (copy, reset, restore):
// active or suspended (invalid_transition), and with force unless it is
// production, protected or default (conflict naming `field`).
void require_overwritable(const Row& target, bool force, const std::string& field);

// A copy's source: active or suspended (invalid_transition naming `field`).
void require_copy_source(const Row& source, const std::string& field);

// Test hook for the crash tests: with ENVDB_TEST_CRASH_AT=<n> in the
// environment, the n-th crash point a process reaches ends it at once
// (_exit, as a kill -9 would). Every step of a file copy or restore is one.
void crash_point();

// The sqlite driver's file work, in the call (tenancy/backups uses it too).
// Snapshot of `source_path` (VACUUM INTO) into a temporary file beside
// `final_path`, then `prepare` on the temporary's store, re-stamped with the
// given identity, fsynced and renamed over `final_path`. The temporary never
// survives a failure. Returns the bytes of the new file.
struct Identity {
  std::string environment_id;
  std::string organization_id;
  std::string database_name;
};
int64_t replace_file(Host& host, const std::string& source_path, const std::string& final_path,
                     const std::string& mode, const std::optional<Identity>& identity);
// fsync of one file (best effort for a directory).
void sync_file(const std::string& path);
void sync_directory(const std::string& dir);

// The common payload of a job that holds its environment: {databaseName,
// hostId, previousStatus}, and for turso turso::replacement_payload's keys.
Json job_payload(Host& host, const Row& database, const std::string& previous_status);

// An environment's database row: records::kDatabaseColumns and host_id.
std::optional<Row> database_with_host(Store& store, const std::string& environment_id);

// Puts an environment in maintenance for a queued job; returns the status it
// had (what the job's end gives back).
std::string hold(Host& host, const Row& environment);

// The outbox's report of a copy, reset or restore job (kinds copy_database,
// reset_database, restore_database): the environment gets its previous
// status back on completion, and on failure without retry. Other kinds: no-op.
void job_done(Host& host, const Row& job, const std::string& now);
void job_failed(Host& host, const Row& job, bool retry, const std::string& now);

// provision_environment's copy_from: checks the source for a new environment
// of `organization_id` on `driver` and returns {sourceEnvironmentId,
// sourceDatabaseId, sourceDatabaseName, sourceHostId, mode} (the create job's
// payload.copyFrom for postgres and turso).
Json copy_from_source(Store& store, const std::string& source_id, const std::string& mode,
                      const std::string& organization_id, const std::string& driver);
// sqlite: copies the source into the just-created environment's file.
void copy_into_new(Host& host, const Json& copy_from, const std::string& target_id);

// check(): an environment in maintenance that nothing will release: no job
// that holds it (copy, reset, restore, or any whose payload carries
// previousStatus) is pending or running for it (the job's row was deleted or
// marked finished, or the status was written behind envdb's back).
// `release_to` is what check(true) gives it: the previousStatus of the hold's
// own job when that row is still there (done or failed, queued no earlier
// than the environment's last change), else suspended (resolve keeps refusing
// it until someone sets it active; nobody can tell it was not suspended).
struct Stranded {
  std::string environment_id;
  std::string organization_id;
  std::string release_to;
  std::optional<std::string> job_id;  // the job release_to comes from
};
std::vector<Stranded> stranded_in_maintenance(Store& store);
// check(true): releases one (the status, an environment.maintenance_end audit
// event with outcome "check"). False, changing nothing, when it is no longer
// stranded (a job was queued for it meanwhile, or it left maintenance).
bool release_stranded(Host& host, const Stranded& s, const std::string& now);

std::vector<api::Function> functions();

}  // namespace envdb::copy
