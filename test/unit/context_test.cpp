// set_active_environment, clear_active_environment, current_environment_id,
// current_organization_id, current_context.
#include <gtest/gtest.h>

#include "env_fixture.hpp"
#include "fixtures/variant_hosts.hpp"
#include "surface/api.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::keys_of;
using envdb::test::VariantHost;

namespace {

class Context : public test::EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    const Json org = organization("acme");
    org_id = org["organization"]["id"].get<std::string>();
    default_env = org["defaultEnvironment"];
    env_id = default_env["environment"]["id"].get<std::string>();
  }
  Json set(std::vector<Value> args) { return call_json("set_active_environment", std::move(args)); }
  Value current(const char* fn) { return host.call(fn); }
  void add_member(const std::string& env, const std::string& user, const std::string& role) {
    host.call("add_environment_member", {env, user, role});
  }

  std::string org_id, env_id;
  Json default_env;
};

}  // namespace

TEST_F(Context, StartsEmpty) {
  EXPECT_TRUE(is_null(current("current_environment_id")));
  EXPECT_TRUE(is_null(current("current_organization_id")));
  EXPECT_TRUE(is_null(current("current_context")));
  EXPECT_FALSE(host.context());
}

TEST_F(Context, SetWithMemberGivesTheTenantContextAndStoresIt) {
  add_member(env_id, "alice@example.com", "env_maker");
  const Value result =
      host.call("set_active_environment", {env_id, std::string("alice@example.com")});
  const Json ctx = Json::parse(std::get<std::string>(result));
  EXPECT_EQ(keys_of(ctx),
            (std::vector<std::string>{"environmentId", "organizationId", "organizationSlug",
                                      "environmentSlug", "envType", "databaseId", "databaseName",
                                      "driver", "region", "userId", "role"}));
  const Json& db = default_env["database"];
  EXPECT_EQ(ctx, Json({{"environmentId", env_id},
                       {"organizationId", org_id},
                       {"organizationSlug", "acme"},
                       {"environmentSlug", "default"},
                       {"envType", "default"},
                       {"databaseId", db["id"]},
                       {"databaseName", db["databaseName"]},
                       {"driver", "sqlite"},
                       {"region", "default"},
                       {"userId", "alice@example.com"},
                       {"role", "env_maker"}}));
  // The host keeps exactly what was returned; the current_* functions read it.
  ASSERT_TRUE(host.context());
  EXPECT_EQ(*host.context(), std::get<std::string>(result));
  EXPECT_EQ(std::get<std::string>(current("current_environment_id")), env_id);
  EXPECT_EQ(std::get<std::string>(current("current_organization_id")), org_id);
  EXPECT_EQ(Json::parse(std::get<std::string>(current("current_context"))), ctx);
}

TEST_F(Context, RoleFollowsTheMembership) {
  const std::string dev = environment(org_id, "dev")["environment"]["id"].get<std::string>();
  add_member(dev, "bob", "env_viewer");
  EXPECT_EQ(set({dev, std::string("bob")})["role"], "env_viewer");
  EXPECT_EQ(set({dev, std::string("bob")})["envType"], "development");
  EXPECT_EQ(set({dev, std::string("bob")})["environmentSlug"], "dev");
  add_member(dev, "bob", "env_admin");
  EXPECT_EQ(set({dev, std::string("bob")})["role"], "env_admin");
  // Switching environments replaces the context.
  add_member(env_id, "bob", "env_user");
  set({env_id, std::string("bob")});
  EXPECT_EQ(std::get<std::string>(current("current_environment_id")), env_id);
  EXPECT_EQ(Json::parse(*host.context())["role"], "env_user");
}

TEST_F(Context, NonMemberIsPermissionDenied) {
  add_member(env_id, "alice", "env_user");
  EXPECT_EQ(code_of([&] { set({env_id, std::string("mallory")}); }), Code::permission_denied);
  // A member of another environment is no member of this one.
  const std::string dev = environment(org_id, "dev")["environment"]["id"].get<std::string>();
  EXPECT_EQ(code_of([&] { set({dev, std::string("alice")}); }), Code::permission_denied);
  EXPECT_FALSE(host.context());
}

TEST_F(Context, OnlyAPrivilegedCallerSetsAContext) {
  const Json ctx = set({env_id});
  EXPECT_EQ(ctx["environmentId"], env_id);
  EXPECT_TRUE(ctx["userId"].is_null());
  EXPECT_TRUE(ctx["role"].is_null());
  EXPECT_EQ(keys_of(ctx).size(), 11u);

  VariantHost reader(host, {/*privileged=*/false});
  const std::string message =
      test::message_of([&] { reader.call("set_active_environment", {env_id}); });
  EXPECT_EQ(message.rfind("permission_denied: only envdb_admin and envdb_router", 0), 0u)
      << message;
  EXPECT_FALSE(reader.context());
  // Checked before the lookup: an unknown environment tells nothing more.
  EXPECT_EQ(code_of([&] { reader.call("set_active_environment", {std::string("nope")}); }),
            Code::permission_denied);
  // Naming a member does not help: a caller below the router cannot speak
  // for a user (it could name anyone's user id).
  add_member(env_id, "carol", "env_user");
  EXPECT_EQ(code_of([&] {
              reader.call("set_active_environment", {env_id, std::string("carol")});
            }),
            Code::permission_denied);
  EXPECT_FALSE(reader.context());
  EXPECT_EQ(set({env_id, std::string("carol")})["role"], "env_user");
}

