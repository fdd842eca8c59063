// Fail closed (docs/reference.md, "Who sees what"): what a caller may see and which
// credential scope it may take, decided from the session context.
//
// The model. Only the trusted router (envdb_router, envdb_admin, a
// superuser; in SQLite the connection, which owns its database) may set a
// context, and so speak for a user. A caller below that (envdb_reader)
// reads only inside the context the router set in the same transaction:
// with no context it gets no rows and no answers; with one, only the rows
// and answers of the context's organization. When the context names a user,
// resolve_environment hands out at most the scope that user's role maps to
// (permissions::scope_for_role).
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::isolation {

// The host's context as a JSON object, or nullopt when none is set (or the
// stored text is not a JSON object).
std::optional<Json> context_of(Host& host);

// A string member of the context, nullopt when absent or not a string.
std::optional<std::string> context_text(const std::optional<Json>& context, const char* key);

// For getters a reader may call. Privileged callers pass. Otherwise the
// caller needs a context (permission_denied, before any lookup, so it tells
// nothing), and `environment_id` must belong to the context's organization:
// an environment of another organization is not_found, worded exactly as a
// missing one.
void require_visible_environment(Host& host, Store& store, const std::string& environment_id);

// The sentence every getter uses for an environment it cannot name.
std::string no_such_environment(const std::string& environment_id);

// With a user context, the scope `requested` must be within what the user's
// role allows in the context's environment, and `environment_id` must be
// that environment; permission_denied otherwise. Without a user context it
// does nothing (who may resolve at all is the function's grant).
void require_scope_allowed(const std::optional<Json>& context, const std::string& environment_id,
                           const std::string& requested);

}  // namespace envdb::isolation
