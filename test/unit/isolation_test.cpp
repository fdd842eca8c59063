// Failing closed: who may set a context, what a caller below the router sees,
// the role -> scope limit on resolve_environment, the context following the
// catalog (context::refresh), reveals without an audit trail, coalesced
// reveal events, and a keyring command that stays out of the process list.
#include <dirent.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/clock.hpp"
#include "env_fixture.hpp"
#include "fixtures/variant_hosts.hpp"
#include "secrets/keyring.hpp"
#include "tenancy/context.hpp"
#include "tenancy/permissions.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::VariantHost;

namespace {

// A host whose contexts would end with the statement (Postgres autocommit).
class AutocommitHost : public VariantHost {
 public:
  using VariantHost::VariantHost;
  bool context_outlives_statement() override { return false; }
};

class Isolation : public test::EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    const Json acme = organization("acme");
    acme_env = acme["defaultEnvironment"]["environment"]["id"].get<std::string>();
    acme_db = acme["defaultEnvironment"]["database"]["id"].get<std::string>();
    const Json globex = organization("globex");
    globex_env = globex["defaultEnvironment"]["environment"]["id"].get<std::string>();
    for (auto& [user, role] : std::vector<std::pair<std::string, std::string>>{
             {"vera", "env_viewer"}, {"uma", "env_user"}, {"ada", "env_admin"}})
      host.call("add_environment_member", {acme_env, user, role});
    host.call("add_environment_member", {globex_env, std::string("gus"), std::string("env_user")});
  }
  std::string acme_env, acme_db, globex_env;
};

int64_t reveal_events(test::MemoryHost& host) {
  return query_one(host.store(),
                   "SELECT count(*) AS n FROM sys_audit_event WHERE action = 'credential.reveal'")
      ->integer("n");
}

}  // namespace

TEST(Permissions, ScopeCoversFollowsTheScopeOrder) {
  EXPECT_TRUE(permissions::scope_covers("admin", "readonly"));
  EXPECT_TRUE(permissions::scope_covers("admin", "readwrite"));
  EXPECT_TRUE(permissions::scope_covers("readwrite", "readonly"));
  EXPECT_FALSE(permissions::scope_covers("readwrite", "admin"));
  EXPECT_FALSE(permissions::scope_covers("readonly", "readwrite"));
  EXPECT_FALSE(permissions::scope_covers("admin", "root"));
  // The table check_environment_access answers from gives the scopes.
  EXPECT_EQ(permissions::scope_for_role("env_viewer"), "readonly");
  EXPECT_EQ(permissions::scope_for_role("env_maker"), "readwrite");
}

TEST_F(Isolation, OnlyTheRouterMaySpeakForAUser) {
  VariantHost reader(host, {/*privileged=*/false});
  for (const Value& user : {Value(std::string("gus")), null_value()})
    EXPECT_EQ(code_of([&] {
                reader.call("set_active_environment", {globex_env, user});
              }),
              Code::permission_denied);
  EXPECT_FALSE(reader.context());
}

TEST_F(Isolation, AContextThatWouldEndWithTheStatementIsRefused) {
  AutocommitHost autocommit(host, {});
  EXPECT_EQ(code_of([&] { autocommit.call("set_active_environment", {acme_env}); }),
            Code::conflict);
  EXPECT_FALSE(autocommit.context());
  // Bad input is still reported as such first.
  EXPECT_EQ(code_of([&] { autocommit.call("set_active_environment", {std::string("no-such")}); }),
            Code::not_found);
}

TEST_F(Isolation, GettersAnswerAReaderOnlyInsideItsOrganization) {
  VariantHost reader(host, {/*privileged=*/false});
  const std::vector<std::pair<std::string, std::vector<Value>>> getters = {
      {"get_environment", {globex_env}},
      {"environment_role", {globex_env, std::string("gus")}},
      {"check_environment_access", {globex_env, std::string("gus"), std::string("read")}}};
  for (auto& [fn, args] : getters)
    EXPECT_EQ(code_of([&] { reader.call(fn, args); }), Code::permission_denied) << fn;
  // The router's context (set for acme) is what the reader reads inside.
  host.call("set_active_environment", {acme_env, std::string("uma")});
  reader.set_context(host.context());
  for (auto& [fn, args] : getters) {
    const std::string message = test::message_of([&] { reader.call(fn, args); });
    EXPECT_EQ(message, "not_found: environment_id '" + globex_env + "' names no environment") << fn;
  }
  EXPECT_EQ(std::get<std::string>(reader.call("environment_role", {acme_env, std::string("vera")})),
            "env_viewer");
  EXPECT_TRUE(std::get<bool>(reader.call("check_environment_access",
                                         {acme_env, std::string("uma"), std::string("write")})));
}

