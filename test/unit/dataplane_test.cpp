// The data plane: tables from the catalog definition, migrations with
// checksums, the identity stamp, the SQL functions init_environment_schema,
// environment_schema_version and upgrade_environment_schemas.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "catalog/dataplane.hpp"
#include "catalog/schema.hpp"
#include "core/clock.hpp"
#include "env_fixture.hpp"
#include "fixtures/dataplane_v2.hpp"
#include "surface/api.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::keys_of;
using envdb::test::message_of;
using envdb::test::table_names;
namespace fs = std::filesystem;

namespace {

bool has_index(Store& store, const std::string& name) {
  return query_one(store, "SELECT 1 AS x FROM sqlite_master WHERE type = 'index' AND name = $1",
                   {name})
      .has_value();
}

bool has_column(Store& store, const std::string& table, const std::string& column) {
  return query_one(store, "SELECT 1 AS x FROM pragma_table_info($1) WHERE name = $2",
                   {table, column})
      .has_value();
}

std::vector<std::pair<int64_t, std::string>> ledger(Store& store) {
  std::vector<std::pair<int64_t, std::string>> out;
  for (auto& r :
       query(store, "SELECT version, checksum FROM sys_schema_migration ORDER BY version"))
    out.emplace_back(r.integer("version"), r.text("checksum"));
  return out;
}

Row stamp(Store& store) { return *query_one(store, "SELECT * FROM sys_environment_info"); }

// A database that is not a control plane, reached through the SQL functions.
class Dataplane : public ::testing::Test {
 protected:
  Json init(std::vector<Value> args) {
    return Json::parse(host.call_text("init_environment_schema", std::move(args)));
  }
  Value version() { return host.call("environment_schema_version"); }
  test::MemoryHost host;
};

// A control plane with sqlite environments, for upgrade_environment_schemas.
class DataplaneUpgrade : public test::EnvFixture {
 protected:
  std::string path_of(const Json& environment) {
    return environment["database"]["databaseUrl"].get<std::string>().substr(5);
  }
  Json upgrade() { return call_json("upgrade_environment_schemas"); }
};

}  // namespace

// ---- the definition ----------------------------------------------------------

TEST(DataplaneDefinition, TablesComeFromTheCatalogInBothDialects) {
  std::vector<std::string> names;
  for (auto& t : catalog::data_plane()) {
    names.push_back(t.name);
    EXPECT_TRUE(t.data_plane) << t.name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"sys_schema_migration", "sys_environment_info",
                                             "sys_package_installation"}));
  const std::string pg = catalog::data_plane_ddl(Dialect::postgres);
  const std::string lite = catalog::data_plane_ddl(Dialect::sqlite);
  for (const char* part :
       {"CREATE OR REPLACE FUNCTION envdb.data_plane_guard()",
        "CREATE TABLE envdb.sys_schema_migration", "CREATE TABLE envdb.sys_environment_info",
        "CREATE TABLE envdb.sys_package_installation", "config jsonb NOT NULL DEFAULT '{}'::jsonb",
        "applied_at timestamptz NOT NULL DEFAULT now()",
        "envdb.data_plane_guard('single_row', 'schema_mismatch: sys_environment_info holds exactly "
        "one row', '55000')"})
    EXPECT_NE(pg.find(part), std::string::npos) << part;
  EXPECT_EQ(pg.find("envdb.reject_change"), std::string::npos);  // not in an environment database
  EXPECT_EQ(lite.find("envdb."), std::string::npos);
  for (const char* part :
       {"CREATE TABLE IF NOT EXISTS sys_package_installation", "CHECK (json_valid(config))",
        "UNIQUE (package_id)", "'installing', 'active', 'disabled', 'uninstalling', 'failed'"})
    EXPECT_NE(lite.find(part), std::string::npos) << part;
  // No tenant or environment column in any data-plane table but the stamp.
  for (auto& t : catalog::data_plane())
    for (auto& c : t.columns) {
      EXPECT_NE(c.name, "tenant_id") << t.name;
      if (t.name != "sys_environment_info") {
        EXPECT_NE(c.name, "environment_id") << t.name;
      }
    }
  // The control plane is not affected by the data plane's rules.
  EXPECT_EQ(catalog::control_plane_ddl(Dialect::postgres).find("data_plane_guard"),
            std::string::npos);
}

