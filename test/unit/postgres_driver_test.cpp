// The postgres driver's host-neutral half: names, statement text, the work a
// job loads, the jobs credential changes queue, the host registry.
#include <gtest/gtest.h>

#include "core/ids.hpp"
#include "env_fixture.hpp"
#include "postgres/provisioner.hpp"
#include "postgres/statements.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::contains;
using envdb::test::EnvFixture;

namespace {

// Records what carry_out asks of a server.
class RecordingSession : public postgres::ServerSession {
 public:
  void exec(const std::string& sql) override { log.push_back("exec " + sql); }
  std::optional<std::string> query_value(const std::string& sql) override {
    log.push_back("query " + sql);
    if (sql.find("pg_database") != std::string::npos) return owner;
    return std::nullopt;
  }
  void exec_top_level(const std::string& sql) override { log.push_back("top " + sql); }
  void exec_in_database(const std::string& db, const std::string& sql) override {
    log.push_back("in " + db + " " + sql);
  }
  std::string url(const std::string& db) override { return "postgresql://h:1/" + db; }
  std::vector<std::string> log;
  std::optional<std::string> owner;

  size_t count(const std::string& prefix) const {
    size_t n = 0;
    for (auto& l : log) n += l.rfind(prefix, 0) == 0;
    return n;
  }
};

}  // namespace

TEST(PgDriverNames, QuotingIsSafeForAnyText) {
  EXPECT_EQ(postgres::quote_identifier("env-a"), "\"env-a\"");
  EXPECT_EQ(postgres::quote_identifier("a\"b"), "\"a\"\"b\"");
  EXPECT_EQ(postgres::quote_literal("it's"), "'it''s'");
  EXPECT_EQ(postgres::quote_literal("a\\b"), "E'a\\\\b'");
  const std::string q = postgres::dollar_quote("x $envdb$ y");
  EXPECT_EQ(q.rfind("$envdb1$", 0), 0u);
  EXPECT_TRUE(contains(q, "x $envdb$ y"));
}

