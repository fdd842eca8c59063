// check()'s judgement of a Postgres server: what the catalog expects against
// the facts observed there (servers::compare), without a server.
#include <gtest/gtest.h>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "postgres/converge.hpp"
#include "postgres/servers.hpp"
#include "postgres/statements.hpp"

using namespace envdb;

namespace {

const int64_t kNow = 1'800'000'000'000;

struct Fixture {
  servers::Expected expected;
  servers::Observed observed;

  servers::ExpectedDatabase& database(bool dropped = false) {
    servers::ExpectedDatabase db;
    db.database_id = new_uuid_v7();
    db.database_name = database_name_for(db.database_id);
    db.environment_id = new_uuid_v7();
    db.organization_id = new_uuid_v7();
    db.dropped = dropped;
    db.roles = postgres::roles_for(db.database_name);
    expected.databases.push_back(db);
    if (!dropped) observed.databases.insert(db.database_name);
    for (const std::string* r :
         {&db.roles.owner, &db.roles.admin, &db.roles.readwrite, &db.roles.readonly})
      if (!dropped) observed.roles[*r] = {};
    return expected.databases.back();
  }

  // A credential's login, as the catalog wants it and as the server has it.
  servers::ExpectedLogin& login(servers::ExpectedDatabase& db, bool live, bool server_login) {
    servers::ExpectedLogin l;
    l.credential_id = new_uuid_v7();
    l.name = postgres::login_name(db.database_name, "readwrite", l.credential_id);
    l.scope_role = db.roles.readwrite;
    l.live = live;
    l.valid_until_ms = kNow + 3600'000;
    db.logins.push_back(l);
    servers::ObservedRole r;
    r.login = server_login;
    r.valid_until_ms = l.valid_until_ms;
    r.member_of = {l.scope_role};
    observed.roles[l.name] = r;
    return db.logins.back();
  }

  std::vector<servers::Finding> compare() {
    return servers::compare(expected, observed, "the local server");
  }
};

}  // namespace

TEST(Servers, AServerThatAgreesHasNoFinding) {
  Fixture f;
  auto& db = f.database();
  f.login(db, true, true);
  f.login(db, false, false);
  EXPECT_TRUE(f.compare().empty());
}

TEST(Servers, ARevokedLoginThatCanLogInIsDisabledAndItsSessionsEnded) {
  Fixture f;
  auto& db = f.database();
  const std::string name = f.login(db, false, true).name;
  auto out = f.compare();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, "login_mismatch");
  EXPECT_EQ(out[0].table, "sys_database_credential");
  EXPECT_EQ(out[0].id, db.logins[0].credential_id);
  EXPECT_NE(out[0].detail.find("can log in"), std::string::npos);
  ASSERT_EQ(out[0].statements.size(), 2u);
  EXPECT_EQ(out[0].statements[0], "ALTER ROLE \"" + name + "\" NOLOGIN");
  EXPECT_NE(out[0].statements[1].find("pg_terminate_backend"), std::string::npos);
  EXPECT_EQ(out[0].database_id, db.database_id);
}

TEST(Servers, ALiveLoginWithTheWrongExpiryOrMembershipsIsPutRight) {
  Fixture f;
  auto& db = f.database();
  const auto& l = f.login(db, true, false);
  f.observed.roles[l.name].valid_until_ms = std::nullopt;
  f.observed.roles[l.name].member_of = {db.roles.admin};
  auto out = f.compare();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, "login_mismatch");
  const std::string q = "\"" + l.name + "\"";
  EXPECT_EQ(out[0].statements,
            (std::vector<std::string>{"ALTER ROLE " + q + " LOGIN VALID UNTIL '" +
                                          iso_from_ms(*l.valid_until_ms) + "'",
                                      "REVOKE \"" + db.roles.admin + "\" FROM " + q,
                                      "GRANT \"" + db.roles.readwrite + "\" TO " + q}));
  // Within a second is the same VALID UNTIL (microseconds against milliseconds).
  Fixture g;
  auto& db2 = g.database();
  const auto& l2 = g.login(db2, true, true);
  g.observed.roles[l2.name].valid_until_ms = *l2.valid_until_ms + 999;
  EXPECT_TRUE(g.compare().empty());
}

TEST(Servers, AScopeRoleThatCanLogInIsReported) {
  Fixture f;
  auto& db = f.database();
  f.observed.roles[db.roles.owner].login = true;
  auto out = f.compare();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, "login_mismatch");
  EXPECT_EQ(out[0].role, db.roles.owner);
}

