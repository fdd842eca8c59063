// Environment members and the role -> permission table.
#include "tenancy/members.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "core/ids.hpp"
#include "tenancy/permissions.hpp"
#include "test_host.hpp"

using namespace envdb;

namespace {

using test::contains;
using test::error_of;

struct Env {
  std::string organization_id, environment_id;
};

Env make_environment(test::MemoryHost& h, const std::string& status = "active") {
  Env e{new_uuid_v7(), new_uuid_v7()};
  execute(h.store(), "INSERT INTO envdb.sys_organization (id, slug, name) VALUES ($1, $2, 'Org')",
          {e.organization_id, "o" + e.organization_id.substr(24)});
  execute(h.store(),
          "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "status) VALUES ($1, $2, 'dev', 'Dev', 'development', 'r1', $3)",
          {e.environment_id, e.organization_id, status});
  return e;
}

std::string state(test::MemoryHost& h) {
  std::string out;
  for (const Row& r : query(h.store(),
                            "SELECT environment_id, user_id, role, organization_id FROM "
                            "envdb.sys_environment_member ORDER BY environment_id, user_id"))
    out += r.text("environment_id") + "/" + r.text("user_id") + "=" + r.text("role") + "@" +
           r.text("organization_id") + "\n";
  out += "audit=" + query_one(h.store(), "SELECT count(*) AS n FROM envdb.sys_audit_event")
                        ->opt_text("n")
                        .value_or("?");
  return out;
}

Json add(test::MemoryHost& h, const std::string& env, const std::string& user,
         const std::string& role) {
  return Json::parse(h.call_text("add_environment_member", {env, user, role}))["member"];
}

bool check(test::MemoryHost& h, const std::string& env, const std::string& user,
           const std::string& permission) {
  return std::get<bool>(h.call("check_environment_access", {env, user, permission}));
}

const std::vector<std::string> kRoles = {"env_admin", "env_maker", "env_user", "env_viewer"};
const std::vector<std::string> kPermissions = {
    "read", "write", "deploy", "manage_members", "manage_credentials", "manage_environment"};

}  // namespace

TEST(Members, AddUpsertsTheRole) {
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  Json m = add(h, env.environment_id, "user_1", "env_viewer");
  EXPECT_EQ(m["environmentId"], env.environment_id);
  EXPECT_EQ(m["organizationId"], env.organization_id);
  EXPECT_EQ(m["userId"], "user_1");
  EXPECT_EQ(m["role"], "env_viewer");
  EXPECT_FALSE(m["createdAt"].is_null());

  Json changed = add(h, env.environment_id, "user_1", "env_admin");
  EXPECT_EQ(changed["id"], m["id"]);
  EXPECT_EQ(changed["role"], "env_admin");
  EXPECT_EQ(changed["createdAt"], m["createdAt"]);
  EXPECT_EQ(
      query_one(h.store(), "SELECT count(*) AS n FROM envdb.sys_environment_member")->integer("n"),
      1);
  EXPECT_EQ(h.call_text("environment_role", {env.environment_id, std::string("user_1")}),
            "env_admin");

  // The same role again writes nothing.
  const std::string before = state(h);
  add(h, env.environment_id, "user_1", "env_admin");
  EXPECT_EQ(state(h), before);

  auto actions = query(h.store(), "SELECT action FROM envdb.sys_audit_event ORDER BY occurred_at");
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].text("action"), "member.add");
  EXPECT_EQ(actions[1].text("action"), "member.change_role");
}