TEST(DataplaneDefinition, MigrationOneIsGeneratedAndChecksummedPerDialect) {
  const auto& list = dataplane::migrations();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].version, 1);
  EXPECT_EQ(dataplane::current_version(), 1);
  EXPECT_EQ(list[0].sql(Dialect::postgres), catalog::data_plane_ddl(Dialect::postgres));
  EXPECT_EQ(list[0].sql(Dialect::sqlite), catalog::data_plane_ddl(Dialect::sqlite));
  const std::string pg = dataplane::checksum(list[0], Dialect::postgres);
  const std::string lite = dataplane::checksum(list[0], Dialect::sqlite);
  EXPECT_EQ(pg.size(), 64u);
  EXPECT_EQ(pg.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(pg, lite);
  EXPECT_EQ(dataplane::checksum(list[0]), lite);
  // SHA-256 of the text, nothing else.
  const dataplane::Migration abc{9, "x", "abc", ""};
  EXPECT_EQ(dataplane::checksum(abc, Dialect::postgres),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(dataplane::checksum(abc, Dialect::sqlite),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(DataplaneDefinition, FunctionTableRows) {
  const api::Function* init = api::find("init_environment_schema");
  ASSERT_TRUE(init);
  EXPECT_TRUE(init->flags & api::kDataPlane);
  EXPECT_FALSE(init->flags & api::kPure);
  EXPECT_EQ(init->roles, api::kAdmin);
  EXPECT_EQ(init->returns, api::Type::json);
  ASSERT_EQ(init->params.size(), 3u);
  EXPECT_STREQ(init->params[0].name, "environment_id");
  EXPECT_EQ(init->params[0].pg_default, nullptr);
  EXPECT_STREQ(init->params[1].name, "organization_id");
  EXPECT_STREQ(init->params[1].pg_default, "NULL");
  EXPECT_STREQ(init->params[2].name, "database_name");
  EXPECT_STREQ(init->params[2].pg_default, "NULL");
  EXPECT_TRUE(api::available_in(*init, "sqlite"));
  EXPECT_TRUE(api::available_in(*init, "postgres"));

  const api::Function* version = api::find("environment_schema_version");
  ASSERT_TRUE(version);
  EXPECT_TRUE(version->flags & api::kDataPlane);
  EXPECT_FALSE(version->flags & api::kPure);
  EXPECT_EQ(version->roles, api::kAdmin);
  EXPECT_EQ(version->returns, api::Type::integer);
  EXPECT_TRUE(version->params.empty());

  const api::Function* upgrade = api::find("upgrade_environment_schemas");
  ASSERT_TRUE(upgrade);
  EXPECT_EQ(upgrade->flags, api::kSqliteOnly | api::kWrites);
  EXPECT_EQ(upgrade->roles, api::kAdmin);
  EXPECT_EQ(upgrade->returns, api::Type::json);
  EXPECT_FALSE(api::available_in(*upgrade, "postgres"));
}

// ---- the SQL functions in an environment database ----------------------------

TEST_F(Dataplane, SchemaVersionIsNullOnADatabaseWithoutTheTables) {
  EXPECT_TRUE(is_null(version()));
  execute(host.store(), "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)");
  EXPECT_TRUE(is_null(version()));
  EXPECT_EQ(table_names(host.store()), std::vector<std::string>{"customers"});  // nothing created
  // An empty ledger is no version either.
  execute(host.store(),
          "CREATE TABLE sys_schema_migration (version INTEGER, checksum TEXT, "
          "applied_at TEXT)");
  EXPECT_TRUE(is_null(version()));
}

TEST_F(Dataplane, InitCreatesTheTablesWithoutAControlPlaneAndIsIdempotent) {
  const Json first = init({std::string("env-1"), std::string("org-1"), std::string("env-abc")});
  EXPECT_EQ(keys_of(first),
            (std::vector<std::string>{"environmentId", "schemaVersion", "applied"}));
  EXPECT_EQ(first, Json({{"environmentId", "env-1"}, {"schemaVersion", 1}, {"applied", {1}}}));
  EXPECT_EQ(std::get<int64_t>(version()), 1);
  EXPECT_EQ(table_names(host.store()),
            (std::vector<std::string>{"sys_environment_info", "sys_package_installation",
                                      "sys_schema_migration"}));
  const Row s = stamp(host.store());
  EXPECT_EQ(s.text("environment_id"), "env-1");
  EXPECT_EQ(s.text("organization_id"), "org-1");
  EXPECT_EQ(s.text("database_name"), "env-abc");
  EXPECT_EQ(s.integer("schema_version"), 1);
  EXPECT_TRUE(ms_from_iso(s.text("initialized_at")));
  const std::string initialized_at = s.text("initialized_at");
  EXPECT_EQ(ledger(host.store()),
            (std::vector<std::pair<int64_t, std::string>>{
                {1, dataplane::checksum(dataplane::migrations()[0], Dialect::sqlite)}}));

  const Json second = init({std::string("env-1"), std::string("org-1"), std::string("env-abc")});
  EXPECT_EQ(second,
            Json({{"environmentId", "env-1"}, {"schemaVersion", 1}, {"applied", Json::array()}}));
  // Omitted parts of the identity keep the stamp's.
  EXPECT_EQ(init({std::string("env-1")})["applied"], Json::array());
  EXPECT_EQ(stamp(host.store()).text("organization_id"), "org-1");
  EXPECT_EQ(stamp(host.store()).text("initialized_at"), initialized_at);
  EXPECT_EQ(ledger(host.store()).size(), 1u);
}

TEST_F(Dataplane, AnUnknownIdentityIsRecordedOnceAndThenHeld) {
  // Documented choice: on a fresh database organization_id and database_name
  // default to NULL ...
  init({std::string("env-1")});
  Row s = stamp(host.store());
  EXPECT_FALSE(s.opt_text("organization_id"));
  EXPECT_FALSE(s.opt_text("database_name"));
  // ... a later call may record them ...
  EXPECT_EQ(init({std::string("env-1"), std::string("org-1")})["applied"], Json::array());
  EXPECT_EQ(stamp(host.store()).text("organization_id"), "org-1");
  EXPECT_FALSE(stamp(host.store()).opt_text("database_name"));
  init({std::string("env-1"), null_value(), std::string("env-abc")});
  EXPECT_EQ(stamp(host.store()).text("database_name"), "env-abc");
  // ... and from then on they never change.
  EXPECT_EQ(code_of([&] {
              init({std::string("env-1"), std::string("org-2")});
            }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] {
              init({std::string("env-1"), std::string("org-1"), std::string("env-other")});
            }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] {
              execute(host.store(), "UPDATE sys_environment_info SET organization_id = 'x'");
            }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] {
              execute(host.store(), "UPDATE sys_environment_info SET database_name = NULL");
            }),
            Code::schema_mismatch);
  // An empty text is no name.
  EXPECT_EQ(code_of([&] {
              init({std::string("env-1"), std::string("org-1"), std::string("")});
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              init({std::string("env-1"), std::string("bad org")});
            }),
            Code::invalid_parameter);
}

