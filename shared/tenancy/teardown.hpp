// teardown: the way back. Dropping an archived environment's database (the
// one drop path, used by drop_environment_database and
// deprovision_organization), releasing an archived environment's slug so a
// new environment can take it, and deprovision_organization, which archives
// every environment of an organization (the default one too), drops their
// databases and tombstones the organization so its slug can be provisioned
// again. Rows are never deleted: the catalog and the audit trail keep the
// history.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/store.hpp"

namespace envdb::teardown {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

Value deprovision_organization(api::Call& call);

// The database row records its drop (once): the sqlite driver's file is gone,
// or a worker completed a drop_database job. The environment stays archived.
// Its hostnames are released, so another environment can take them.
void mark_dropped(Store& store, const std::string& database_id, const std::string& now);

// Drops the database of an archived environment whose checks have passed
// (archived, not dropped, no drop under way, the grace respected or skipped):
// sqlite: the file now, then the row records it (a failure in between leaves
// "not dropped" and a second call converges); postgres and turso: a
// drop_database job, whose completion records it. Audits
// environment.drop_database. Returns the job's id, if one was queued.
std::optional<std::string> drop_database(Host& host, const Row& env, const Row& db, bool force,
                                         const std::string& archived_at);

// Archives one environment whose lifecycle checks the caller has made, in the
// caller's transaction: pending work cancelled (cancel_reason), every
// credential revoked, postgres logins disabled and turso tokens invalidated
// through their jobs, status archived. Audits environment.archive with
// `detail` plus from and revokedCredentials. Returns how many it revoked.
int64_t archive(Host& host, const Row& environment, Json detail, const std::string& cancel_reason);

// The slug an archived environment keeps once a new environment takes its
// slug: "archived-" and its id's 32 hex digits (unique, and a valid slug).
std::string archived_slug(const std::string& environment_id);
// The slug a deprovisioned organization keeps: "deprovisioned-" and its id's
// 32 hex digits.
std::string deprovisioned_slug(const std::string& organization_id);

// An archived environment does not hold its slug: renames it to
// archived_slug(id) (audited as environment.release_slug, with the old slug)
// so that `slug` can name a new environment of the organization.
void release_slug(Host& host, const Row& env);

}  // namespace envdb::teardown
