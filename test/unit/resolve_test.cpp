// resolve_environment: the router's hot path.
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "env_fixture.hpp"
#include "fixtures/variant_hosts.hpp"
#include "surface/api.hpp"
#include "tenancy/resolve.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::keys_of;
using envdb::test::VariantHost;

namespace {

class Router : public test::EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    const Json org = organization("acme");
    org_id = org["organization"]["id"].get<std::string>();
    const Json& d = org["defaultEnvironment"];
    env_id = d["environment"]["id"].get<std::string>();
    database = d["database"];
    database_id = database["id"].get<std::string>();
    for (auto& c : d["credentials"])
      credential_ids[c["scope"].get<std::string>()] = c["id"].get<std::string>();
  }

  Json resolve(std::vector<Value> args) {
    return call_json("resolve_environment", std::move(args));
  }
  std::string reveal(const std::string& credential_id) {
    return host.call_text("reveal_credential", {credential_id});
  }
  std::optional<std::string> last_accessed(const std::string& db) {
    return query_one(host.store(),
                     "SELECT last_accessed_at FROM envdb.sys_environment_database WHERE id = $1",
                     {db})
        ->opt_text("last_accessed_at");
  }
  void set_last_accessed(const Value& when) {
    execute(host.store(),
            "UPDATE envdb.sys_environment_database SET last_accessed_at = $2 WHERE id = $1",
            {database_id, when});
  }

  std::string org_id, env_id, database_id;
  Json database;
  std::map<std::string, std::string> credential_ids;
};

}  // namespace

TEST_F(Router, ResolvesTheActiveCredentialOfEachScope) {
  const Json r = resolve({env_id});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"environmentId", "organizationId", "envType",
                                                  "status", "driver", "databaseName", "databaseUrl",
                                                  "region", "maxPageCount", "credential"}));
  EXPECT_TRUE(r["maxPageCount"].is_null());  // no storage limit
  EXPECT_EQ(keys_of(r["credential"]),
            (std::vector<std::string>{"id", "scope", "username", "token", "expiresAt"}));
  EXPECT_EQ(r["environmentId"], env_id);
  EXPECT_EQ(r["organizationId"], org_id);
  EXPECT_EQ(r["envType"], "default");
  EXPECT_EQ(r["status"], "active");
  EXPECT_EQ(r["driver"], "sqlite");
  EXPECT_EQ(r["databaseName"], database["databaseName"]);
  EXPECT_EQ(r["databaseUrl"], database["databaseUrl"]);
  EXPECT_EQ(r["region"], "default");
  // Default scope: readwrite.
  EXPECT_EQ(r["credential"]["id"], credential_ids.at("readwrite"));
  EXPECT_EQ(r["credential"]["scope"], "readwrite");
  EXPECT_TRUE(r["credential"]["username"].is_null());
  EXPECT_TRUE(r["credential"]["expiresAt"].is_null());
  EXPECT_EQ(r["credential"]["token"], reveal(credential_ids.at("readwrite")));
  EXPECT_EQ(r["credential"]["token"].get<std::string>().size(), 43u);

  const Json admin = resolve({env_id, std::string("admin")});
  EXPECT_EQ(admin["credential"]["id"], credential_ids.at("admin"));
  EXPECT_EQ(admin["credential"]["scope"], "admin");
  EXPECT_EQ(admin["credential"]["token"], reveal(credential_ids.at("admin")));
  EXPECT_NE(admin["credential"]["token"], r["credential"]["token"]);
  EXPECT_EQ(resolve({env_id, std::string("readwrite")}), r);
}

TEST_F(Router, NoCredentialOfTheScopeIsNotFoundUntilOneIsIssued) {
  // Every environment starts with a readonly credential; without one active,
  // that scope is not_found.
  host.call("revoke_credential", {credential_ids.at("readonly")});
  const std::string message = test::message_of([&] { resolve({env_id, std::string("readonly")}); });
  EXPECT_EQ(message,
            "not_found: environment_id '" + env_id + "' has no active readonly credential");
  const Json issued = call_json("issue_credential", {database_id, std::string("readonly"),
                                                     std::string("viewer-token")});
  const Json r = resolve({env_id, std::string("readonly")});
  EXPECT_EQ(r["credential"]["id"], issued["credential"]["id"]);
  EXPECT_EQ(r["credential"]["token"], "viewer-token");
}