TEST_F(Dataplane, AForeignIdentityIsSchemaMismatchAndChangesNothing) {
  init({std::string("env-1"), std::string("org-1"), std::string("env-abc")});
  const std::string message = message_of([&] { init({std::string("env-2")}); });
  EXPECT_EQ(message,
            "schema_mismatch: environment_id 'env-2' does not match this database, which is "
            "stamped with 'env-1'");
  EXPECT_EQ(code_of([&] {
              init({std::string("env-1"), std::string("org-2")});
            }),
            Code::schema_mismatch);
  EXPECT_EQ(stamp(host.store()).text("environment_id"), "env-1");
  EXPECT_EQ(stamp(host.store()).text("organization_id"), "org-1");
  // The stamp holds one row and never takes another environment's id.
  EXPECT_EQ(code_of([&] {
              execute(host.store(),
                      "INSERT INTO sys_environment_info VALUES ('env-9', 'o', 'n', 1, 'x')");
            }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] {
              execute(host.store(), "UPDATE sys_environment_info SET environment_id = 'env-9'");
            }),
            Code::schema_mismatch);
}

TEST_F(Dataplane, RefusesAControlPlaneDatabase) {
  host.call("init");
  EXPECT_EQ(code_of([&] { init({std::string("env-1")}); }), Code::conflict);
  EXPECT_TRUE(is_null(version()));
}

