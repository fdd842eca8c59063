// Operating registered database hosts (postgres/hosts.hpp): the connection
// test at add and update, drain, capacity, health, placement and its
// local_server_regions fallback, retry on another host, removal once only
// dropped databases are left. The connection is a fake session here; the
// Postgres suite (test/pg/test_database_hosts.py) does the same against a
// real server.
#include <gtest/gtest.h>

#include "env_fixture.hpp"
#include "postgres/hosts.hpp"
#include "postgres/provisioner.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::contains;
using envdb::test::EnvFixture;
using envdb::test::message_of;

namespace {

// A server that logs in with password "right" and whose role may or may not
// create databases and roles.
class LoginFakeServer : public postgres::ServerSession {
 public:
  explicit LoginFakeServer(bool can_create) : can_create_(can_create) {}
  void exec(const std::string&) override {}
  std::optional<std::string> query_value(const std::string& sql) override {
    if (sql.find("rolcreatedb") != std::string::npos)
      return std::string(can_create_ ? "true" : "false");
    return std::nullopt;
  }
  void exec_top_level(const std::string&) override {}
  void exec_in_database(const std::string&, const std::string&) override {}
  std::string url(const std::string& db) override { return "postgresql://h:1/" + db; }

 private:
  bool can_create_;
};

class DatabaseHosts : public EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    host.connect = [this](const postgres::Server& s) -> std::unique_ptr<postgres::ServerSession> {
      ++connections;
      if (s.host == "unreachable")
        throw Error(Code::internal, "cannot connect to database host " + quote_value(s.name) +
                                        ": connection to server at \"unreachable\" failed: "
                                        "Connection refused");
      if (!s.password || s.password->view() != "right")
        throw Error(Code::internal,
                    "cannot connect to database host " + quote_value(s.name) +
                        ": connection to server failed: FATAL:  password authentication failed "
                        "for user \"" +
                        s.username + "\"");
      return std::make_unique<LoginFakeServer>(s.username != "weak");
    };
  }
  // add_database_host(name, region, host, port, username, password, dbname,
  // capacity, verify)
  Json add(const std::string& name, const std::string& region, const std::string& password,
           Value capacity = null_value(), bool verify = true) {
    return call_json("add_database_host",
                     {name, region, std::string("db.internal"), int64_t{5432},
                      std::string("postgres"), password, null_value(), capacity, verify})["host"];
  }
  Json provision(const std::string& org, const std::string& slug, const std::string& region) {
    return call_json("provision_environment",
                     {org, slug, null_value(), null_value(), region, std::string("postgres")});
  }
  std::optional<std::string> host_of(const Json& env) {
    return query_one(host.store(),
                     "SELECT host_id FROM envdb.sys_environment_database WHERE id = $1",
                     {env["database"]["id"].get<std::string>()})
        ->opt_text("host_id");
  }
  int connections = 0;
};

}  // namespace

TEST_F(DatabaseHosts, AddTestsTheConnectionAndRefusesAWrongPasswordWithoutTheSecret) {
  const std::string m = message_of([&] { add("eu-1", "eu", "wrong-pw-123"); });
  EXPECT_EQ(m.rfind("invalid_parameter: password: database host 'eu-1'", 0), 0u) << m;
  EXPECT_TRUE(contains(m, "password authentication failed")) << m;
  EXPECT_TRUE(contains(m, "verify => false")) << m;
  EXPECT_FALSE(contains(m, "wrong-pw-123")) << m;
  EXPECT_EQ(count("sys_database_host"), 0);
  EXPECT_EQ(count("sys_audit_event", "action = 'database_host.add'"), 0);

  const std::string down = message_of([&] {
    call_json("add_database_host",
              {std::string("eu-1"), std::string("eu"), std::string("unreachable"), int64_t{5432},
               std::string("postgres"), std::string("right")});
  });
  EXPECT_EQ(down.rfind("invalid_parameter: host: ", 0), 0u) << down;
  EXPECT_TRUE(contains(down, "Connection refused")) << down;
  // A role that logs in but cannot create databases and roles.
  const std::string weak = message_of([&] {
    call_json("add_database_host", {std::string("eu-1"), std::string("eu"), std::string("db"),
                                    int64_t{5432}, std::string("weak"), std::string("right")});
  });
  EXPECT_EQ(weak.rfind("invalid_parameter: username: ", 0), 0u) << weak;
  EXPECT_EQ(count("sys_database_host"), 0);

  const Json ok = add("eu-1", "eu", "right");
  EXPECT_TRUE(ok["healthy"].get<bool>());
  EXPECT_FALSE(ok["lastContactAt"].is_null());
  EXPECT_EQ(ok["databases"], 0);
  EXPECT_TRUE(ok["capacity"].is_null());
  EXPECT_EQ(ok["drained"], false);
  // verify => false registers it untested, without a contact.
  connections = 0;
  const Json untested = add("eu-2", "eu", "wrong", null_value(), false);
  EXPECT_EQ(connections, 0);
  EXPECT_TRUE(untested["lastContactAt"].is_null());
}

