// Convergence of postgres logins: the desired state read from the catalog,
// the server's report, and the steps between them.
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "env_fixture.hpp"
#include "postgres/converge.hpp"
#include "postgres/provisioner.hpp"
#include "postgres/statements.hpp"
#include "secrets/credentials.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::contains;
using envdb::test::EnvFixture;

namespace {

converge::Desired login(const std::string& name, bool live,
                        std::optional<std::string> until = std::nullopt, bool may_create = true) {
  converge::Desired d;
  d.name = name;
  d.database_name = "env-x";
  d.scope = "readwrite";
  d.live = live;
  d.valid_until = std::move(until);
  d.may_create = may_create;
  return d;
}

// A server that reports `actual` and records what it is asked to run.
class FakeServer : public postgres::ServerSession {
 public:
  void exec(const std::string& sql) override { log.push_back(sql); }
  std::optional<std::string> query_value(const std::string& sql) override {
    if (contains(sql, "jsonb_object_agg")) return report;
    if (contains(sql, "starts_with(datname")) return beside;
    if (contains(sql, "json_agg(datname")) return others;
    log.push_back(sql);
    return std::nullopt;
  }
  void exec_top_level(const std::string& sql) override { log.push_back(sql); }
  void exec_in_database(const std::string&, const std::string& sql) override { log.push_back(sql); }
  std::string url(const std::string& db) override { return "postgresql://h:1/" + db; }
  std::optional<std::string> report;
  std::optional<std::string> others;
  std::optional<std::string> beside;  // the databases named <name>_...
  std::vector<std::string> log;
};

}  // namespace

TEST(ConvergeRule, ALoginIsLiveOnlyWhileItsCredentialAndEnvironmentAllowIt) {
  const int64_t now = 1'800'000'000'000;
  const std::string later = iso_from_ms(now + 1000), earlier = iso_from_ms(now - 1);
  EXPECT_TRUE(converge::login_live("active", std::nullopt, "active", now));
  EXPECT_TRUE(converge::login_live("rotating", later, "active", now));
  EXPECT_TRUE(converge::login_live("active", later, "provisioning", now));
  EXPECT_FALSE(converge::login_live("rotating", earlier, "active", now));  // grace over
  EXPECT_FALSE(converge::login_live("active", iso_from_ms(now), "active", now));
  EXPECT_FALSE(converge::login_live("revoked", later, "active", now));
  EXPECT_FALSE(converge::login_live("active", later, "suspended", now));
  EXPECT_FALSE(converge::login_live("active", later, "archived", now));
  EXPECT_FALSE(converge::login_live("active", later, "failed", now));
  EXPECT_FALSE(converge::login_live("active", std::string("not a time"), "active", now));
}

TEST(ConvergePlan, StepsBringTheServerToTheCatalogAndNothingWhenTheyAgree) {
  const std::string until = "2030-01-01T00:00:00.000Z";
  const int64_t until_ms = *ms_from_iso(until);
  std::vector<converge::Desired> want = {
      login("ok", true, until),     login("missing", true),
      login("nologin", true),       login("stale_until", true, until),
      login("revoked_on", false),   login("revoked_sessions", false),
      login("revoked_gone", false), login("not_yet_created", true, std::nullopt, false)};
  std::map<std::string, converge::Actual> have = {{"ok", {true, until_ms, 3}},
                                                  {"nologin", {false, std::nullopt, 0}},
                                                  {"stale_until", {true, until_ms + 5000, 0}},
                                                  {"revoked_on", {true, std::nullopt, 0}},
                                                  {"revoked_sessions", {false, std::nullopt, 2}}};
  std::map<std::string, converge::Step> got;
  for (const auto& a : converge::plan(want, have)) got[a.login.name] = a.step;
  const std::map<std::string, converge::Step> expected = {{"missing", converge::Step::create},
                                                          {"nologin", converge::Step::create},
                                                          {"stale_until", converge::Step::enable},
                                                          {"revoked_on", converge::Step::disable},
                                                          {"revoked_sessions",
                                                           converge::Step::end_sessions}};
  EXPECT_EQ(got, expected);

  // Once the server matches, the plan is empty: converging is idempotent.
  have["missing"] = have["nologin"] = {true, std::nullopt, 0};
  have["stale_until"] = {true, until_ms, 0};
  have.erase("revoked_on");
  have.erase("revoked_sessions");
  EXPECT_TRUE(converge::plan(want, have).empty());
}