TEST_F(Context, UnknownEnvironmentIsNotFound) {
  EXPECT_EQ(code_of([&] { set({std::string("no-such-env")}); }), Code::not_found);
  EXPECT_EQ(code_of([&] {
              set({std::string("no-such-env"), std::string("alice")});
            }),
            Code::not_found);
  const std::string message = test::message_of([&] { set({std::string("no-such-env")}); });
  EXPECT_EQ(message, "not_found: environment_id 'no-such-env' names no environment");
}

TEST_F(Context, EnvironmentsThatAreNotActiveAreConflict) {
  const std::string dev = environment(org_id, "dev")["environment"]["id"].get<std::string>();
  add_member(dev, "alice", "env_admin");
  host.call("set_environment_status", {dev, std::string("suspended")});
  EXPECT_EQ(code_of([&] { set({dev}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { set({dev, std::string("alice")}); }), Code::conflict);
  const std::string message = test::message_of([&] { set({dev}); });
  EXPECT_NE(message.find("is suspended"), std::string::npos) << message;
  host.call("set_environment_status", {dev, std::string("active")});
  EXPECT_EQ(set({dev, std::string("alice")})["environmentId"], dev);

  host.call("archive_environment", {dev});
  EXPECT_EQ(code_of([&] { set({dev}); }), Code::conflict);
  // Still provisioning (a turso environment waits for its job).
  const std::string turso =
      environment(org_id, "edge", "turso")["environment"]["id"].get<std::string>();
  EXPECT_EQ(code_of([&] { set({turso}); }), Code::conflict);
}

TEST_F(Context, AFailedSetKeepsThePreviousContext) {
  const Json first = set({env_id});
  const std::string dev = environment(org_id, "dev")["environment"]["id"].get<std::string>();
  host.call("set_environment_status", {dev, std::string("suspended")});
  EXPECT_EQ(code_of([&] { set({dev}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { set({std::string("nope")}); }), Code::not_found);
  EXPECT_EQ(code_of([&] { set({env_id, std::string("stranger")}); }), Code::permission_denied);
  ASSERT_TRUE(host.context());
  EXPECT_EQ(Json::parse(*host.context()), first);
}

TEST_F(Context, ClearForgetsTheContext) {
  set({env_id});
  EXPECT_TRUE(is_null(host.call("clear_active_environment")));
  EXPECT_FALSE(host.context());
  EXPECT_TRUE(is_null(current("current_environment_id")));
  EXPECT_TRUE(is_null(current("current_organization_id")));
  EXPECT_TRUE(is_null(current("current_context")));
  // Clearing twice is fine.
  EXPECT_TRUE(is_null(host.call("clear_active_environment")));
}

TEST_F(Context, BadArgumentsAreInvalidParameter) {
  EXPECT_EQ(code_of([&] { set({std::string("bad id")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { set({env_id, std::string("bad user")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { set({env_id, std::string(257, 'u')}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { set({int64_t{7}}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { set({}); }), Code::invalid_parameter);
  EXPECT_FALSE(host.context());
}

TEST_F(Context, SettingTheContextWritesNothing) {
  add_member(env_id, "alice", "env_user");
  const auto before = counts();
  VariantHost watched(host, {});
  watched.call("set_active_environment", {env_id, std::string("alice")});
  watched.call("current_context");
  watched.call("clear_active_environment");
  EXPECT_EQ(watched.store().writes(), std::vector<std::string>{});
  EXPECT_EQ(counts(), before);
}

TEST_F(Context, ANonObjectContextReadsAsNone) {
  host.set_context(std::string("not json"));
  EXPECT_TRUE(is_null(current("current_environment_id")));
  EXPECT_TRUE(is_null(current("current_context")));
  host.set_context(std::string("[1, 2]"));
  EXPECT_TRUE(is_null(current("current_organization_id")));
}

TEST_F(Context, FunctionTableRows) {
  for (const char* name :
       {"set_active_environment", "clear_active_environment", "current_environment_id",
        "current_organization_id", "current_context"}) {
    const api::Function* f = api::find(name);
    ASSERT_TRUE(f) << name;
    // Only the trusted router sets a context (speaks for a user); anyone may
    // read or clear it.
    EXPECT_EQ(f->roles, std::string(name) == "set_active_environment"
                            ? api::kAdmin | api::kRouter
                            : api::kAdmin | api::kRouter | api::kReader)
        << name;
    EXPECT_EQ(f->flags & (api::kPure | api::kWrites | api::kDataPlane), 0u) << name;
    EXPECT_TRUE(api::available_in(*f, "postgres")) << name;
    EXPECT_TRUE(api::available_in(*f, "sqlite")) << name;
  }
  const api::Function* set_fn = api::find("set_active_environment");
  ASSERT_EQ(set_fn->params.size(), 2u);
  EXPECT_STREQ(set_fn->params[0].name, "environment_id");
  EXPECT_EQ(set_fn->params[0].pg_default, nullptr);
  EXPECT_STREQ(set_fn->params[1].name, "user_id");
  EXPECT_STREQ(set_fn->params[1].pg_default, "NULL");
  EXPECT_EQ(set_fn->returns, api::Type::json);
  EXPECT_EQ(api::find("current_context")->returns, api::Type::json);
  EXPECT_EQ(api::find("current_environment_id")->returns, api::Type::text);
  EXPECT_EQ(api::find("clear_active_environment")->returns, api::Type::text);
}