TEST_F(Router, AfterRotationTheNewTokenIsResolved) {
  const Json before = resolve({env_id});
  const Json rotated = call_json("rotate_credential", {database_id, std::string("readwrite"),
                                                       null_value(), std::string("fresh-token")});
  const Json after = resolve({env_id});
  EXPECT_EQ(after["credential"]["id"], rotated["credential"]["id"]);
  EXPECT_NE(after["credential"]["id"], before["credential"]["id"]);
  EXPECT_EQ(after["credential"]["token"], "fresh-token");
  // The previous one is rotating: still valid, never resolved.
  EXPECT_EQ(rotated["previous"]["status"], "rotating");
  EXPECT_EQ(reveal(before["credential"]["id"]), before["credential"]["token"]);
  // Revoking the active one leaves nothing to resolve for that scope.
  host.call("revoke_credential", {after["credential"]["id"].get<std::string>()});
  EXPECT_EQ(code_of([&] { resolve({env_id}); }), Code::not_found);
  EXPECT_EQ(resolve({env_id, std::string("admin")})["credential"]["scope"], "admin");
}

TEST_F(Router, EnvironmentsThatAreNotActiveAreRefused) {
  const std::string dev = environment(org_id, "dev")["environment"]["id"].get<std::string>();
  EXPECT_EQ(resolve({dev})["environmentId"], dev);
  host.call("set_environment_status", {dev, std::string("suspended")});
  EXPECT_EQ(code_of([&] { resolve({dev}); }), Code::conflict);
  EXPECT_EQ(test::message_of([&] { resolve({dev}); }),
            "conflict: environment_id '" + dev +
                "' is suspended; only an active environment is resolved");
  host.call("set_environment_status", {dev, std::string("active")});
  EXPECT_EQ(resolve({dev})["status"], "active");
  host.call("archive_environment", {dev});
  EXPECT_EQ(code_of([&] { resolve({dev}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { resolve({dev, std::string("admin")}); }), Code::conflict);
  // Provisioning (a postgres database waiting for its job) and failed.
  const std::string pg =
      environment(org_id, "pg", "postgres")["environment"]["id"].get<std::string>();
  EXPECT_EQ(code_of([&] { resolve({pg}); }), Code::conflict);
  host.call("set_environment_status", {pg, std::string("failed")});
  EXPECT_EQ(code_of([&] { resolve({pg}); }), Code::conflict);
}

TEST_F(Router, UnknownEnvironmentAndBadArguments) {
  EXPECT_EQ(test::message_of([&] { resolve({std::string("missing")}); }),
            "not_found: environment_id 'missing' names no environment");
  EXPECT_EQ(code_of([&] { resolve({std::string("bad id")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { resolve({env_id, std::string("root")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { resolve({env_id, std::string("")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { resolve({int64_t{1}}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { resolve({}); }), Code::invalid_parameter);
  // A NULL scope is the default.
  EXPECT_EQ(resolve({env_id, null_value()})["credential"]["scope"], "readwrite");
}

TEST_F(Router, ExpiredCredentialsAreNotReturned) {
  const std::string id = credential_ids.at("readwrite");
  const std::string token = reveal(id);
  const std::string future = iso_from_ms(now_ms() + 3600 * 1000);
  execute(host.store(), "UPDATE envdb.sys_database_credential SET expires_at = $2 WHERE id = $1",
          {id, future});
  EXPECT_EQ(resolve({env_id})["credential"]["expiresAt"], future);
  const std::string past = iso_from_ms(now_ms() - 1000);
  execute(host.store(), "UPDATE envdb.sys_database_credential SET expires_at = $2 WHERE id = $1",
          {id, past});
  EXPECT_EQ(code_of([&] { resolve({env_id}); }), Code::not_found);
  const std::string message = test::message_of([&] { resolve({env_id}); });
  EXPECT_NE(message.find("expired at " + past), std::string::npos) << message;
  EXPECT_EQ(message.find(token), std::string::npos);  // never the token
  // Other scopes are unaffected.
  EXPECT_EQ(resolve({env_id, std::string("admin")})["credential"]["id"],
            credential_ids.at("admin"));
}

TEST_F(Router, KeyProblemsAreReportedAndNothingIsTouched) {
  VariantHost keyless(host, {true, true, /*own_keyring=*/true});
  EXPECT_EQ(code_of([&] { keyless.call("resolve_environment", {env_id}); }), Code::key_unavailable);
  // A ciphertext moved onto another row does not open.
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET token_cipher = (SELECT token_cipher FROM "
          "envdb.sys_database_credential WHERE id = $2) WHERE id = $1",
          {credential_ids.at("readwrite"), credential_ids.at("admin")});
  EXPECT_EQ(code_of([&] { resolve({env_id}); }), Code::decrypt_failed);
  EXPECT_FALSE(last_accessed(database_id));
}

TEST_F(Router, LastAccessedAtIsTouchedAtMostOnceAMinute) {
  EXPECT_FALSE(last_accessed(database_id));
  const int64_t start = now_ms();
  resolve({env_id});
  const auto first = last_accessed(database_id);
  ASSERT_TRUE(first);
  EXPECT_GE(*ms_from_iso(*first), start);
  EXPECT_LE(*ms_from_iso(*first), now_ms());

  // Just set: a resolve leaves it alone, and does not even try to write.
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET last_accessed_at = "
          "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = $1",
          {database_id});
  const auto fresh = last_accessed(database_id);
  VariantHost watched(host, {});
  watched.call("resolve_environment", {env_id});
  resolve({env_id, std::string("admin")});
  EXPECT_EQ(last_accessed(database_id), fresh);
  EXPECT_EQ(watched.store().writes(), std::vector<std::string>{});
  EXPECT_EQ(watched.store().statements.size(), 1u);  // one query, nothing else

  // 59 seconds old: still fresh.
  const std::string recent = iso_from_ms(now_ms() - 59 * 1000);
  set_last_accessed(recent);
  resolve({env_id});
  EXPECT_EQ(last_accessed(database_id), recent);

  // Two minutes old: it moves to now, with one UPDATE.
  const std::string old = iso_from_ms(now_ms() - 120 * 1000);
  set_last_accessed(old);
  const int64_t before = now_ms();
  VariantHost writer(host, {});
  writer.call("resolve_environment", {env_id});
  const auto moved = last_accessed(database_id);
  ASSERT_TRUE(moved);
  EXPECT_GE(*ms_from_iso(*moved), before);
  EXPECT_EQ(writer.store().writes().size(), 1u);
  EXPECT_EQ(writer.store().writes()[0].rfind("UPDATE envdb.sys_environment_database", 0), 0u);
  // A second resolve right after does not write again.
  VariantHost again(host, {});
  again.call("resolve_environment", {env_id});
  EXPECT_EQ(last_accessed(database_id), moved);
  EXPECT_EQ(again.store().writes(), std::vector<std::string>{});
}

TEST_F(Router, AReadOnlyStoreIsNeverWritten) {
  VariantHost standby(host, {true, /*writable=*/false});
  const Json r = Json::parse(std::get<std::string>(standby.call("resolve_environment", {env_id})));
  EXPECT_EQ(r["credential"]["token"], reveal(credential_ids.at("readwrite")));
  EXPECT_FALSE(last_accessed(database_id));
  const std::string old = iso_from_ms(now_ms() - 3600 * 1000);
  set_last_accessed(old);
  standby.call("resolve_environment", {env_id, std::string("admin")});
  EXPECT_EQ(last_accessed(database_id), old);
  EXPECT_EQ(standby.store().writes(), std::vector<std::string>{});
}

TEST_F(Router, ResolvingIsNotAudited) {
  const auto before = counts();
  for (int i = 0; i < 3; ++i) resolve({env_id});
  EXPECT_EQ(code_of([&] { resolve({std::string("missing")}); }), Code::not_found);
  EXPECT_EQ(counts(), before);
}

TEST_F(Router, FailedResolvesDoNotTouchLastAccessedAt) {
  host.call("set_environment_status", {env_id, std::string("suspended")});
  EXPECT_EQ(code_of([&] { resolve({env_id}); }), Code::conflict);
  host.call("set_environment_status", {env_id, std::string("active")});
  host.call("revoke_credential", {credential_ids.at("readonly")});
  EXPECT_EQ(code_of([&] { resolve({env_id, std::string("readonly")}); }), Code::not_found);
  EXPECT_FALSE(last_accessed(database_id));
}

TEST_F(Router, FunctionTableRow) {
  const api::Function* f = api::find("resolve_environment");
  ASSERT_TRUE(f);
  EXPECT_EQ(f->roles, api::kAdmin | api::kRouter);
  EXPECT_EQ(f->flags & (api::kPure | api::kWrites | api::kDataPlane), 0u);
  EXPECT_EQ(f->returns, api::Type::json);
  ASSERT_EQ(f->params.size(), 2u);
  EXPECT_STREQ(f->params[0].name, "environment_id");
  EXPECT_STREQ(f->params[1].name, "scope");
  EXPECT_STREQ(f->params[1].pg_default, "'readwrite'");
  EXPECT_TRUE(api::available_in(*f, "postgres"));
  EXPECT_TRUE(api::available_in(*f, "sqlite"));
}