TEST_F(Isolation, AUserContextResolvesAtMostItsRolesScope) {
  auto resolve = [&](const std::string& user, const std::string& env, const std::string& scope) {
    host.call("set_active_environment", {acme_env, user});
    return host.call("resolve_environment", {env, scope});
  };
  EXPECT_NO_THROW(resolve("vera", acme_env, "readonly"));
  EXPECT_EQ(code_of([&] { resolve("vera", acme_env, "readwrite"); }), Code::permission_denied);
  EXPECT_EQ(code_of([&] { resolve("vera", acme_env, "admin"); }), Code::permission_denied);
  EXPECT_NO_THROW(resolve("uma", acme_env, "readwrite"));
  EXPECT_EQ(code_of([&] { resolve("uma", acme_env, "admin"); }), Code::permission_denied);
  EXPECT_NO_THROW(resolve("ada", acme_env, "admin"));
  EXPECT_EQ(code_of([&] { resolve("ada", globex_env, "readonly"); }), Code::permission_denied);
  host.call("clear_active_environment");
  EXPECT_NO_THROW(host.call("resolve_environment", {globex_env, std::string("admin")}));
}

TEST_F(Isolation, RefreshFollowsTheCatalog) {
  host.call("set_active_environment", {acme_env, std::string("uma")});
  host.call("add_environment_member", {acme_env, std::string("uma"), std::string("env_viewer")});
  context::refresh(host);
  EXPECT_EQ(context::current(host)->at("role"), "env_viewer");
  host.call("remove_environment_member", {acme_env, std::string("uma")});
  context::refresh(host);
  EXPECT_FALSE(host.context());
  host.call("set_active_environment", {acme_env});
  host.call("set_environment_status", {acme_env, std::string("suspended")});
  context::refresh(host);
  EXPECT_FALSE(host.context());
}

TEST_F(Isolation, RevealWithoutAnAuditTrailIsRefused) {
  const std::string id = query_one(host.store(),
                                   "SELECT id FROM sys_database_credential WHERE database_id = $1 "
                                   "AND scope = 'readonly' AND status = 'active'",
                                   {acme_db})
                             ->text("id");
  VariantHost standby(host, {/*privileged=*/true, /*writable=*/false});
  EXPECT_EQ(code_of([&] { standby.call("reveal_credential", {id}); }), Code::permission_denied);
  host.call("config", {std::string("allow_unaudited_reveal"), std::string("on")});
  EXPECT_EQ(std::get<std::string>(standby.call("reveal_credential", {id})).size(), 43u);
  EXPECT_EQ(reveal_events(host), 0);
  EXPECT_EQ(code_of([&] {
              host.call("config", {std::string("allow_unaudited_reveal"), std::string("yes")});
            }),
            Code::invalid_parameter);
}

TEST_F(Isolation, RepeatedRevealsAreCountedOnOneEvent) {
  const std::string id = query_one(host.store(),
                                   "SELECT id FROM sys_database_credential WHERE database_id = $1 "
                                   "AND scope = 'admin' AND status = 'active'",
                                   {acme_db})
                             ->text("id");
  // Keep clear of a minute boundary, which would rightly start a new event.
  while (now_ms() % 60000 > 55000) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 25; ++i) host.call("reveal_credential", {id});
  EXPECT_EQ(reveal_events(host), 1);
  const Json detail =
      Json::parse(query_one(host.store(),
                            "SELECT detail FROM sys_audit_event WHERE action = 'credential.reveal'")
                      ->text("detail"));
  EXPECT_EQ(detail["count"], 25);
  EXPECT_EQ(detail["scope"], "admin");
  // Anything else on the audit table stays refused.
  EXPECT_EQ(code_of([&] {
              execute(host.store(),
                      "UPDATE sys_audit_event SET actor = 'someone-else' WHERE "
                      "action = 'credential.reveal'");
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              execute(host.store(),
                      "UPDATE sys_audit_event SET detail = '{}' WHERE "
                      "action <> 'credential.reveal'");
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { execute(host.store(), "DELETE FROM sys_audit_event"); }),
            Code::invalid_parameter);
}

// Every process's command line, joined; what ps shows to every user.
static std::string all_command_lines() {
  std::string out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  while (dirent* e = readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(std::string("/proc/") + e->d_name + "/cmdline", std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    out += s.str() + "\n";
  }
  closedir(proc);
  return out;
}

TEST(KeyringCommand, TheCommandTextIsNotInTheProcessList) {
  const std::string marker = "kms-secret-" + std::to_string(::getpid());
  const std::string command =
      "SECRET=" + marker + "; sleep 1; printf 'k1 " + std::string(43, 'A') + "=\\n'";
  std::atomic<bool> done{false}, seen{false};
  std::thread watcher([&] {
    while (!done)
      if (all_command_lines().find(marker) != std::string::npos) seen = true;
  });
  Keyring keyring = Keyring::from_command(command);
  done = true;
  watcher.join();
  EXPECT_TRUE(keyring.has("k1"));
  EXPECT_FALSE(seen) << "the keyring command's text was visible in /proc/*/cmdline";
  // The command still runs with the shell's full syntax, and a failure is reported.
  EXPECT_EQ(code_of([] { Keyring::from_command("exit 3"); }), Code::key_unavailable);
}
