// Backups of environment databases, registered in sys_environment_backup:
//   backup_environment(environment_id, label)
//   list_environment_backups(environment_id)
//   restore_environment(environment_id, backup_id, force)
//   delete_environment_backup(backup_id)
//
// A backup's status: pending (its job is queued) -> ready | failed; ready |
// failed -> deleting (its delete_backup job is queued) -> deleted. The row is
// kept as history after deletion.
//
// Per driver:
//   sqlite    in the call: a snapshot of the file (VACUUM INTO, the copy's
//             temp-then-rename) at <sqlite_data_dir>/backups/<backup id>.db;
//             restore renames a re-stamped snapshot of it over the
//             environment's file. Deleting removes the file now.
//   postgres, turso
//             a backup_database, restore_database or delete_backup job; a
//             restore holds the environment in maintenance as a copy does.
//
// Retention (settings backup_retention_count and backup_retention_seconds,
// 0: no limit): when a backup becomes ready, the environment's older ready
// backups beyond the count or older than the age are deleted. Archiving keeps
// backups; dropping the database (drop_environment_database) deletes them.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <utility>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::backups {

extern const char* const kBackupColumns;
Json backup_json(const Row& row);

// <sqlite_data_dir>/backups: where the sqlite driver keeps backup files.
std::string backup_directory(Host& host);

// The outbox's report of a backup_database or delete_backup job: the backup
// row follows (ready, then retention; failed; deleted). Other kinds: no-op.
void job_done(Host& host, const Row& job, const std::string& now);
void job_failed(Host& host, const Row& job, bool retry, const std::string& now);

// drop_environment_database: every backup of the environment that is not
// deleted goes (sqlite: its file now; postgres, turso: a delete_backup job).
// Runs inside the caller's Atomic.
void drop_all(Host& host, const std::string& environment_id);

// check(): files in the backup directory that are envdb's but no backup
// holds: the temporary of a snapshot that did not finish, or the file of a
// backup whose call did not commit (a killed process) or that is deleted.
// {path, why}. check(true) deletes them.
std::vector<std::pair<std::string, std::string>> stray_files(Host& host);

std::vector<api::Function> functions();

}  // namespace envdb::backups