TEST(ConvergePlan, TheServersReportIsParsedStrictly) {
  const auto a = converge::parse_actual(
      std::string(R"({"x": {"login": true, "until": 1700000000000, "sessions": 2},)"
                  R"( "y": {"login": false, "until": null, "sessions": 0}})"));
  ASSERT_EQ(a.size(), 2u);
  EXPECT_TRUE(a.at("x").can_login);
  EXPECT_EQ(a.at("x").valid_until_ms, 1700000000000);
  EXPECT_EQ(a.at("x").sessions, 2);
  EXPECT_FALSE(a.at("y").valid_until_ms.has_value());
  EXPECT_TRUE(converge::parse_actual(std::nullopt).empty());
  EXPECT_EQ(code_of([] { converge::parse_actual(std::string("[1]")); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([] { converge::parse_actual(std::string("{\"x\": 1}")); }),
            Code::invalid_parameter);
  const std::string sql = converge::actual_sql({login("a'b", true)});
  EXPECT_TRUE(contains(sql, "'a''b'"));
  EXPECT_FALSE(contains(sql, "pg_terminate_backend"));
}

TEST(ConvergeApply, DisablesEnablesAndAsksForTheVerifierOnlyWhenCreating) {
  FakeServer server;
  server.report = R"({"on": {"login": true, "until": null, "sessions": 1}})";
  converge::ServerPlan p{std::nullopt, {login("on", false), login("new", true)}};
  int asked = 0;
  const auto steps = converge::apply(server, p, [&](const converge::Desired& d) {
    ++asked;
    postgres::Login l;
    l.credential_id = d.credential_id;
    l.scope = d.scope;
    l.name = d.name;
    l.live = true;
    l.verifier = "SCRAM-SHA-256$4096:c2FsdA==$a2V5:c2VydmVy";
    return std::optional<postgres::Login>(l);
  });
  EXPECT_EQ(asked, 1);
  ASSERT_EQ(steps.size(), 2u);
  std::string all;
  for (auto& s : server.log) all += s + "\n";
  EXPECT_TRUE(contains(all, "ALTER ROLE \"on\" NOLOGIN"));
  EXPECT_TRUE(contains(all, "pg_terminate_backend"));
  EXPECT_TRUE(contains(all, "CREATE ROLE \"new\" LOGIN"));
  // The login and the scope roles it needs: one exec, one transaction.
  size_t creating = 0;
  for (auto& s : server.log)
    if (contains(s, "CREATE ROLE \"new\" LOGIN")) {
      ++creating;
      EXPECT_TRUE(contains(s, "_owner\" NOLOGIN"));
      EXPECT_TRUE(contains(s, "_readonly\" NOLOGIN"));
    }
  EXPECT_EQ(creating, 1u);
  EXPECT_EQ(server.log.size(), 3u);  // NOLOGIN, the sessions ended, the creation

  // A credential revoked since the plan was made: the maker says no, nothing runs.
  FakeServer again;
  converge::ServerPlan q{std::nullopt, {login("new", true)}};
  EXPECT_TRUE(converge::apply(again, q, [](const converge::Desired&) {
                return std::optional<postgres::Login>();
              }).empty());
  EXPECT_TRUE(again.log.empty());
}

class Converge : public EnvFixture {};

TEST_F(Converge, DesiredStateFollowsTheCatalogAtTheMomentItIsRead) {
  const std::string org = organization_id("acme", "turso");
  const Json env = environment(org, "dev", "postgres");
  const std::string env_id = env["environment"]["id"].get<std::string>();
  const std::string db = env["database"]["id"].get<std::string>();
  auto live_names = [&](bool creating) {
    std::map<std::string, bool> out;
    for (auto& p : converge::desired(host.store(), std::nullopt, creating, now_ms())) {
      EXPECT_FALSE(p.host_id.has_value());
      for (auto& d : p.logins) {
        EXPECT_EQ(d.may_create, creating);  // not provisioned yet: only its create job creates
        out[d.scope] = d.live;
      }
    }
    return out;
  };
  EXPECT_EQ(live_names(false), (std::map<std::string, bool>{{"admin", true},
                                                            {"readonly", true},
                                                            {"readwrite", true}}));
  // Revoked while the create job runs: the next read says so.
  const std::string admin = query_one(host.store(),
                                      "SELECT id FROM envdb.sys_database_credential WHERE "
                                      "database_id = $1 AND scope = 'admin'",
                                      {db})
                                ->text("id");
  call_json("revoke_credential", {admin});
  EXPECT_EQ(live_names(true), (std::map<std::string, bool>{{"admin", false},
                                                           {"readonly", true},
                                                           {"readwrite", true}}));
  EXPECT_FALSE(converge::login_to_create(host, admin).has_value());

  Json jobs = call_json("claim_provisioning_jobs", {std::string("postgres")});
  call_json("complete_provisioning_job",
            {jobs[0]["id"].get<std::string>(), std::string("postgresql://h:1/x")});
  for (auto& p : converge::desired(host.store(), db, false, now_ms()))
    for (auto& d : p.logins) EXPECT_TRUE(d.may_create);
  // Suspended: nothing of it may log in; resumed: the valid ones again.
  call_json("set_environment_status", {env_id, std::string("suspended")});
  for (auto& p : converge::desired(host.store(), db, false, now_ms()))
    for (auto& d : p.logins) EXPECT_FALSE(d.live);
  call_json("set_environment_status", {env_id, std::string("active")});
  int live = 0;
  for (auto& p : converge::desired(host.store(), db, false, now_ms()))
    for (auto& d : p.logins) live += d.live;
  EXPECT_EQ(live, 2);  // readwrite and readonly; admin stays revoked
  const std::string rw = query_one(host.store(),
                                   "SELECT id FROM envdb.sys_database_credential WHERE "
                                   "database_id = $1 AND scope = 'readwrite'",
                                   {db})
                             ->text("id");
  auto l = converge::login_to_create(host, rw);
  ASSERT_TRUE(l.has_value());
  EXPECT_EQ(l->verifier.rfind("SCRAM-SHA-256$4096:", 0), 0u);
}

TEST_F(Converge, DeadlinesExpireWithoutACaller) {
  const std::string org = organization_id("acme", "turso");
  const Json env = environment(org, "dev", "postgres");
  const std::string db = env["database"]["id"].get<std::string>();
  call_json("rotate_credential", {db, std::string("readwrite"), int64_t{0}});
  EXPECT_EQ(credentials::expire_due(host), 1);
  EXPECT_EQ(count("sys_audit_event", "action = 'credential.expire'"), 1);
  EXPECT_EQ(credentials::expire_due(host), 0);
}

TEST(ConvergeDrop, ADropRemovesWhatTheRolesOwnInEveryOtherDatabaseFirst) {
  postgres::Work w;
  w.kind = "drop_database";
  w.database_name = "env-x";
  w.roles = postgres::roles_for("env-x");
  FakeServer server;
  server.others = R"(["postgres", "template1"])";
  // A backup beside it goes first: its objects belong to the roles too.
  server.beside = R"(["env-x_b_aaaa"])";
  postgres::carry_out(w, server);
  ASSERT_GE(server.log.size(), 5u);
  EXPECT_TRUE(contains(server.log[0], "DROP DATABASE IF EXISTS \"env-x\" WITH (FORCE)"));
  EXPECT_TRUE(contains(server.log[1], "DROP DATABASE IF EXISTS \"env-x_b_aaaa\" WITH (FORCE)"));
  EXPECT_TRUE(contains(server.log[2], "DROP OWNED BY"));
  EXPECT_TRUE(contains(server.log[2], "starts_with(rolname, 'env-x_')"));
  EXPECT_TRUE(contains(server.log[3], "DROP OWNED BY"));
  EXPECT_TRUE(contains(server.log.back(), "DROP ROLE ' || pg_catalog.quote_ident"));
}

TEST_F(Converge, LoginsAreKeptToTheirDatabaseOnRegisteredHostsByDefault) {
  const std::string org = organization_id("acme", "turso");
  call_json("add_database_host",
            {std::string("eu-1"), std::string("eu"), std::string("10.0.0.5"), null_value(),
             null_value(), null_value(), null_value(), null_value(), false});
  const Json eu = call_json("provision_environment",
                            {org, std::string("eu"), null_value(), std::string("development"),
                             std::string("eu"), std::string("postgres")});
  const Json here = environment(org, "dev", "postgres");
  const auto restricted = [&](const Json& env) {
    return postgres::load_work(host, env["job"]["id"].get<std::string>()).restrict_connect;
  };
  EXPECT_TRUE(restricted(eu));
  EXPECT_FALSE(restricted(here));
  host.call("config", {std::string("restrict_server_connect"), std::string("all")});
  EXPECT_TRUE(restricted(here));
  host.call("config", {std::string("restrict_server_connect"), std::string("off")});
  EXPECT_FALSE(restricted(eu));
  EXPECT_EQ(code_of([&] {
              host.call("config", {std::string("restrict_server_connect"), std::string("some")});
            }),
            Code::invalid_parameter);
  const std::string sql = postgres::restrict_connect_sql("env-x");
  EXPECT_TRUE(contains(sql, "REVOKE CONNECT ON DATABASE %I FROM PUBLIC"));
  EXPECT_TRUE(contains(sql, "datname <> 'env-x'"));
}
