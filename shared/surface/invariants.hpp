// The invariant checker (namespace invariants): check([repair]) looks for what the catalog's own
// constraints cannot stop (rows left behind when triggers or foreign keys were
// bypassed, state outside the catalog that disagrees with it) and, with
// repair, fixes what is safe to fix.
//
//   kind                     what                                         repair
//   orphan_row               a catalog row whose parent row is missing     delete it (and the rows
//                            (or is itself an orphan)                      that hang off it); a
//                                                                          dangling rotated_from is
//                                                                          cleared instead
//   active_without_database  an active environment with no database row,  mark it failed
//                            or whose database the host says is missing
//   file_without_registry    SQLite host: a file in sqlite_data_dir that   temporary files: delete;
//                            is envdb's (env-*.db, env-*.db.tmp-*) with    environment files of
//                            this no sys_environment_database row               catalog: move into
//                                                                          <sqlite_data_dir>/unregistered/
//   credential_key_missing   a credential (not revoked) sealed under a     never (report only)
//                            key the keyring does not hold
//   stale_job                a running job claimed longer ago than         back to pending
//                            job_claim_timeout_seconds
//   invalid_row              a row every function refuses (row_rules: a    never (report only)
//                            database_name or database_url envdb never
//                            writes, a sqlite file outside sqlite_data_dir;
//                            json_bounds: JSON too deep or too large)
//   credential_unbound       a credential (not revoked) in envelope        never (report only;
//                            format 1, not bound to its database identity  rewrap_credentials)
//   server_unreachable,      Postgres host: the real servers (the local one  see servers.hpp:
//   logins database_missing, ...    and every registered host) against the catalog  disabled or
//   re-enabled,
//                            (servers.hpp has the kinds)                     memberships fixed,
//                            leftover
//                                                                            roles dropped
//   maintenance_without_job  an environment in maintenance that no         the status its job's
//                            pending or running job holds (tenancy/copy)   payload names, else
//                                                                          suspended
//
// Every repair writes an audit event (action check.repair); catalog repairs
// commit together or not at all.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"

namespace envdb::invariants {

// check(repair) -> {ok, repaired, findings: [{kind, table, id, detail, repaired}]}
Value check(api::Call& call);

// For hosts that can see sqlite-driver files: whether an environment's
// database file exists (database_url "file:<path>", else
// <sqlite_data_dir>/<database_name>.db). nullopt when the file system cannot
// tell (a permission error).
std::optional<bool> sqlite_file_exists(Host& host, const std::string& database_name,
                                       const std::optional<std::string>& database_url);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::invariants