// ---- migrations ---------------------------------------------------------------

TEST(DataplaneMigrations, AVersionOneFileIsUpgradedToVersionTwoIdempotently) {
  const std::string dir = test::make_temp_dir();
  const std::string path = dir + "/env.db";
  const auto v2 = test::migrations_with_v2();
  {
    auto file = sqlite::SqliteStore::open(path);
    dataplane::initialize(*file, "env-1", std::string("org-1"), std::string("env-abc"));
    execute(*file,
            "INSERT INTO sys_package_installation (id, package_id, version, status) "
            "VALUES ('p1', 'crm', '1.0.0', 'active')");
    EXPECT_FALSE(has_column(*file, "sys_package_installation", "notes"));
  }
  {
    auto file = sqlite::SqliteStore::open(path);
    EXPECT_EQ(dataplane::schema_version(*file), 1);
    const Json r =
        dataplane::initialize(*file, "env-1", std::string("org-1"), std::string("env-abc"), v2);
    EXPECT_EQ(r, Json({{"environmentId", "env-1"}, {"schemaVersion", 2}, {"applied", {2}}}));
    EXPECT_EQ(dataplane::schema_version(*file), 2);
    EXPECT_TRUE(has_index(*file, "sys_package_installation_status_idx"));
    EXPECT_TRUE(has_column(*file, "sys_package_installation", "notes"));
    EXPECT_EQ(stamp(*file).integer("schema_version"), 2);
    EXPECT_EQ(
        query_one(*file, "SELECT package_id FROM sys_package_installation")->text("package_id"),
        "crm");  // data kept
  }
  {
    auto file = sqlite::SqliteStore::open(path);
    const Json again = dataplane::initialize(*file, "env-1", std::nullopt, std::nullopt, v2);
    EXPECT_EQ(again["applied"], Json::array());
    EXPECT_EQ(again["schemaVersion"], 2);
    EXPECT_EQ(ledger(*file), (std::vector<std::pair<int64_t, std::string>>{
                                 {1, dataplane::checksum(v2[0], Dialect::sqlite)},
                                 {2, dataplane::checksum(v2[1], Dialect::sqlite)}}));
    // This build's list stops at 1: the file is newer than it knows.
    const std::string message =
        message_of([&] { dataplane::initialize(*file, "env-1", std::nullopt, std::nullopt); });
    EXPECT_EQ(message.rfind("schema_mismatch: this database is at data-plane schema version 2", 0),
              0u)
        << message;
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(DataplaneMigrations, ChecksumDriftIsSchemaMismatch) {
  auto store = sqlite::SqliteStore::open(":memory:");
  const auto v2 = test::migrations_with_v2();
  dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, v2);
  execute(*store, "UPDATE sys_schema_migration SET checksum = 'edited' WHERE version = 2");
  const std::string message =
      message_of([&] { dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, v2); });
  EXPECT_EQ(message,
            "schema_mismatch: data-plane schema version 2 in this database has checksum 'edited', "
            "which is not this envdb's (schema drift)");
  // A migration whose text changed after it was applied is drift too.
  execute(*store, "UPDATE sys_schema_migration SET checksum = $1 WHERE version = 2",
          {dataplane::checksum(v2[1], Dialect::sqlite)});
  auto changed = v2;
  changed[1].sqlite_sql += "-- edited\n";
  EXPECT_EQ(code_of([&] {
              dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, changed);
            }),
            Code::schema_mismatch);
  EXPECT_EQ(dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, v2)["applied"],
            Json::array());
}

TEST(DataplaneMigrations, GapsInTheLedgerAreSchemaMismatch) {
  auto store = sqlite::SqliteStore::open(":memory:");
  const auto v2 = test::migrations_with_v2();
  dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt);
  execute(*store, "DELETE FROM sys_schema_migration WHERE version = 1");
  execute(*store, "INSERT INTO sys_schema_migration VALUES (2, $1, 'x')",
          {dataplane::checksum(v2[1], Dialect::sqlite)});
  EXPECT_EQ(code_of(
                [&] { dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, v2); }),
            Code::schema_mismatch);
}

