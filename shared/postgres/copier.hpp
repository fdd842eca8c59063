// copier: the postgres driver's copies, resets, backups and restores, as
// steps on the server of the environment (a ServerSession). Every one builds
// the new content in a temporary database beside the target, then swaps the
// names in one transaction, so a crash at any point leaves the old content or
// the new one under the target's name, never a mix; running a step again from
// the start converges (what an earlier attempt left is dropped first).
//
//   copy     CREATE DATABASE <target>_copy TEMPLATE <source>: the source's
//            sessions are ended just before (a template must have none) and new
//            ones wait on its lock while the files are copied; then, inside the
//            copy, everything the source's roles own or were granted is handed
//            to the target's (hand_over_sql), and the identity stamp is the
//            target's. `schema`: every table outside envdb's schema is emptied.
//   reset    a new database from template0 with the target's data-plane schema.
//   backup   CREATE DATABASE <target>_b_<id> TEMPLATE <target>, owned by the
//            target's owner role, not connectable.
//   restore  a copy of the backup's database, swapped in like a copy.
#pragma once
#include "core/cpp_only.hpp"

#include <functional>
#include <optional>
#include <string>

#include "postgres/statements.hpp"

namespace envdb::postgres {

// Names beside an environment database `name` (40 characters at most, so
// these stay within Postgres's 63). Every one starts with "<name>_", like the
// environment's roles, so a drop finds them all.
std::string temp_database_name(const std::string& name);     // the content being built
std::string retired_database_name(const std::string& name);  // the old content, after a swap
std::string backup_database_name(const std::string& name, const std::string& backup_id);

// The databases beside `name` on its server (its backups, what a copy left):
// one row, a JSON array of names.
std::string beside_databases_sql(const std::string& name);

// One copy, reset, backup or restore on one server.
struct CopyPlan {
  std::string kind;  // copy_database | reset_database | backup_database | restore_database |
                     // delete_backup
  std::string mode = "full";   // copy_database: full | schema
  std::string target;          // the environment's database name
  std::string environment_id;  // the target's identity, stamped into it
  std::string organization_id;
  std::optional<std::string> source;  // copy_database: the source's database name
  std::optional<std::string> backup;  // backup/restore/delete: the backup's database name
  // The old content, swapped out, is left as retired_database_name(target)
  // for the caller to drop after reporting the job (drop_retired); a crash in
  // between leaves it to retired_leftovers_sql. Else dropped before returning.
  bool keep_retired = false;
};

// What a step measured, for the job's result and the log.
struct CopyOutcome {
  int64_t clone_ms = 0;  // CREATE DATABASE ... TEMPLATE (the source's sessions wait this long)
  int64_t hand_ms = 0;   // copy_database: the hand-over to the target's roles
  int64_t swap_ms = 0;   // the swap, the drop of the old content included
  int64_t drop_ms = 0;   // the drop of the old content
  int64_t total_ms = 0;
  int attempts = 0;  // of the clone (a session that came back in between is a retry)
  std::optional<int64_t> size_bytes;   // backup_database: the backup's size
  std::optional<std::string> retired;  // keep_retired: the old content left to drop
};

// The script run inside the copy: ownership of every object owned by a role of
// `from` goes to the matching role of `to` (a source login's to `to.admin`),
// their grants (objects, columns, schemas, routines, types, large objects,
// default privileges, policies) are given to the matching roles and taken
// from theirs, the grants the source database itself holds are left as they
// were, and it fails (so nothing is kept) if any source role still owns or is
// granted anything in the copy. `schema`: every table outside envdb's schema
// emptied, sequences restarted, large objects removed. Then the identity
// stamp is the target's. One transaction.
std::string hand_over_sql(const std::string& source, const std::string& target,
                          const std::string& environment_id, const std::string& organization_id,
                          bool schema_only);

// One statement, run beside a CREATE DATABASE ... TEMPLATE `template_db` by
// the backend `creator_pid` (ServerSession::create_from_template): while
// that backend holds its lock on the template (new sessions wait on it; the
// statement counts the ones already in, up to 5 s), the template's other
// sessions are ended. One row: how many.
std::string clear_template_sql(const std::string& template_db, int64_t creator_pid);

// Drops the old content a copy, reset or restore of `target` swapped out
// (retired_database_name), only while `target` is in place (as a run after a
// crash does before it starts). Returns whether it was there.
bool drop_retired(ServerSession& server, const std::string& target);

// The old content left on the local server by a copy, reset or restore whose
// job is no longer pending or running (a crash between its report and the
// drop): one row per database to drop, column `name`, for the environment
// databases of this catalog only (other control planes may share the server),
// and only while the database itself is in place. Run on the control plane.
std::string retired_leftovers_sql();

// Carries out a plan on the server (the caller converges the target's logins
// afterwards). Idempotent: a run after a crash starts again and converges.
// `progress` (when given) is told each step before it starts.
CopyOutcome carry_out_copy(const CopyPlan& plan, ServerSession& server,
                           const std::function<void(const std::string&)>& progress = nullptr);

}  // namespace envdb::postgres
