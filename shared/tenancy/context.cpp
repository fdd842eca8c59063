#include "tenancy/context.hpp"

#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "core/json_bounds.hpp"
#include "tenancy/isolation.hpp"
#include "tenancy/members.hpp"

namespace envdb::context {

namespace {

using T = api::Type;

// The environment with its organization, database and (when $2 names a user)
// that user's membership: one lookup by primary key plus unique indexes.
const char* const kContextSql =
    "SELECT e.id, e.organization_id, o.slug AS organization_slug, e.slug, e.env_type, e.status, "
    "d.id AS database_id, d.database_name, d.driver, COALESCE(d.region, e.region) AS region, "
    "m.role FROM envdb.sys_environment e "
    "JOIN envdb.sys_organization o ON o.id = e.organization_id "
    "LEFT JOIN envdb.sys_environment_database d ON d.environment_id = e.id "
    "LEFT JOIN envdb.sys_environment_member m ON m.environment_id = e.id AND m.user_id = $2 "
    "WHERE e.id = $1";

Json text_of(const Row& r, const char* column) { return json_text(r.opt_text(column)); }

// The TenantContext of a kContextSql row.
Json context_json(const Row& row, const std::string& environment_id,
                  const std::optional<std::string>& user_id) {
  return Json{{"environmentId", environment_id},
              {"organizationId", text_of(row, "organization_id")},
              {"organizationSlug", text_of(row, "organization_slug")},
              {"environmentSlug", text_of(row, "slug")},
              {"envType", text_of(row, "env_type")},
              {"databaseId", text_of(row, "database_id")},
              {"databaseName", text_of(row, "database_name")},
              {"driver", text_of(row, "driver")},
              {"region", text_of(row, "region")},
              {"userId", json_text(user_id)},
              {"role", json_text(row.opt_text("role"))}};
}

Value set_active_environment(api::Call& c) {
  const std::string environment_id = c.text("environment_id", 128);
  require_id("environment_id", environment_id);
  const auto user_id = c.opt_text("user_id", 256);
  if (user_id) members::require_user_id("user_id", *user_id);
  // Who may speak for a user: only the trusted router. A lower role could
  // otherwise name any member's user_id and read or resolve as that user.
  // Checked before the lookup, so it tells nothing about the environment.
  if (!c.host.caller_is_privileged())
    fail(Code::permission_denied,
         "only envdb_admin and envdb_router may call set_active_environment; a reader reads "
         "inside the context the router set in the same transaction");
  auto row =
      query_one(c.store, kContextSql, {environment_id, user_id ? Value(*user_id) : null_value()});
  if (!row) fail(Code::not_found, isolation::no_such_environment(environment_id));
  const auto role = row->opt_text("role");
  if (user_id && !role)
    fail(Code::permission_denied, "user_id " + quote_value(*user_id) +
                                      " is not a member of environment " +
                                      quote_value(environment_id));
  const std::string status = row->text("status");
  if (status != "active")
    fail(Code::conflict, "environment_id " + quote_value(environment_id) + " is " + status +
                             "; only an active environment can be the active environment");
  if (!c.host.context_outlives_statement())
    fail(Code::conflict,
         "set_active_environment must run inside a transaction block (BEGIN ... COMMIT): the "
         "context lasts until the transaction ends, so in autocommit the next statement would "
         "run with none");
  std::string text = context_json(*row, environment_id, user_id).dump();
  c.host.set_context(text);
  return text;
}

Value clear_active_environment(api::Call& c) {
  c.host.set_context(std::nullopt);
  return null_value();
}

Value text_key(api::Call& c, const char* key) {
  auto text = isolation::context_text(current(c.host), key);
  return text ? Value(*text) : null_value();
}

Value current_environment_id(api::Call& c) { return text_key(c, "environmentId"); }
Value current_organization_id(api::Call& c) { return text_key(c, "organizationId"); }

Value current_context(api::Call& c) {
  auto context = current(c.host);
  if (!context) return null_value();
  return api::json_result(*context);
}

}  // namespace

std::optional<Json> current(Host& host) { return isolation::context_of(host); }

void refresh(Host& host) {
  const auto context = isolation::context_of(host);
  if (!context) {
    if (host.context()) host.set_context(std::nullopt);  // text that is not a context
    return;
  }
  const auto environment_id = isolation::context_text(context, "environmentId");
  const auto user_id = isolation::context_text(context, "userId");
  std::optional<Row> row;
  try {
    if (environment_id)
      row = query_one(host.store(), kContextSql,
                      {*environment_id, user_id ? Value(*user_id) : null_value()});
  } catch (const std::exception&) {
    row.reset();  // no catalog to ask (not initialised, unreadable): fail closed
  }
  if (!row || row->text("status") != "active" || (user_id && !row->opt_text("role"))) {
    host.set_context(std::nullopt);
    return;
  }
  std::string text = context_json(*row, *environment_id, user_id).dump();
  if (text != context->dump()) host.set_context(text);
}

std::vector<api::Function> functions() {
  using namespace api;
  constexpr unsigned kEveryone = kAdmin | kRouter | kReader;
  return {
      {"set_active_environment",
       {{"environment_id", T::text, nullptr}, {"user_id", T::text, "NULL"}},
       T::json,
       set_active_environment,
       0,
       kAdmin | kRouter,
       "make an active environment this session's context (Postgres: until the transaction "
       "ends, and only inside a transaction block; SQLite: for the connection) and return it as "
       "a TenantContext; with user_id the user must be a member and role is theirs (it limits "
       "resolve_environment's scope), without it userId and role are NULL"},
      {"clear_active_environment",
       {},
       T::text,
       clear_active_environment,
       0,
       kEveryone,
       "forget the session's active environment; returns NULL"},
      {"current_environment_id",
       {},
       T::text,
       current_environment_id,
       0,
       kEveryone,
       "the active environment's id, NULL when none is set"},
      {"current_organization_id",
       {},
       T::text,
       current_organization_id,
       0,
       kEveryone,
       "the organization of the active environment, NULL when none is set"},
      {"current_context",
       {},
       T::json,
       current_context,
       0,
       kEveryone,
       "the session's TenantContext, NULL when none is set"},
  };
}

}  // namespace envdb::context