TEST(DataplaneMigrations, AFailingMigrationLeavesTheDatabaseAsItWas) {
  auto store = sqlite::SqliteStore::open(":memory:");
  dataplane::initialize(*store, "env-1", std::string("org-1"), std::string("env-abc"));
  auto broken = dataplane::migrations();
  broken.push_back({2, "half a migration",
                    "CREATE INDEX ok_idx ON envdb.sys_package_installation (status);\n"
                    "CREATE INDEX broken_idx ON envdb.no_such_table (x);\n",
                    "CREATE INDEX ok_idx ON sys_package_installation (status);\n"
                    "CREATE INDEX broken_idx ON no_such_table (x);\n"});
  EXPECT_EQ(code_of([&] {
              dataplane::initialize(*store, "env-1", std::nullopt, std::nullopt, broken);
            }),
            Code::internal);
  EXPECT_FALSE(has_index(*store, "ok_idx"));
  EXPECT_EQ(ledger(*store).size(), 1u);
  EXPECT_EQ(stamp(*store).integer("schema_version"), 1);
  // A fresh database is all-or-nothing too: no tables, no stamp.
  auto fresh = sqlite::SqliteStore::open(":memory:");
  EXPECT_EQ(code_of([&] {
              dataplane::initialize(*fresh, "env-1", std::nullopt, std::nullopt, broken);
            }),
            Code::internal);
  EXPECT_EQ(table_names(*fresh), std::vector<std::string>{});
}

TEST(DataplaneMigrations, AMalformedListIsAnInternalError) {
  auto store = sqlite::SqliteStore::open(":memory:");
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e", std::nullopt, std::nullopt, {}); }),
            Code::internal);
  auto skipping = dataplane::migrations();
  skipping.push_back({3, "no version 2", "", ""});
  EXPECT_EQ(code_of(
                [&] { dataplane::initialize(*store, "e", std::nullopt, std::nullopt, skipping); }),
            Code::internal);
  EXPECT_FALSE(dataplane::schema_version(*store));
}

// ---- upgrade_environment_schemas ------------------------------------------------

TEST_F(DataplaneUpgrade, ReportsEveryActiveSqliteEnvironment) {
  const std::string org = organization_id("acme");
  const Json dev = environment(org, "dev");
  const Json suspended = environment(org, "old");
  host.call("set_environment_status",
            {suspended["environment"]["id"].get<std::string>(), std::string("suspended")});
  environment(org, "edge", "turso");  // not a file
  const Json r = upgrade();
  ASSERT_EQ(r.size(), 2u);  // default and dev
  for (auto& e : r) {
    EXPECT_EQ(keys_of(e),
              (std::vector<std::string>{"environmentId", "databaseName", "path", "fromVersion",
                                        "toVersion", "applied", "error"}));
    EXPECT_EQ(e["fromVersion"], 1);
    EXPECT_EQ(e["toVersion"], 1);
    EXPECT_EQ(e["applied"], Json::array());
    EXPECT_TRUE(e["error"].is_null());
    EXPECT_TRUE(fs::exists(e["path"].get<std::string>()));
  }
  EXPECT_EQ(r[1]["environmentId"], dev["environment"]["id"]);
  EXPECT_EQ(r[1]["databaseName"], dev["database"]["databaseName"]);
  EXPECT_EQ(r[1]["path"], path_of(dev));
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.upgrade_schema'"), 0);
}