TEST(PgDriverNames, RolesAndLoginsAreDeterministicAndShort) {
  const std::string db = database_name_for(new_uuid_v7());
  const auto roles = postgres::roles_for(db);
  EXPECT_EQ(roles.admin, db + "_admin");
  EXPECT_EQ(roles.owner, db + "_owner");
  EXPECT_EQ(roles.of_scope("readonly"), db + "_readonly");
  const std::string credential = new_uuid_v7();
  const std::string a = postgres::login_name(db, "admin", credential);
  EXPECT_EQ(a, postgres::login_name(db, "admin", credential));
  EXPECT_NE(a, postgres::login_name(db, "admin", new_uuid_v7()));
  EXPECT_NE(a, postgres::login_name(db, "readwrite", credential));
  EXPECT_LE(a.size(), 63u);
  EXPECT_EQ(a.rfind(db + "_a_", 0), 0u);
  EXPECT_EQ(code_of([] { postgres::roles_for("Bad Name"); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { postgres::login_name(db, "owner", credential); }),
            Code::invalid_parameter);
  EXPECT_EQ(postgres::database_url("::1", 5432, "d"), "postgresql://[::1]:5432/d");
}

TEST(PgDriverStatements, LoginCarriesTheVerifierNeverTheToken) {
  const auto roles = postgres::roles_for("env-x");
  postgres::Login l;
  l.credential_id = new_uuid_v7();
  l.scope = "readwrite";
  l.name = postgres::login_name("env-x", "readwrite", l.credential_id);
  l.live = true;
  l.valid_until = "2030-01-01T00:00:00.000Z";
  const std::string token = crypto::generate_token();
  l.verifier = crypto::scram_sha256_verifier(token, crypto::random_bytes(16));
  const std::string sql = postgres::ensure_login_sql(l, roles);
  EXPECT_TRUE(contains(sql, l.verifier));
  EXPECT_FALSE(contains(sql, token));
  EXPECT_TRUE(contains(sql, "VALID UNTIL '2030-01-01T00:00:00.000Z'"));
  EXPECT_TRUE(contains(sql, "GRANT \"env-x_readwrite\" TO \"" + l.name + "\""));
  EXPECT_TRUE(contains(sql, "SET role = 'env-x_readwrite'"));
  l.valid_until.reset();
  EXPECT_TRUE(contains(postgres::ensure_login_sql(l, roles), "VALID UNTIL 'infinity'"));
  l.live = false;
  EXPECT_EQ(code_of([&] { postgres::ensure_login_sql(l, roles); }), Code::internal);
}

TEST(PgDriverStatements, AForeignDatabaseIsAConflict) {
  const auto roles = postgres::roles_for("env-x");
  EXPECT_TRUE(postgres::must_create_database("env-x", std::nullopt, roles));
  EXPECT_FALSE(postgres::must_create_database("env-x", std::string("env-x_owner"), roles));
  const std::string m = test::message_of(
      [&] { postgres::must_create_database("env-x", std::string("postgres"), roles); });
  EXPECT_TRUE(contains(m, "conflict: database 'env-x' already exists"));
}

class PgDriver : public EnvFixture {};

TEST_F(PgDriver, CreateJobLoadsEveryLoginAndCarriesOutInOrder) {
  const std::string org = organization_id("acme", "turso");
  const Json env = environment(org, "dev", "postgres");
  const std::string db = env["database"]["id"].get<std::string>();
  const std::string dbname = env["database"]["databaseName"].get<std::string>();
  const std::string job = env["job"]["id"].get<std::string>();
  // Credentials of a postgres database are login roles of derived names.
  for (auto& c : query(host.store(),
                       "SELECT id, scope, username FROM envdb.sys_database_credential WHERE "
                       "database_id = $1",
                       {db}))
    EXPECT_EQ(c.text("username"), postgres::login_name(dbname, c.text("scope"), c.text("id")));

  postgres::Work w = postgres::load_work(host, job);
  EXPECT_EQ(w.kind, "create_database");
  EXPECT_EQ(w.database_name, dbname);
  EXPECT_FALSE(w.server.has_value());
  ASSERT_EQ(w.logins.size(), 3u);  // admin, readwrite, readonly
  for (auto& l : w.logins) {
    EXPECT_TRUE(l.live);
    EXPECT_EQ(l.verifier.rfind("SCRAM-SHA-256$4096:", 0), 0u);
  }

  RecordingSession s;
  EXPECT_EQ(postgres::carry_out(w, s), "postgresql://h:1/" + dbname);
  // The four roles in one exec (one transaction), then three logins.
  EXPECT_EQ(s.count("exec DO"), 1u + 3u);
  EXPECT_EQ(s.count("exec REVOKE ALL ON DATABASE"), 1u);  // the three grants in one exec too
  size_t roles_in_first = 0;
  for (const auto& l : s.log)
    if (l.rfind("exec DO", 0) == 0) {
      for (size_t at = l.find("CREATE ROLE"); at != std::string::npos;
           at = l.find("CREATE ROLE", at + 1))
        ++roles_in_first;
      break;
    }
  EXPECT_EQ(roles_in_first, 4u);
  EXPECT_EQ(s.count("top CREATE DATABASE"), 1u);
  EXPECT_EQ(s.count("in " + dbname), 1u);
  size_t create = 0, inside = 0, first_login = 0;
  for (size_t i = 0; i < s.log.size(); ++i) {
    if (s.log[i].rfind("top ", 0) == 0) create = i;
    if (s.log[i].rfind("in ", 0) == 0) inside = i;
    if (!first_login && contains(s.log[i], "LOGIN INHERIT")) first_login = i;
  }
  EXPECT_LT(create, inside);
  EXPECT_LT(inside, first_login);
  EXPECT_TRUE(contains(s.log[inside], "init_environment_schema('" +
                                          env["environment"]["id"].get<std::string>() + "'"));

  // A caller that converges the logins itself gets no verifiers (each is a
  // PBKDF2 it would throw away).
  const postgres::Work bare = postgres::load_work(host, job, false);
  ASSERT_EQ(bare.logins.size(), 3u);
  for (auto& l : bare.logins) {
    EXPECT_TRUE(l.live);
    EXPECT_TRUE(l.verifier.empty());
  }

  // A retry finds the database of an earlier attempt and reuses it.
  RecordingSession again;
  again.owner = dbname + "_owner";
  postgres::carry_out(w, again);
  EXPECT_EQ(again.count("top "), 0u);
  EXPECT_EQ(again.count("in " + dbname), 1u);
}

TEST_F(PgDriver, CredentialChangesQueueJobsOnceTheDatabaseExists) {
  const std::string org = organization_id("acme", "turso");
  const Json env = environment(org, "dev", "postgres");
  const std::string db = env["database"]["id"].get<std::string>();
  // Still provisioning: the create job will make every login.
  call_json("issue_credential", {db, std::string("readonly")});
  EXPECT_EQ(count("sys_provisioning_job", "driver = 'postgres'"), 1);

  Json jobs = call_json("claim_provisioning_jobs", {std::string("postgres")});
  call_json("complete_provisioning_job",
            {jobs[0]["id"].get<std::string>(), std::string("postgresql://h:1/x")});
  const Json rotated = call_json("rotate_credential", {db, std::string("readwrite"), int64_t{0}});
  EXPECT_EQ(count("sys_provisioning_job", "kind = 'create_login' AND status = 'pending'"), 1);
  call_json("revoke_credential", {rotated["previous"]["id"].get<std::string>()});
  EXPECT_EQ(count("sys_provisioning_job", "kind = 'disable_login' AND status = 'pending'"), 1);

  // The rotated-away login is not live; the new one is.
  jobs = call_json("claim_provisioning_jobs", {std::string("postgres"), int64_t{10}});
  ASSERT_EQ(jobs.size(), 2u);
  postgres::Work w = postgres::load_work(host, jobs[1]["id"].get<std::string>());
  int live = 0, dead = 0;
  for (auto& l : w.logins) (l.live ? live : dead)++;
  EXPECT_EQ(live, 4);  // admin, both readonly (the first in its grace), the new readwrite
  EXPECT_EQ(dead, 1);
  RecordingSession s;
  EXPECT_FALSE(postgres::carry_out(w, s).has_value());
  EXPECT_EQ(s.count("top "), 0u);
  EXPECT_EQ(s.count("query SELECT pg_catalog.pg_terminate_backend"), 1u);

  // Archiving queues one job that disables every login.
  call_json("archive_environment", {env["environment"]["id"].get<std::string>(), true});
  jobs = call_json("claim_provisioning_jobs", {std::string("postgres"), int64_t{10}});
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["kind"], "disable_login");
  w = postgres::load_work(host, jobs[0]["id"].get<std::string>());
  for (auto& l : w.logins) EXPECT_FALSE(l.live);
}

