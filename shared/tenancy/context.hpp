// The session context a request router works in (docs/design.md#context-and-routing):
// which environment is active, the organization that owns it,
// where its database lives and, when a user is named, that user's role.
//
//   set_active_environment(environment_id [, user_id]) -> TenantContext
//   clear_active_environment() -> NULL
//   current_environment_id(), current_organization_id() -> text or NULL
//   current_context() -> TenantContext or NULL
//
// TenantContext: {environmentId, organizationId, organizationSlug,
// environmentSlug, envType, databaseId, databaseName, driver, region, userId,
// role}. The host keeps it as JSON text (Host::context): Postgres binds it to
// the current transaction in a superuser-only setting, SQLite to the
// connection. Setting it is not a catalog change, so nothing is audited.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"

namespace envdb::context {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// The host's context as a JSON object, or nullopt when none is set (or the
// stored text is not a JSON object).
std::optional<Json> current(Host& host);

// Brings a context that outlives its transaction (SQLite: the connection's)
// up to date with the catalog: cleared when the environment is gone or no
// longer active, or its user is no longer a member; the role follows a role
// change. A catalog that cannot be read clears it too (fail closed).
void refresh(Host& host);

}  // namespace envdb::context