TEST_F(DatabaseHosts, AHostThatCannotConnectOutRefusesTheTestClearly) {
  host.connect = nullptr;  // the SQLite host: no Postgres client
  const std::string m = message_of([&] { add("eu-1", "eu", "right"); });
  EXPECT_EQ(m.rfind("invalid_parameter: verify: the sqlite host cannot connect", 0), 0u) << m;
  EXPECT_EQ(count("sys_database_host"), 0);
  EXPECT_EQ(add("eu-1", "eu", "right", null_value(), false)["name"], "eu-1");
}

TEST_F(DatabaseHosts, UpdateFixesTheConnectionAndResealsThePassword) {
  const Json h = add("eu-1", "eu", "wrong", null_value(), false);
  const std::string id = h["id"].get<std::string>();
  // The fix is tested first: a wrong one changes nothing.
  EXPECT_EQ(code_of([&] {
              call_json("update_database_host", {id, null_value(), std::string("still-wrong")});
            }),
            Code::invalid_parameter);
  EXPECT_EQ(count("sys_audit_event", "action = 'database_host.update'"), 0);
  const Json fixed = call_json("update_database_host",
                               {id, std::string("postgresql://admin@db2.internal:5433/maint"),
                                std::string("right")})["host"];
  EXPECT_EQ(fixed["host"], "db2.internal");
  EXPECT_EQ(fixed["port"], 5433);
  EXPECT_EQ(fixed["username"], "admin");
  EXPECT_EQ(fixed["dbname"], "maint");
  EXPECT_FALSE(fixed["lastContactAt"].is_null());
  EXPECT_EQ(postgres::load_server(host, id).password->view(), "right");
  auto cipher = query_one(host.store(), "SELECT password_cipher FROM envdb.sys_database_host");
  EXPECT_FALSE(contains(std::get<Blob>((*cipher)["password_cipher"]).bytes, "right"));
  auto event = query_one(host.store(),
                         "SELECT detail FROM envdb.sys_audit_event WHERE action = "
                         "'database_host.update'");
  EXPECT_FALSE(contains(event->text("detail"), "right")) << event->text("detail");
  // By name too; capacity and region need no connection test.
  connections = 0;
  const Json moved =
      request("update_database_host",
              Json{{"name", "eu-1"}, {"region", "eu-west"}, {"capacity", 2}})["host"];
  EXPECT_EQ(moved["region"], "eu-west");
  EXPECT_EQ(moved["capacity"], 2);
  EXPECT_EQ(connections, 0);
  EXPECT_TRUE(
      request("update_database_host", Json{{"name", id}, {"capacity", 0}})["host"]["capacity"]
          .is_null());
  EXPECT_EQ(code_of([&] { call_json("update_database_host", {id}); }), Code::invalid_parameter);
  // A url that names only the host keeps the rest.
  const Json rehosted =
      call_json("update_database_host", {id, std::string("postgres://db3.internal")})["host"];
  EXPECT_EQ(rehosted["host"], "db3.internal");
  EXPECT_EQ(rehosted["port"], 5433);
  EXPECT_EQ(rehosted["username"], "admin");
  EXPECT_EQ(
      code_of([&] {
        call_json("update_database_host", {std::string("nope"), std::string("postgresql://x")});
      }),
      Code::not_found);
}

TEST_F(DatabaseHosts, PlacementHonoursDrainCapacityAndHealth) {
  const std::string org = organization_id("acme", "turso");
  add("eu-1", "eu", "right", int64_t{1});
  add("eu-2", "eu", "right");
  const Json first = provision(org, "a", "eu");
  EXPECT_EQ(host_of(first), query_one(host.store(),
                                      "SELECT id FROM envdb.sys_database_host "
                                      "WHERE name = 'eu-1'")
                                ->opt_text("id"));
  // eu-1 is full (1 of 1): the next ones go to eu-2 even though it is busier.
  const std::string eu2 = call_json("list_database_hosts")[1]["id"].get<std::string>();
  EXPECT_EQ(host_of(provision(org, "b", "eu")), eu2);
  EXPECT_EQ(host_of(provision(org, "c", "eu")), eu2);
  // eu-2 drained: nothing takes a new database.
  EXPECT_EQ(call_json("drain_database_host", {std::string("eu-2")})["host"]["drained"], true);
  const int64_t environments = count("sys_environment");
  const std::string m = message_of([&] { provision(org, "d", "eu"); });
  EXPECT_EQ(m.rfind("conflict: region 'eu' has no database host that takes a new database", 0), 0u)
      << m;
  EXPECT_TRUE(contains(m, "'eu-1' is full (1 of 1)")) << m;
  EXPECT_TRUE(contains(m, "'eu-2' is drained")) << m;
  EXPECT_EQ(count("sys_environment"), environments);
  // Undrained, but its last contact failed: still no placement.
  call_json("drain_database_host", {eu2, false});
  postgres::record_contact(host.store(), eu2, "cannot connect: refused");
  const Json listed = call_json("list_database_hosts")[1];
  EXPECT_EQ(listed["healthy"], false);
  EXPECT_EQ(listed["lastError"], "cannot connect: refused");
  EXPECT_EQ(listed["databases"], 2);
  EXPECT_TRUE(contains(message_of([&] { provision(org, "d", "eu"); }), "failed its last contact"));
  postgres::record_contact(host.store(), eu2, "");
  EXPECT_EQ(call_json("list_database_hosts")[1]["healthy"], true);
  EXPECT_EQ(host_of(provision(org, "d", "eu")), eu2);
}