TEST_F(DataplaneUpgrade, UpgradesVersionOneFilesWithTheirIdentity) {
  const std::string org = organization_id("acme");
  const Json dev = environment(org, "dev");
  const auto v2 = test::migrations_with_v2();
  const Json r = dataplane::upgrade_environments(host, v2);
  ASSERT_EQ(r.size(), 2u);
  for (auto& e : r) {
    EXPECT_EQ(e["fromVersion"], 1);
    EXPECT_EQ(e["toVersion"], 2);
    EXPECT_EQ(e["applied"], Json({2}));
    EXPECT_TRUE(e["error"].is_null()) << e["error"];
  }
  auto file = sqlite::SqliteStore::open(path_of(dev));
  EXPECT_EQ(dataplane::schema_version(*file), 2);
  EXPECT_TRUE(has_column(*file, "sys_package_installation", "notes"));
  EXPECT_EQ(stamp(*file).text("environment_id"), dev["environment"]["id"]);
  EXPECT_EQ(stamp(*file).text("organization_id"), org);
  EXPECT_EQ(stamp(*file).text("database_name"), dev["database"]["databaseName"]);
  EXPECT_EQ(ledger(*file).size(), 2u);
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.upgrade_schema'"), 2);
  // Again: nothing to do, nothing audited.
  for (auto& e : dataplane::upgrade_environments(host, v2)) {
    EXPECT_EQ(e["fromVersion"], 2);
    EXPECT_EQ(e["applied"], Json::array());
  }
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.upgrade_schema'"), 2);
}

TEST_F(DataplaneUpgrade, OneEnvironmentsErrorIsReportedInItsEntry) {
  const std::string org = organization_id("acme");
  const Json missing = environment(org, "missing");
  const Json foreign = environment(org, "foreign");
  const Json drifted = environment(org, "drifted");
  const Json emptied = environment(org, "emptied");
  fs::remove(path_of(missing));
  fs::remove(path_of(foreign));
  {
    auto file = sqlite::SqliteStore::open(path_of(foreign));
    dataplane::initialize(*file, "someone-else", std::nullopt, std::nullopt);
  }
  {
    auto file = sqlite::SqliteStore::open(path_of(drifted));
    execute(*file, "UPDATE sys_schema_migration SET checksum = 'edited'");
  }
  // A file that exists but is empty gets the schema and the stamp.
  fs::remove(path_of(emptied));
  std::ofstream(path_of(emptied)).close();

  const Json r = upgrade();
  ASSERT_EQ(r.size(), 5u);
  std::map<std::string, Json> by_id;
  for (auto& e : r) by_id[e["environmentId"].get<std::string>()] = e;
  const Json& m = by_id.at(missing["environment"]["id"]);
  EXPECT_EQ(m["error"].get<std::string>().rfind("not_found: database file", 0), 0u) << m;
  EXPECT_TRUE(m["fromVersion"].is_null());
  EXPECT_EQ(m["applied"], Json::array());
  EXPECT_FALSE(fs::exists(path_of(missing)));  // not created by the upgrade
  const Json& f = by_id.at(foreign["environment"]["id"]);
  EXPECT_EQ(f["error"].get<std::string>().rfind("schema_mismatch: environment_id", 0), 0u) << f;
  EXPECT_EQ(f["fromVersion"], 1);
  EXPECT_EQ(f["toVersion"], 1);
  const Json& d = by_id.at(drifted["environment"]["id"]);
  EXPECT_NE(d["error"].get<std::string>().find("schema drift"), std::string::npos) << d;
  const Json& e = by_id.at(emptied["environment"]["id"]);
  EXPECT_TRUE(e["error"].is_null()) << e;
  EXPECT_TRUE(e["fromVersion"].is_null());
  EXPECT_EQ(e["toVersion"], 1);
  EXPECT_EQ(e["applied"], Json({1}));
  // The default environment went on as usual.
  int fine = 0;
  for (auto& entry : r) fine += entry["error"].is_null() ? 1 : 0;
  EXPECT_EQ(fine, 2);
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.upgrade_schema'"), 1);
}

TEST_F(DataplaneUpgrade, ProvisioningStillInitializesTheFile) {
  const std::string org = organization_id("acme");
  const Json dev = environment(org, "dev");
  auto file = sqlite::SqliteStore::open(path_of(dev));
  EXPECT_EQ(dataplane::schema_version(*file), dataplane::current_version());
  EXPECT_EQ(ledger(*file),
            (std::vector<std::pair<int64_t, std::string>>{
                {1, dataplane::checksum(dataplane::migrations()[0], Dialect::sqlite)}}));
  EXPECT_EQ(stamp(*file).text("organization_id"), org);
}