TEST(Members, UserIdsFromAuthSystemsAreAccepted) {
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  for (const std::string& user :
       {std::string("auth0|5f7c8ec7c33c6c004bbafe82"), std::string("jane.doe+dev@example.com"),
        std::string("google-oauth2|1234567890"), std::string("urn:user:42"), std::string(256, 'u')})
    EXPECT_EQ(add(h, env.environment_id, user, "env_user")["userId"], user);

  const std::string before = state(h);
  for (const std::string& user :
       {std::string(), std::string("-lead"), std::string("a b"), std::string("x/y"),
        std::string(257, 'u'), std::string("semi;colon")}) {
    EXPECT_EQ(error_of([&] { add(h, env.environment_id, user, "env_user"); }).code(),
              Code::invalid_parameter)
        << user;
    EXPECT_EQ(error_of([&] {
                h.call("environment_role", {env.environment_id, user});
              }).code(),
              Code::invalid_parameter)
        << user;
  }
  EXPECT_EQ(state(h), before);
  EXPECT_TRUE(members::is_valid_user_id("Z"));
  EXPECT_FALSE(members::is_valid_user_id("_z"));
}

TEST(Members, RefusalsWriteNothing) {
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  const Env archived = make_environment(h, "archived");
  add(h, env.environment_id, "u1", "env_user");
  const std::string before = state(h);

  Error e = error_of([&] { add(h, archived.environment_id, "u1", "env_user"); });
  EXPECT_EQ(e.code(), Code::conflict);
  EXPECT_EQ(error_of([&] { add(h, env.environment_id, "u1", "owner"); }).code(),
            Code::invalid_parameter);
  EXPECT_EQ(error_of([&] { add(h, "no-such-env", "u1", "env_user"); }).code(), Code::not_found);
  EXPECT_EQ(error_of([&] { add(h, "bad id", "u1", "env_user"); }).code(), Code::invalid_parameter);
  EXPECT_EQ(error_of([&] {
              h.call("add_environment_member", {env.environment_id, std::string("u1")});
            }).code(),
            Code::invalid_parameter);
  EXPECT_EQ(state(h), before);

  // A failure after the upsert rolls it back.
  h.store().exec(
      "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.sys_audit_event "
      "BEGIN SELECT RAISE(ABORT, 'conflict: injected failure'); END");
  EXPECT_EQ(error_of([&] { add(h, env.environment_id, "u1", "env_admin"); }).code(),
            Code::conflict);
  EXPECT_EQ(error_of([&] { add(h, env.environment_id, "u2", "env_admin"); }).code(),
            Code::conflict);
  EXPECT_EQ(error_of([&] {
              h.call("remove_environment_member", {env.environment_id, std::string("u1")});
            }).code(),
            Code::conflict);
  h.store().exec("DROP TRIGGER refuse_audit");
  EXPECT_EQ(state(h), before);
}

TEST(Members, RemoveAndRole) {
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  const Env other = make_environment(h);
  add(h, env.environment_id, "u1", "env_maker");
  add(h, other.environment_id, "u1", "env_viewer");

  EXPECT_EQ(members::role_of(h.store(), env.environment_id, "u1"), "env_maker");
  EXPECT_EQ(members::role_of(h.store(), other.environment_id, "u1"), "env_viewer");
  EXPECT_EQ(members::role_of(h.store(), env.environment_id, "u2"), std::nullopt);
  EXPECT_TRUE(is_null(h.call("environment_role", {env.environment_id, std::string("u2")})));
  EXPECT_EQ(error_of([&] {
              h.call("environment_role", {std::string("no-such-env"), std::string("u1")});
            }).code(),
            Code::not_found);

  EXPECT_TRUE(
      std::get<bool>(h.call("remove_environment_member", {env.environment_id, std::string("u1")})));
  EXPECT_FALSE(
      std::get<bool>(h.call("remove_environment_member", {env.environment_id, std::string("u1")})));
  EXPECT_TRUE(is_null(h.call("environment_role", {env.environment_id, std::string("u1")})));
  EXPECT_EQ(h.call_text("environment_role", {other.environment_id, std::string("u1")}),
            "env_viewer");
  EXPECT_EQ(error_of([&] {
              h.call("remove_environment_member", {std::string("no-such-env"), std::string("u1")});
            }).code(),
            Code::not_found);

  // Removing access from an archived environment is allowed; adding is not.
  execute(h.store(), "UPDATE envdb.sys_environment SET status = 'archived' WHERE id = $1",
          {other.environment_id});
  EXPECT_TRUE(std::get<bool>(
      h.call("remove_environment_member", {other.environment_id, std::string("u1")})));
}

