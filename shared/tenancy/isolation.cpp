#include "tenancy/isolation.hpp"

#include "core/errors.hpp"
#include "core/json_bounds.hpp"
#include "tenancy/permissions.hpp"

namespace envdb::isolation {

std::optional<Json> context_of(Host& host) {
  auto text = host.context();
  if (!text || text->empty()) return std::nullopt;
  auto j = json_bounds::parse_quiet(*text);  // bounded: a forged deep context is no context
  if (!j || !j->is_object()) return std::nullopt;
  return j;
}

std::optional<std::string> context_text(const std::optional<Json>& context, const char* key) {
  if (!context) return std::nullopt;
  auto it = context->find(key);
  if (it == context->end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::string no_such_environment(const std::string& environment_id) {
  return "environment_id " + quote_value(environment_id) + " names no environment";
}

void require_visible_environment(Host& host, Store& store, const std::string& environment_id) {
  if (host.caller_is_privileged()) return;
  const auto organization = context_text(context_of(host), "organizationId");
  if (!organization)
    fail(Code::permission_denied,
         "no active environment: this role reads only inside the context a router set with "
         "set_active_environment in the same transaction");
  auto row = query_one(store, "SELECT organization_id FROM envdb.sys_environment WHERE id = $1",
                       {environment_id});
  if (!row || row->opt_text("organization_id") != organization)
    fail(Code::not_found, no_such_environment(environment_id));
}

void require_scope_allowed(const std::optional<Json>& context, const std::string& environment_id,
                           const std::string& requested) {
  const auto user = context_text(context, "userId");
  if (!user) return;
  const auto active = context_text(context, "environmentId");
  if (active != environment_id)
    fail(Code::permission_denied, "environment_id " + quote_value(environment_id) +
                                      " is not the active environment of "
                                      "user " +
                                      quote_value(*user) +
                                      "; a user context resolves only its own environment");
  const auto role = context_text(context, "role");
  if (!role || !permissions::is_role(*role))
    fail(Code::permission_denied, "user " + quote_value(*user) + " has no role in environment " +
                                      quote_value(environment_id));
  const std::string allowed = permissions::scope_for_role(*role);
  if (!permissions::scope_covers(allowed, requested))
    fail(Code::permission_denied, "scope " + quote_value(requested) + " is more than role " +
                                      *role + " of user " + quote_value(*user) + " allows (" +
                                      allowed + ")");
}

}  // namespace envdb::isolation
