#include <gtest/gtest.h>
#include <sqlite3.h>

#include "catalog/schema.hpp"
#include "core/clock.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "core/version.hpp"
#include "sql_translate.hpp"
#include "sqlite_store.hpp"
#include "test_host.hpp"

using namespace envdb;

TEST(Errors, MessageStartsWithCodeWord) {
  Error e(Code::not_found, "environment_id 'x' names no environment");
  EXPECT_STREQ(e.what(), "not_found: environment_id 'x' names no environment");
  EXPECT_STREQ(code_sqlstate(Code::invalid_parameter), "22023");
}

TEST(Errors, QuoteValueEscapesControlBytesAndTruncates) {
  EXPECT_EQ(quote_value(std::string("a\0b", 3)), "'a\\x00b'");
  EXPECT_EQ(quote_value("it's"), "'it''s'");
  EXPECT_EQ(quote_value(std::string(200, 'x')).size(), 80u + 2 + 3);
}

TEST(Errors, HostMessagesKeepEnvdbCodeWords) {
  try {
    throw_host_error(Code::internal, "not_found: sys_environment.organization_id names no row");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::not_found);
    EXPECT_STREQ(e.what(), "not_found: sys_environment.organization_id names no row");
  }
  try {
    throw_host_error(Code::internal, "disk I/O error");
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::internal);
  }
}

TEST(Clock, IsoRoundTrip) {
  EXPECT_EQ(iso_from_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(iso_from_ms(1767323045678), "2026-01-02T03:04:05.678Z");
  EXPECT_EQ(ms_from_iso("2026-01-02T03:04:05.678Z"), 1767323045678);
  EXPECT_EQ(ms_from_iso("2026-01-02 04:04:05.678+01"), 1767323045678);
  EXPECT_EQ(ms_from_iso("2026-01-02 03:04:05.678+00:00"), 1767323045678);
  EXPECT_EQ(ms_from_iso("2026-01-02"), 1767312000000);
  EXPECT_FALSE(ms_from_iso("yesterday"));
  EXPECT_FALSE(ms_from_iso("2026-13-02T00:00:00Z"));
  EXPECT_FALSE(ms_from_iso("2026-01-02T00:00:00Zjunk"));
}

TEST(Ids, UuidV7ShapeAndOrder) {
  std::string a = new_uuid_v7(), b = new_uuid_v7();
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '7');
  EXPECT_NE(a, b);
  EXPECT_TRUE(is_valid_id(a));
}

TEST(Ids, UuidV7SortsInCreationOrderWithinAMillisecond) {
  std::string previous = new_uuid_v7();
  for (int i = 0; i < 20000; ++i) {
    std::string next = new_uuid_v7();
    ASSERT_LT(previous, next) << "at " << i;
    ASSERT_EQ(next[14], '7');
    ASSERT_TRUE(next[19] == '8' || next[19] == '9' || next[19] == 'a' || next[19] == 'b');
    previous = next;
  }
}

TEST(Ids, DatabaseNameIsStableAndPortable) {
  const std::string name = database_name_for("01890a5d-ac96-774b-bcce-b302099a8057");
  EXPECT_EQ(name.size(), 30u);
  EXPECT_EQ(name.rfind("env-", 0), 0u);
  EXPECT_EQ(name, database_name_for("01890a5d-ac96-774b-bcce-b302099a8057"));
  for (char c : name.substr(4)) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'));
  EXPECT_NE(name, database_name_for("01890a5d-ac96-774b-bcce-b302099a8058"));
}

TEST(Ids, SlugsAndIds) {
  EXPECT_TRUE(is_valid_slug("prod-eu-1"));
  EXPECT_FALSE(is_valid_slug("-prod"));
  EXPECT_FALSE(is_valid_slug("Prod"));
  EXPECT_FALSE(is_valid_slug(std::string(64, 'a')));
  EXPECT_TRUE(is_valid_slug(std::string(63, 'a')));
  EXPECT_TRUE(is_valid_id("org_2abc:x.y-z"));
  EXPECT_FALSE(is_valid_id("_org"));
  EXPECT_FALSE(is_valid_id("a b"));
  EXPECT_FALSE(is_valid_id(std::string(129, 'a')));
}