TEST(Members, PermissionTableForEveryRoleAndPermission) {
  const std::map<std::string, std::vector<std::string>> grants = {
      {"env_admin",
       {"read", "write", "deploy", "manage_members", "manage_credentials", "manage_environment"}},
      {"env_maker", {"read", "write", "deploy"}},
      {"env_user", {"read", "write"}},
      {"env_viewer", {"read"}},
  };
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  for (const std::string& role : kRoles) add(h, env.environment_id, "user-" + role, role);

  EXPECT_EQ(permissions::roles(), kRoles);
  EXPECT_EQ(permissions::permissions(), kPermissions);
  for (const std::string& role : kRoles) {
    const auto& granted = grants.at(role);
    for (const std::string& permission : kPermissions) {
      const bool expected = std::find(granted.begin(), granted.end(), permission) != granted.end();
      EXPECT_EQ(permissions::allows(role, permission), expected) << role << " " << permission;
      EXPECT_EQ(check(h, env.environment_id, "user-" + role, permission), expected)
          << role << " " << permission;
    }
  }
  // Non-members have no permission at all.
  for (const std::string& permission : kPermissions)
    EXPECT_FALSE(check(h, env.environment_id, "stranger", permission)) << permission;
}

TEST(Members, AccessCheckRefusesUnknownPermissionsAndEnvironments) {
  test::MemoryHost h;
  h.call("init");
  const Env env = make_environment(h);
  add(h, env.environment_id, "u1", "env_admin");
  for (const std::string& user : {std::string("u1"), std::string("stranger")}) {
    Error e = error_of([&] { check(h, env.environment_id, user, "delete_everything"); });
    EXPECT_EQ(e.code(), Code::invalid_parameter);
    EXPECT_TRUE(std::string(e.what()).find("'delete_everything'") != std::string::npos) << e.what();
  }
  EXPECT_EQ(error_of([&] { check(h, "no-such-env", "u1", "read"); }).code(), Code::not_found);
  EXPECT_EQ(error_of([&] { check(h, "no-such-env", "u1", "fly"); }).code(),
            Code::invalid_parameter);
}

TEST(Members, RolesMapToCredentialScopes) {
  EXPECT_EQ(members::scope_for_role("env_admin"), "admin");
  EXPECT_EQ(members::scope_for_role("env_maker"), "readwrite");
  EXPECT_EQ(members::scope_for_role("env_user"), "readwrite");
  EXPECT_EQ(members::scope_for_role("env_viewer"), "readonly");
  EXPECT_EQ(error_of([] { members::scope_for_role("owner"); }).code(), Code::invalid_parameter);
  EXPECT_EQ(error_of([] { permissions::allows("owner", "read"); }).code(), Code::invalid_parameter);
}

TEST(Members, FunctionTableRowsAndRoles) {
  using namespace api;
  EXPECT_EQ(find("add_environment_member")->roles, unsigned{kAdmin});
  EXPECT_EQ(find("remove_environment_member")->roles, unsigned{kAdmin});
  EXPECT_EQ(find("environment_role")->roles, unsigned{kAdmin | kRouter | kReader});
  EXPECT_EQ(find("check_environment_access")->roles, unsigned{kAdmin | kRouter | kReader});
  EXPECT_EQ(find("remove_environment_member")->returns, Type::boolean);
  EXPECT_EQ(find("check_environment_access")->returns, Type::boolean);
  EXPECT_EQ(find("environment_role")->returns, Type::text);
  std::vector<std::string> params;
  for (auto& p : find("check_environment_access")->params) params.push_back(p.name);
  EXPECT_EQ(params, (std::vector<std::string>{"environment_id", "user_id", "permission"}));
  for (const char* name : {"add_environment_member", "remove_environment_member",
                           "environment_role", "check_environment_access"})
    EXPECT_FALSE(find(name)->flags & kPure) << name;
}
