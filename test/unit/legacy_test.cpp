#include <gtest/gtest.h>

#include <filesystem>

#include "env_fixture.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::EnvFixture;
using envdb::test::keys_of;

namespace {

const char* const kV4Table =
    "CREATE TABLE sys_tenant_database (id TEXT PRIMARY KEY, organization_id TEXT NOT NULL, "
    "database_name TEXT NOT NULL, database_url TEXT, auth_token TEXT, status TEXT, region TEXT, "
    "plan TEXT, storage_limit_mb INTEGER, last_accessed_at TEXT, metadata TEXT, created_at TEXT, "
    "updated_at TEXT)";

const char* const kV4Rows =
    "INSERT INTO sys_tenant_database VALUES "
    "('t1', 'org_A', 'acme-db', 'libsql://acme-db.turso.io', 'tok-1', 'active', 'ams', 'pro', "
    "1024, '2024-01-02T03:04:05.678Z', '{\"x\":1}', '2024-01-01 00:00:00', '2024-01-05T00:00:00Z'),"
    "('t2', 'ORG.a', 'beta-db', 'libsql://beta-db.turso.io', '', 'suspended', NULL, NULL, NULL, "
    "NULL, NULL, '2024-02-01T00:00:00Z', '2024-02-01T00:00:00Z'),"
    "('t3', 'org-c', 'gamma-db', 'libsql://gamma-db.turso.io', 'tok-3', 'deleted', 'fra', 'free', "
    "0, NULL, 'not json', '2024-03-01T00:00:00Z', NULL)";

const std::vector<std::string> kV4Keys = {
    "id",   "organizationId", "databaseName",   "databaseUrl", "authToken", "status",   "region",
    "plan", "storageLimitMb", "lastAccessedAt", "metadata",    "createdAt", "updatedAt"};

Json report(int64_t orgs, int64_t envs, int64_t creds, int64_t skipped, bool dry) {
  return Json{{"organizations", orgs},
              {"environments", envs},
              {"credentials", creds},
              {"skipped", skipped},
              {"dryRun", dry}};
}

}  // namespace

// A v4 database that gets envdb: the old table exists before init().
class Legacy : public EnvFixture {
 protected:
  void SetUp() override {
    host.store().exec(kV4Table);
    host.store().exec(kV4Rows);
    EnvFixture::SetUp();
  }
  Json migrate(Value table = null_value(), Value dry = null_value()) {
    return call_json("migrate_legacy_tenant_databases", {table, dry});
  }
  std::string type_of(const std::string& name) {
    auto row = query_one(host.store(), "SELECT type FROM sqlite_master WHERE name = $1", {name});
    return row ? row->text("type") : "";
  }
};

TEST_F(Legacy, InitKeepsTheV4TableUnderANewName) {
  EXPECT_EQ(type_of("sys_tenant_database"), "view");
  EXPECT_EQ(type_of("sys_tenant_database_v4"), "table");
  EXPECT_EQ(count("sys_tenant_database_v4"), 3);
  ASSERT_FALSE(host.notices.empty());
  EXPECT_NE(host.notices.back().find("sys_tenant_database_v4"), std::string::npos);
  host.call("init");  // still idempotent
  EXPECT_EQ(count("sys_tenant_database_v4"), 3);
}

TEST_F(Legacy, InitRefusesWhenBothLegacyNamesExist) {
  test::MemoryHost fresh;
  fresh.store().exec(kV4Table);
  fresh.store().exec("CREATE TABLE sys_tenant_database_v4 (id TEXT)");
  EXPECT_EQ(code_of([&] { fresh.call("init"); }), Code::conflict);
  EXPECT_FALSE(
      query_one(fresh.store(), "SELECT 1 AS x FROM sqlite_master WHERE name = 'sys_environment'"));
}

TEST_F(Legacy, DryRunReportsAndWritesNothing) {
  const auto before = counts();
  const Json r = migrate(null_value(), true);
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"organizations", "environments", "credentials",
                                                  "skipped", "dryRun"}));
  EXPECT_EQ(r, report(3, 3, 2, 0, true));
  EXPECT_EQ(counts(), before);
}