TEST_F(DatabaseHosts, ARegionWithoutHostsIsRefusedUnlessTheLocalServerServesIt) {
  const std::string org = organization_id("acme", "turso");
  const std::string m = message_of([&] { provision(org, "a", "ap-south"); });
  EXPECT_EQ(m.rfind("invalid_parameter: region 'ap-south' has no database host", 0), 0u) << m;
  EXPECT_TRUE(contains(m, "local_server_regions")) << m;
  EXPECT_EQ(count("sys_environment", "slug = 'a'"), 0);
  // The default region is served by this server by default.
  EXPECT_FALSE(host_of(provision(org, "b", "default")).has_value());
  host.call("config", {std::string("local_server_regions"), std::string("default, ap-south")});
  EXPECT_FALSE(host_of(provision(org, "a", "ap-south")).has_value());
  host.call("config", {std::string("local_server_regions"), std::string("")});
  EXPECT_EQ(code_of([&] { provision(org, "c", "default"); }), Code::invalid_parameter);
  host.call("config", {std::string("local_server_regions"), std::string("*")});
  EXPECT_FALSE(host_of(provision(org, "c", "anywhere")).has_value());
  // Turso and sqlite databases are not placed at all.
  host.call("config", {std::string("local_server_regions"), std::string("")});
  EXPECT_EQ(call_json("provision_environment",
                      {org, std::string("t"), null_value(), null_value(), std::string("ap-south"),
                       std::string("turso")})["environment"]["status"],
            "provisioning");
}

TEST_F(DatabaseHosts, RetryMovesAFailedDatabaseOffADrainedHost) {
  const std::string org = organization_id("acme", "turso");
  const std::string eu1 = add("eu-1", "eu", "right")["id"].get<std::string>();
  const Json env = provision(org, "a", "eu");
  EXPECT_EQ(host_of(env), eu1);
  const std::string env_id = env["environment"]["id"].get<std::string>();
  auto fail_job = [&] {
    const Json jobs = call_json("claim_provisioning_jobs", {std::string("postgres"), int64_t{10}});
    ASSERT_EQ(jobs.size(), 1u);
    call_json("fail_provisioning_job", {jobs[0]["id"].get<std::string>(), std::string("boom")});
  };
  fail_job();
  // Retried with its host still fine: it stays.
  call_json("retry_environment", {env_id});
  EXPECT_EQ(host_of(env), eu1);
  fail_job();
  call_json("drain_database_host", {eu1});
  // No other host: it stays too (a retry never fails for want of a host).
  call_json("retry_environment", {env_id});
  EXPECT_EQ(host_of(env), eu1);
  fail_job();
  const std::string eu2 = add("eu-2", "eu", "right")["id"].get<std::string>();
  const Json retried = call_json("retry_environment", {env_id});
  EXPECT_EQ(host_of(env), eu2);
  auto event = query_one(host.store(),
                         "SELECT detail FROM envdb.sys_audit_event WHERE action = "
                         "'environment.retry' ORDER BY occurred_at DESC, id DESC LIMIT 1");
  EXPECT_TRUE(contains(event->text("detail"), eu1)) << event->text("detail");
  const Json jobs = call_json("claim_provisioning_jobs", {std::string("postgres"), int64_t{10}});
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(postgres::load_work(host, jobs[0]["id"].get<std::string>()).server->id, eu2);
}

TEST_F(DatabaseHosts, AHostHoldingOnlyDroppedDatabasesIsRemoved) {
  const std::string org = organization_id("acme", "turso");
  const std::string eu1 = add("eu-1", "eu", "right")["id"].get<std::string>();
  const Json env = provision(org, "a", "eu");
  const std::string db_id = env["database"]["id"].get<std::string>();
  EXPECT_EQ(code_of([&] { call_json("remove_database_host", {std::string("eu-1")}); }),
            Code::conflict);
  // What drop_environment_database's completed job records.
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET dropped_at = '2026-01-01T00:00:00.000Z' "
          "WHERE id = $1",
          {db_id});
  EXPECT_EQ(call_json("list_database_hosts")[0]["databases"], 0);
  EXPECT_EQ(call_json("remove_database_host", {eu1})["host"]["name"], "eu-1");
  EXPECT_EQ(count("sys_database_host"), 0);
  EXPECT_FALSE(host_of(env).has_value());
  auto event = query_one(host.store(),
                         "SELECT detail FROM envdb.sys_audit_event WHERE action = "
                         "'database_host.remove'");
  EXPECT_TRUE(contains(event->text("detail"), db_id));
}