TEST(SqlTranslate, RewritesParametersCastsAndSchema) {
  EXPECT_EQ(sqlite::translate_sql("SELECT $1::timestamptz FROM envdb.sys_config WHERE k = $12"),
            "SELECT ?1 FROM sys_config WHERE k = ?12");
  EXPECT_EQ(sqlite::translate_sql("SELECT 'envdb.$1::x', \"envdb.y\""),
            "SELECT 'envdb.$1::x', \"envdb.y\"");
  EXPECT_EQ(sqlite::translate_sql("SELECT myenvdb.x"), "SELECT myenvdb.x");
}

// The extension keeps statements between calls only while it can finalize
// them before the connection closes; a cache that outgrows its bound, or a
// store that stops keeping, finalizes them all.
TEST(SqliteStore, KeptStatementsAreBoundedAndFinalizedWhenKeepingStops) {
  auto store = sqlite::SqliteStore::open(":memory:");
  auto run = [&](const std::string& sql) {
    auto stmt = store->prepare(sql);
    EXPECT_TRUE(stmt->step());
  };
  run("SELECT 1");
  store->end_call();
  EXPECT_TRUE(store->cached_statements().empty()) << "not keeping: finalized at the end of a call";

  store->keep_statements(true);
  run("SELECT 1");
  run("SELECT 1");  // the same text reuses the one prepared statement
  store->end_call();
  ASSERT_EQ(store->cached_statements().size(), 1u);
  EXPECT_EQ(store->cached_statements()[0].second, 1);

  for (size_t i = 0; i <= sqlite::SqliteStore::kMaxCached; ++i) run("SELECT " + std::to_string(i));
  store->end_call();
  EXPECT_TRUE(store->cached_statements().empty()) << "past kMaxCached the cache starts over";

  run("SELECT 2");
  store->keep_statements(false);
  EXPECT_TRUE(store->cached_statements().empty());
  EXPECT_EQ(sqlite3_next_stmt(store->handle(), nullptr), nullptr) << "every statement finalized";
}

TEST(Catalog, SqliteDdlIsIdempotentAndEnforcesRules) {
  test::MemoryHost host;
  host.store().exec(catalog::control_plane_ddl(Dialect::sqlite));
  host.store().exec(catalog::control_plane_ddl(Dialect::sqlite));
  execute(host.store(),
          "INSERT INTO envdb.sys_organization (id, slug, name) VALUES ('o1', 'acme', 'Acme')");
  // Slug format is enforced by the table, not only by the functions.
  EXPECT_THROW(execute(host.store(),
                       "INSERT INTO envdb.sys_organization (id, slug, name) "
                       "VALUES ('o2', 'Bad Slug', 'x')"),
               Error);
  // Foreign keys hold without PRAGMA foreign_keys.
  try {
    execute(host.store(),
            "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
            "status) VALUES ('e1', 'nope', 'dev', 'Dev', 'development', 'r', 'active')");
    FAIL() << "expected not_found";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::not_found);
  }
}

TEST(Catalog, PostgresDdlNamesEverythingInSchemaEnvdb) {
  const std::string ddl = catalog::control_plane_ddl(Dialect::postgres);
  EXPECT_NE(ddl.find("CREATE TABLE envdb.sys_environment ("), std::string::npos);
  EXPECT_NE(ddl.find("timestamptz"), std::string::npos);
  EXPECT_EQ(ddl.find("IF NOT EXISTS"), std::string::npos);
}

TEST(Api, VersionAndUnknownSetting) {
  test::MemoryHost host;
  EXPECT_EQ(host.call_text("version"), kVersion);
  host.call("init");
  EXPECT_EQ(host.call_text("config", {std::string("default_driver")}), "sqlite");
  try {
    host.call("config", {std::string("no_such_key")});
    FAIL() << "expected invalid_parameter";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Code::invalid_parameter);
    EXPECT_NE(std::string(e.what()).find("no_such_key"), std::string::npos);
  }
}

TEST(Api, RejectsWrongTypesNulBytesAndExtraArguments) {
  test::MemoryHost host;
  host.call("init");
  EXPECT_THROW(host.call("config", {int64_t{5}}), Error);
  EXPECT_THROW(host.call("config", {std::string("default_region\0x", 16)}), Error);
  EXPECT_THROW(host.call("config", {std::string("a"), std::string("b"), std::string("c")}), Error);
  EXPECT_THROW(host.call("config", {std::string("\xff\xfe")}), Error);
}

TEST(Api, CamelCase) { EXPECT_EQ(api::camel_case("organization_id"), "organizationId"); }
