#include "context.hpp"

#include "errors.hpp"
#include "ids.hpp"
#include "json_bounds.hpp"
#include "members.hpp"

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

Value set_active_environment(api::Call& c) {
  const std::string environment_id = c.text("environment_id", 128);
  require_id("environment_id", environment_id);
  const auto user_id = c.opt_text("user_id", 256);
  if (user_id) {
    members::require_user_id("user_id", *user_id);
  } else if (!c.host.caller_is_privileged()) {
    // Checked before the lookup, so it tells nothing about the environment.
    fail(Code::permission_denied,
         "user_id is required: only envdb_admin and envdb_router may set an active environment "
         "without naming a user");
  }
  auto row = query_one(c.store, kContextSql,
                       {environment_id, user_id ? Value(*user_id) : null_value()});
  if (!row)
    fail(Code::not_found,
         "environment_id " + quote_value(environment_id) + " names no environment");
  const auto role = row->opt_text("role");
  if (user_id && !role)
    fail(Code::permission_denied, "user_id " + quote_value(*user_id) +
                                      " is not a member of environment " +
                                      quote_value(environment_id));
  const std::string status = row->text("status");
  if (status != "active")
    fail(Code::conflict, "environment_id " + quote_value(environment_id) + " is " + status +
                             "; only an active environment can be the active environment");
  const Json context{{"environmentId", environment_id},
                     {"organizationId", text_of(*row, "organization_id")},
                     {"organizationSlug", text_of(*row, "organization_slug")},
                     {"environmentSlug", text_of(*row, "slug")},
                     {"envType", text_of(*row, "env_type")},
                     {"databaseId", text_of(*row, "database_id")},
                     {"databaseName", text_of(*row, "database_name")},
                     {"driver", text_of(*row, "driver")},
                     {"region", text_of(*row, "region")},
                     {"userId", json_text(user_id)},
                     {"role", json_text(role)}};
  std::string text = context.dump();
  c.host.set_context(text);
  return text;
}

Value clear_active_environment(api::Call& c) {
  c.host.set_context(std::nullopt);
  return null_value();
}

Value text_key(api::Call& c, const char* key) {
  auto context = current(c.host);
  if (!context) return null_value();
  auto it = context->find(key);
  if (it == context->end() || !it->is_string()) return null_value();
  return it->get<std::string>();
}

Value current_environment_id(api::Call& c) { return text_key(c, "environmentId"); }
Value current_organization_id(api::Call& c) { return text_key(c, "organizationId"); }

Value current_context(api::Call& c) {
  auto context = current(c.host);
  if (!context) return null_value();
  return api::json_result(*context);
}

}  // namespace

std::optional<Json> current(Host& host) {
  auto text = host.context();
  if (!text || text->empty()) return std::nullopt;
  auto j = json_bounds::parse_quiet(*text);  // bounded: a forged deep context is no context
  if (!j || !j->is_object()) return std::nullopt;
  return j;
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
       kEveryone,
       "make an active environment this session's context (Postgres: until the transaction "
       "ends; SQLite: for the connection) and return it as a TenantContext; with user_id the "
       "user must be a member and role is theirs, without it only envdb_admin and envdb_router "
       "may call it and userId and role are NULL"},
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