TEST(Servers, MissingDatabaseAndLoginAreReportedNotInvented) {
  Fixture f;
  auto& db = f.database();
  const auto& l = f.login(db, true, true);
  f.observed.roles.erase(l.name);
  auto out = f.compare();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, "login_missing");
  EXPECT_TRUE(out[0].statements.empty());
  f.observed.databases.clear();
  out = f.compare();
  ASSERT_EQ(out.size(), 1u);  // no login is asked for in a database that is not there
  EXPECT_EQ(out[0].kind, "database_missing");
}

TEST(Servers, RolesLeftByADropAreDropped) {
  Fixture f;
  auto& db = f.database(true);
  f.observed.roles[db.roles.admin] = {};
  f.observed.roles[db.database_name + "_w_abc"] = {true, std::nullopt, {}};
  auto out = f.compare();
  ASSERT_EQ(out.size(), 2u);
  for (const auto& x : out) {
    EXPECT_EQ(x.kind, "role_leftover");
    EXPECT_NE(x.detail.find("dropped database"), std::string::npos);
    EXPECT_NE(x.statements.back().find("DROP ROLE IF EXISTS"), std::string::npos);
    EXPECT_FALSE(x.verify_sql.empty());
  }
  // A dropped database still there is reported, never dropped by check.
  f.observed.databases.insert(db.database_name);
  out = f.compare();
  EXPECT_EQ(out[0].kind, "database_not_dropped");
  EXPECT_TRUE(out[0].statements.empty());
}

TEST(Servers, ForeignNamesAreJudgedOnlyOnARegisteredHost) {
  Fixture f;
  f.database();
  const std::string other = database_name_for(new_uuid_v7());
  f.observed.databases.insert(other);
  f.observed.roles[other + "_owner"] = {};
  // The local server may hold other control planes' databases.
  EXPECT_TRUE(f.compare().empty());
  f.expected.dedicated = true;
  auto out = f.compare();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, "role_leftover");
  EXPECT_EQ(out[0].table, "sys_database_host");
  EXPECT_EQ(out[1].kind, "database_unregistered");
  EXPECT_TRUE(out[1].statements.empty());
}

TEST(Servers, ADatabaseWithWorkInFlightIsNotJudged) {
  Fixture f;
  auto& db = f.database();
  f.login(db, false, true);
  db.in_flight = true;
  f.observed.databases.clear();
  EXPECT_TRUE(f.compare().empty());
}

// check() judges a login by the worker's own rule (converge::login_live), so
// the two never disagree about a login.
TEST(Servers, LoginsWorkOnlyForLiveCredentialsOfActiveEnvironments) {
  const std::string later = iso_from_ms(kNow + 1000), earlier = iso_from_ms(kNow - 1000);
  EXPECT_TRUE(converge::login_live("active", std::nullopt, "active", kNow));
  EXPECT_TRUE(converge::login_live("rotating", later, "active", kNow));
  EXPECT_FALSE(converge::login_live("rotating", earlier, "active", kNow));
  EXPECT_FALSE(converge::login_live("revoked", std::nullopt, "active", kNow));
  EXPECT_FALSE(converge::login_live("active", std::nullopt, "suspended", kNow));
  EXPECT_FALSE(converge::login_live("active", std::nullopt, "archived", kNow));
}

TEST(Servers, FactsAreParsedOrRefused) {
  auto o = servers::parse_facts(
      R"({"databases":["env-a"],"roles":[{"name":"env-a_w_x","login":true,"validUntil":5,)"
      R"("memberOf":["env-a_readwrite"]}]})");
  EXPECT_EQ(o.databases, std::set<std::string>{"env-a"});
  EXPECT_TRUE(o.roles.at("env-a_w_x").login);
  EXPECT_EQ(o.roles.at("env-a_w_x").valid_until_ms, 5);
  for (const char* bad : {"", "[]", "{\"databases\":[1],\"roles\":[]}",
                          "{\"databases\":[],\"roles\":[{\"name\":\"x\"}]}"}) {
    try {
      servers::parse_facts(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Code::invalid_parameter);
    }
  }
}

TEST(Servers, TheDatabaseAUrlNames) {
  EXPECT_EQ(servers::url_database("postgresql://localhost:5432/env-abc"), "env-abc");
  EXPECT_EQ(servers::url_database("postgresql://[::1]:5432/env-abc?sslmode=disable"), "env-abc");
  EXPECT_EQ(servers::url_database("postgresql:///envdb_other"), "envdb_other");
  EXPECT_EQ(servers::url_database("postgresql://localhost"), "");
  EXPECT_EQ(servers::url_database("env-abc"), "");
}
