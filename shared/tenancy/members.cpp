#include "tenancy/members.hpp"

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "tenancy/isolation.hpp"
#include "tenancy/permissions.hpp"

namespace envdb::members {

namespace {

using T = api::Type;

constexpr size_t kMaxUserId = 256;

std::string environment_arg(api::Call& c) {
  std::string id = c.text("environment_id", 128);
  require_id("environment_id", id);
  return id;
}

std::string user_arg(api::Call& c) {
  std::string id = c.text("user_id", kMaxUserId);
  require_user_id("user_id", id);
  return id;
}

Row load_member(Store& store, const std::string& environment_id, const std::string& user_id) {
  auto row = query_one(store,
                       std::string("SELECT ") + records::kMemberColumns +
                           " FROM envdb.sys_environment_member "
                           "WHERE environment_id = $1 AND user_id = $2",
                       {environment_id, user_id});
  if (!row) throw Error(Code::internal, "member of environment " + environment_id + " vanished");
  return std::move(*row);
}

// A non-member's answer: not_found when the environment itself is unknown.
void require_environment(Store& store, const std::string& environment_id) {
  if (!query_one(store, "SELECT 1 AS found FROM envdb.sys_environment WHERE id = $1",
                 {environment_id}))
    fail(Code::not_found,
         "environment_id " + quote_value(environment_id) + " names no environment");
}

// The environment a membership change is about. In Postgres its row is held
// FOR SHARE until the transaction ends, so an archive cannot slip in between
// the status check and the write.
Row lock_environment(Store& store, const std::string& environment_id) {
  std::string sql = "SELECT id, organization_id, status FROM envdb.sys_environment WHERE id = $1";
  if (store.dialect() == Dialect::postgres) sql += " FOR SHARE";
  auto row = query_one(store, sql, {environment_id});
  if (!row)
    fail(Code::not_found,
         "environment_id " + quote_value(environment_id) + " names no environment");
  return std::move(*row);
}

audit::Event member_event(const Row& environment, const char* action, const std::string& user_id) {
  audit::Event e;
  e.action = action;
  e.organization_id = environment.text("organization_id");
  e.environment_id = environment.text("id");
  e.subject_type = "member";
  e.subject_id = user_id;
  return e;
}

Value add(api::Call& c) {
  const std::string environment_id = environment_arg(c);
  const std::string user_id = user_arg(c);
  const std::string role = c.text("role", 64);
  permissions::require_role("role", role);

  Store& store = c.store;
  Atomic tx(store);
  const Row environment = lock_environment(store, environment_id);
  if (environment.text("status") == "archived")
    fail(Code::conflict, "environment " + quote_value(environment_id) + " is archived");
  const auto previous = role_of(store, environment_id, user_id);
  if (previous != role) {
    const std::string now = now_iso();
    // An upsert, so two concurrent adds of one user cannot collide.
    execute(store,
            "INSERT INTO envdb.sys_environment_member (id, environment_id, organization_id, "
            "user_id, role, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $6::timestamptz) "
            "ON CONFLICT (environment_id, user_id) DO UPDATE SET role = excluded.role, "
            "updated_at = excluded.updated_at",
            {new_uuid_v7(), environment_id, environment.text("organization_id"), user_id, role,
             now});
    audit::Event e =
        member_event(environment, previous ? "member.change_role" : "member.add", user_id);
    e.detail = Json{{"userId", user_id}, {"role", role}, {"previousRole", json_text(previous)}};
    audit::record(c.host, e);
  }
  Json member = records::member_json(load_member(store, environment_id, user_id));
  tx.done();
  return api::json_result(Json{{"member", member}});
}

Value remove(api::Call& c) {
  const std::string environment_id = environment_arg(c);
  const std::string user_id = user_arg(c);
  Store& store = c.store;
  Atomic tx(store);
  const Row environment = lock_environment(store, environment_id);
  auto removed = query(store,
                       "DELETE FROM envdb.sys_environment_member "
                       "WHERE environment_id = $1 AND user_id = $2 RETURNING role",
                       {environment_id, user_id});
  if (!removed.empty()) {
    audit::Event e = member_event(environment, "member.remove", user_id);
    e.detail = Json{{"userId", user_id}, {"role", removed.front().text("role")}};
    audit::record(c.host, e);
  }
  tx.done();
  return !removed.empty();
}

Value role(api::Call& c) {
  const std::string environment_id = environment_arg(c);
  const std::string user_id = user_arg(c);
  isolation::require_visible_environment(c.host, c.store, environment_id);
  auto r = role_of(c.store, environment_id, user_id);
  if (r) return *r;
  require_environment(c.store, environment_id);
  return null_value();
}

Value check_access(api::Call& c) {
  const std::string environment_id = environment_arg(c);
  const std::string user_id = user_arg(c);
  const std::string permission = c.text("permission", 64);
  permissions::require_permission("permission", permission);
  isolation::require_visible_environment(c.host, c.store, environment_id);
  auto r = role_of(c.store, environment_id, user_id);
  if (r) return permissions::allows(*r, permission);
  require_environment(c.store, environment_id);
  return false;
}

bool user_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == ':' || c == '@' || c == '|' || c == '+' || c == '-';
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"add_environment_member",
       {{"environment_id", T::text, nullptr},
        {"user_id", T::text, nullptr},
        {"role", T::text, nullptr}},
       T::json,
       add,
       kWrites,
       kAdmin,
       "add a user to an environment with a role (env_admin, env_maker, env_user, env_viewer), or "
       "change the member's role; user ids: letters, digits and _.:@|+- , 1 to 256, starting with "
       "a letter or digit"},
      {"remove_environment_member",
       {{"environment_id", T::text, nullptr}, {"user_id", T::text, nullptr}},
       T::boolean,
       remove,
       kWrites,
       kAdmin,
       "remove a user from an environment; false when the user was not a member"},
      {"environment_role",
       {{"environment_id", T::text, nullptr}, {"user_id", T::text, nullptr}},
       T::text,
       role,
       0,
       kAdmin | kRouter | kReader,
       "the user's role in the environment, NULL when not a member; envdb_reader: only inside "
       "the active organization"},
      {"check_environment_access",
       {{"environment_id", T::text, nullptr},
        {"user_id", T::text, nullptr},
        {"permission", T::text, nullptr}},
       T::boolean,
       check_access,
       0,
       kAdmin | kRouter | kReader,
       "whether the user's role grants the permission (read, write, deploy, manage_members, "
       "manage_credentials, manage_environment); false for non-members; envdb_reader: only "
       "inside the active organization"},
  };
}

std::optional<std::string> role_of(Store& store, const std::string& environment_id,
                                   const std::string& user_id) {
  auto row = query_one(store,
                       "SELECT role FROM envdb.sys_environment_member "
                       "WHERE environment_id = $1 AND user_id = $2",
                       {environment_id, user_id});
  if (!row) return std::nullopt;
  return row->text("role");
}

std::string scope_for_role(const std::string& role) { return permissions::scope_for_role(role); }

bool is_valid_user_id(const std::string& user_id) {
  if (user_id.empty() || user_id.size() > kMaxUserId) return false;
  const char first = user_id[0];
  if (!((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z') ||
        (first >= '0' && first <= '9')))
    return false;
  for (char ch : user_id)
    if (!user_id_char(ch)) return false;
  return true;
}

void require_user_id(const std::string& field, const std::string& user_id) {
  if (!is_valid_user_id(user_id))
    fail(Code::invalid_parameter,
         field + " " + quote_value(user_id) +
             " is not a valid user id (letters, digits and _ . : @ | + -, at most 256, starting "
             "with a letter or digit)");
}

}  // namespace envdb::members