TEST_F(PgDriver, HostRegistryPlacesByRegionAndSealsThePassword) {
  const Json added =
      call_json("add_database_host",
                {std::string("eu-1"), std::string("eu"), std::string("10.0.0.5"), int64_t{5433},
                 std::string("admin"), std::string("s3cret"), null_value(), null_value(), false});
  EXPECT_EQ(added["host"]["hasPassword"], true);
  EXPECT_FALSE(added["host"].contains("password"));
  auto row = query_one(host.store(), "SELECT password_cipher FROM envdb.sys_database_host");
  EXPECT_FALSE(contains(std::get<Blob>((*row)["password_cipher"]).bytes, "s3cret"));
  EXPECT_EQ(
      code_of([&] {
        call_json("add_database_host", {std::string("eu-1"), std::string("eu"), std::string("h")});
      }),
      Code::already_exists);
  EXPECT_EQ(code_of([&] {
              call_json("add_database_host",
                        {std::string("x"), std::string("eu"), std::string("h"), int64_t{70000}});
            }),
            Code::invalid_parameter);

  const std::string org = organization_id("acme", "turso");
  const Json eu =
      call_json("provision_environment", {org, std::string("eu"), null_value(), null_value(),
                                          std::string("eu"), std::string("postgres")});
  const Json here = environment(org, "here", "postgres");
  postgres::Work w = postgres::load_work(host, eu["job"]["id"].get<std::string>());
  ASSERT_TRUE(w.server.has_value());
  EXPECT_EQ(w.server->host, "10.0.0.5");
  EXPECT_EQ(w.server->port, 5433);
  ASSERT_TRUE(w.server->password.has_value());
  EXPECT_EQ(w.server->password->view(), "s3cret");
  EXPECT_FALSE(postgres::load_work(host, here["job"]["id"].get<std::string>()).server);

  Json hosts = call_json("list_database_hosts");
  ASSERT_EQ(hosts.size(), 1u);
  EXPECT_EQ(hosts[0]["databases"], 1);
  EXPECT_EQ(code_of([&] { call_json("remove_database_host", {std::string("eu-1")}); }),
            Code::conflict);
  EXPECT_EQ(code_of([&] { call_json("remove_database_host", {std::string("nope")}); }),
            Code::not_found);
  call_json("add_database_host",
            {std::string("eu-2"), std::string("eu"), std::string("10.0.0.6"), null_value(),
             null_value(), null_value(), null_value(), null_value(), false});
  EXPECT_EQ(call_json("remove_database_host", {std::string("eu-2")})["host"]["name"], "eu-2");
}