TEST_F(Legacy, MigratesRowsAndIsIdempotent) {
  EXPECT_EQ(migrate(), report(3, 3, 2, 0, false));
  const auto after = counts();
  EXPECT_EQ(migrate(), report(0, 0, 0, 3, false));
  EXPECT_EQ(migrate(null_value(), true), report(0, 0, 0, 3, true));
  EXPECT_EQ(counts(), after);

  // Organizations with slugs derived from their ids, unique by suffix.
  auto slug = [&](const std::string& id) {
    return query_one(host.store(), "SELECT slug FROM envdb.sys_organization WHERE id = $1", {id})
        ->text("slug");
  };
  EXPECT_EQ(slug("org_A"), "org-a");
  EXPECT_EQ(slug("ORG.a"), "org-a-2");
  EXPECT_EQ(slug("org-c"), "org-c");

  auto env_of = [&](const std::string& org) {
    auto row = query_one(host.store(),
                         "SELECT id FROM envdb.sys_environment WHERE "
                         "organization_id = $1 AND is_default",
                         {org});
    EXPECT_TRUE(row) << org;
    return call_json("get_environment", {row->text("id")});
  };
  const Json a = env_of("org_A");
  EXPECT_EQ(a["environment"]["slug"], "default");
  EXPECT_EQ(a["environment"]["envType"], "default");
  EXPECT_EQ(a["environment"]["isProtected"], true);
  EXPECT_EQ(a["environment"]["status"], "active");
  EXPECT_EQ(a["environment"]["region"], "ams");
  EXPECT_EQ(a["environment"]["metadata"], Json({{"plan", "pro"}, {"legacyId", "t1"}}));
  EXPECT_EQ(a["database"]["databaseName"], "acme-db");
  EXPECT_EQ(a["database"]["databaseUrl"], "libsql://acme-db.turso.io");
  EXPECT_EQ(a["database"]["driver"], "turso");
  EXPECT_EQ(a["database"]["storageLimitMb"], 1024);
  EXPECT_EQ(a["database"]["metadata"], Json({{"x", 1}}));
  EXPECT_EQ(a["database"]["createdAt"], "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(a["database"]["provisionedAt"], "2024-01-01T00:00:00.000Z");
  EXPECT_EQ(a["database"]["lastAccessedAt"], "2024-01-02T03:04:05.678Z");
  ASSERT_EQ(a["credentials"].size(), 1u);
  EXPECT_EQ(a["credentials"][0]["scope"], "readwrite");
  EXPECT_EQ(a["credentials"][0]["status"], "active");
  // Sealed, never stored in plaintext.
  auto cipher = query_one(host.store(), "SELECT token_cipher FROM envdb.sys_database_credential");
  EXPECT_EQ(std::get<Blob>((*cipher)["token_cipher"]).bytes.find("tok-1"), std::string::npos);

  const Json b = env_of("ORG.a");
  EXPECT_EQ(b["environment"]["status"], "suspended");
  EXPECT_EQ(b["environment"]["region"], "default");
  EXPECT_EQ(b["environment"]["metadata"], Json({{"legacyId", "t2"}}));
  EXPECT_EQ(b["credentials"], Json::array());  // empty token: nothing to store
  const Json c = env_of("org-c");
  EXPECT_EQ(c["environment"]["status"], "suspended");
  EXPECT_TRUE(c["database"]["storageLimitMb"].is_null());
  EXPECT_EQ(c["database"]["metadata"], Json::object());

  // The deprecated view shows them the v4 way, without tokens.
  auto view = query(host.store(),
                    "SELECT id, organization_id, database_name, auth_token, status, "
                    "plan FROM sys_tenant_database ORDER BY database_name");
  ASSERT_EQ(view.size(), 3u);
  EXPECT_EQ(view[0].text("database_name"), "acme-db");
  EXPECT_TRUE(is_null(view[0]["auth_token"]));
  EXPECT_EQ(view[0].text("plan"), "pro");
  EXPECT_EQ(view[1].text("plan"), "free");
  EXPECT_EQ(count("sys_audit_event", "action = 'legacy.migrate'"), 1);
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.migrate'"), 3);
}

TEST_F(Legacy, ExistingOrganizationsAreReusedOrConflict) {
  // org_A exists but has no environment yet: reused, not created.
  execute(host.store(),
          "INSERT INTO envdb.sys_organization (id, slug, name) VALUES "
          "('org_A', 'taken', 'A')");
  EXPECT_EQ(migrate(null_value(), true), report(2, 3, 2, 0, true));
  EXPECT_EQ(migrate(), report(2, 3, 2, 0, false));
  EXPECT_EQ(query_one(host.store(), "SELECT slug FROM envdb.sys_organization WHERE id = 'org_A'")
                ->text("slug"),
            "taken");
}

TEST_F(Legacy, AnOrganizationWithAnotherDefaultDatabaseIsAConflict) {
  call_json("provision_organization", {std::string("c"), std::string("C"), std::string("org-c"),
                                       null_value(), std::string("turso")});
  const auto before = counts();
  EXPECT_EQ(code_of([&] { migrate(null_value(), true); }), Code::conflict);
  EXPECT_EQ(code_of([&] { migrate(); }), Code::conflict);
  EXPECT_EQ(counts(), before);
}

TEST_F(Legacy, TableNamesAreValidatedAndMustExist) {
  const auto before = counts();
  for (const char* bad : {"a;drop table x", "1abc", "a.b.c", "a b", "\"q\"", "x.", ".x"})
    EXPECT_EQ(code_of([&] { migrate(std::string(bad)); }), Code::invalid_parameter) << bad;
  EXPECT_EQ(code_of([&] { migrate(std::string("no_such_table")); }), Code::not_found);
  EXPECT_EQ(code_of([&] { migrate(std::string("nosuchschema.sys_tenant_database_v4")); }),
            Code::not_found);
  // The deprecated view is not a v4 table.
  EXPECT_EQ(code_of([&] { migrate(std::string("sys_tenant_database")); }), Code::not_found);
  host.store().exec("CREATE TABLE half_v4 (id TEXT, organization_id TEXT)");
  EXPECT_EQ(code_of([&] { migrate(std::string("half_v4")); }), Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(migrate(std::string("main.SYS_TENANT_DATABASE_V4"), true), report(3, 3, 2, 0, true));
}

TEST_F(Legacy, ABadRowStopsTheWholeMigration) {
  execute(host.store(),
          "INSERT INTO sys_tenant_database_v4 (id, organization_id, database_name, "
          "created_at) VALUES ('t9', 'bad org id', 'x-db', '2025-01-01T00:00:00Z')");
  const auto before = counts();
  EXPECT_EQ(code_of([&] { migrate(); }), Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
}

TEST_F(Legacy, TokensNeedAKeyEvenInADryRun) {
  test::MemoryHost bare;
  bare.store().exec(kV4Table);
  bare.store().exec(kV4Rows);
  bare.call("init");
  EXPECT_EQ(code_of([&] {
              bare.call("migrate_legacy_tenant_databases", {null_value(), true});
            }),
            Code::key_unavailable);
  EXPECT_EQ(code_of([&] { bare.call("migrate_legacy_tenant_databases"); }), Code::key_unavailable);
  EXPECT_EQ(query_one(bare.store(), "SELECT count(*) AS n FROM sys_environment")->integer("n"), 0);
}

TEST_F(Legacy, ProvisionTenantDatabaseAnswersTheV4Way) {
  migrate();
  host.warnings.clear();
  const Json r = call_json("provision_tenant_database", {std::string("org_A")});
  EXPECT_EQ(keys_of(r), kV4Keys);
  EXPECT_EQ(r["organizationId"], "org_A");
  EXPECT_EQ(r["databaseName"], "acme-db");
  EXPECT_EQ(r["databaseUrl"], "libsql://acme-db.turso.io");
  EXPECT_TRUE(r["authToken"].is_null());
  EXPECT_EQ(r["status"], "active");
  EXPECT_EQ(r["plan"], "pro");
  EXPECT_EQ(r["region"], "ams");
  EXPECT_EQ(r["storageLimitMb"], 1024);
  EXPECT_EQ(r["metadata"], Json({{"x", 1}}));
  ASSERT_EQ(host.warnings.size(), 1u);
  EXPECT_NE(host.warnings[0].find("deprecated"), std::string::npos);
  EXPECT_EQ(call_json("provision_tenant_database", {std::string("ORG.a")})["plan"], "free");
  // The answer carries nothing else: no token anywhere in it.
  EXPECT_EQ(r.dump().find("tok-1"), std::string::npos);
}

TEST_F(Legacy, ProvisionTenantDatabaseCreatesAMissingDefaultEnvironment) {
  execute(host.store(),
          "INSERT INTO envdb.sys_organization (id, slug, name) VALUES "
          "('org-new', 'new', 'New')");
  const Json r =
      call_json("provision_tenant_database", {std::string("org-new"), std::string("eu")});
  EXPECT_EQ(keys_of(r), kV4Keys);
  EXPECT_EQ(r["status"], "active");
  EXPECT_EQ(r["region"], "eu");
  EXPECT_EQ(r["plan"], "free");
  EXPECT_EQ(r["databaseUrl"].get<std::string>().rfind("file:", 0), 0u);
  EXPECT_TRUE(std::filesystem::exists(r["databaseUrl"].get<std::string>().substr(5)));
  const auto after = counts();
  const Json again = call_json("provision_tenant_database", {std::string("org-new")});
  EXPECT_EQ(again["id"], r["id"]);
  EXPECT_EQ(counts(), after);
  EXPECT_EQ(code_of([&] { host.call("provision_tenant_database", {std::string("nobody")}); }),
            Code::not_found);
  EXPECT_EQ(code_of([&] {
              host.call("provision_tenant_database", {std::string("org-new"), std::string("")});
            }),
            Code::invalid_parameter);
}