// The database a URL names on this server (used by the Postgres host's
// database_exists); anything that may point elsewhere is nullopt.
TEST(PgDriverUrls, LocalDatabaseIsNamedOnlyForThisServer) {
  using envdb::postgres::local_database;
  EXPECT_EQ(local_database("postgresql:///envdb_x", "fb", "5432"),
            std::optional<std::string>("envdb_x"));
  EXPECT_EQ(local_database("postgres://localhost:5432/env-abc", "fb", "5432"),
            std::optional<std::string>("env-abc"));
  EXPECT_EQ(local_database("postgresql://u:p@127.0.0.1/db1", "fb", "5432"),
            std::optional<std::string>("db1"));
  EXPECT_EQ(local_database("postgresql://[::1]:5432/db2", "fb", "5432"),
            std::optional<std::string>("db2"));
  EXPECT_EQ(local_database("postgresql://%2Fvar%2Frun%2Fpostgresql/db3", "fb", "5432"),
            std::optional<std::string>("db3"));
  EXPECT_EQ(local_database("postgresql://localhost", "fb", "5432"),
            std::optional<std::string>("fb"));
  // The query string wins.
  EXPECT_EQ(local_database("postgresql://localhost/a?dbname=b", "fb", "5432"),
            std::optional<std::string>("b"));
  EXPECT_EQ(local_database("postgresql://localhost/a?host=db.example.com", "fb", "5432"),
            std::nullopt);
  // Another host, another port, several hosts, an encoded name, another scheme.
  EXPECT_EQ(local_database("postgresql://db.example.com/a", "fb", "5432"), std::nullopt);
  EXPECT_EQ(local_database("postgresql://localhost:5433/a", "fb", "5432"), std::nullopt);
  EXPECT_EQ(local_database("postgresql://localhost,other/a", "fb", "5432"), std::nullopt);
  EXPECT_EQ(local_database("postgresql://localhost/a%20b", "fb", "5432"), std::nullopt);
  EXPECT_EQ(local_database("host=localhost dbname=a", "fb", "5432"), std::nullopt);
  EXPECT_EQ(local_database("postgresql://[::1/a", "fb", "5432"), std::nullopt);
}
