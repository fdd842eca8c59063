// sqlite-driver environment databases from the template image: the same
// schema, ledger and stamp as the DDL path, a damaged image dropped (that
// database built by DDL), and the image rebuilt afterwards.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "catalog/dataplane.hpp"
#include "catalog/dataplane_template.hpp"
#include "catalog/row_rules.hpp"
#include "core/ids.hpp"
#include "env_fixture.hpp"
#include "sqlite_store.hpp"

using namespace envdb;

namespace {

class TemplateTest : public test::EnvFixture {
 protected:
  // The path of an environment's database file.
  std::string path_of(const Json& bundle) {
    std::string url = bundle["database"]["databaseUrl"];
    return url.substr(5);
  }
  std::string fingerprint_of(const std::string& path) {
    auto store = sqlite::SqliteStore::open(path);
    return dataplane_template::fingerprint(*store);
  }
  Row stamp_of(const std::string& path) {
    auto store = sqlite::SqliteStore::open(path);
    return *query_one(*store,
                      "SELECT environment_id, organization_id, database_name, schema_version "
                      "FROM envdb.sys_environment_info");
  }
  Row ledger_of(const std::string& path) {
    auto store = sqlite::SqliteStore::open(path);
    return *query_one(*store,
                      "SELECT version, checksum, applied_at FROM envdb.sys_schema_migration");
  }
  // A database file built by DDL alone (dataplane::initialize on a new file).
  std::string ddl_fingerprint() {
    const std::string path = dir + "/by-ddl.db";
    {
      auto store = sqlite::SqliteStore::open(path);
      dataplane::initialize(*store, new_uuid_v7(), new_uuid_v7(), std::string("x"));
    }
    return fingerprint_of(path);
  }
  void expect_stamped(const Json& bundle, const std::string& org) {
    const std::string path = path_of(bundle);
    const Row s = stamp_of(path);
    EXPECT_EQ(s.text("environment_id"), bundle["environment"]["id"].get<std::string>());
    EXPECT_EQ(s.text("organization_id"), org);
    EXPECT_EQ(s.text("database_name"), bundle["database"]["databaseName"].get<std::string>());
    EXPECT_EQ(s.integer("schema_version"), dataplane::current_version());
  }
};

TEST_F(TemplateTest, ProvisionedFilesMatchTheDdlPathAndCarryTheirOwnStamp) {
  dataplane_template::forget();
  const std::string org = organization_id("acme");  // its default environment builds the image
  EXPECT_TRUE(dataplane_template::held());
  const Json a = environment(org, "a");
  const Json b = environment(org, "b");
  const std::string reference = ddl_fingerprint();
  EXPECT_EQ(fingerprint_of(path_of(a)), reference);
  EXPECT_EQ(fingerprint_of(path_of(b)), reference);
  expect_stamped(a, org);
  expect_stamped(b, org);
  // The ledger says this database holds version 1 since it was made.
  const Row ledger = ledger_of(path_of(b));
  EXPECT_EQ(ledger.text("checksum"), dataplane::checksum(dataplane::migrations()[0]));
  EXPECT_GE(ledger.text("applied_at"), b["environment"]["createdAt"].get<std::string>());
  // Nothing but the environments' files in the data directory.
  EXPECT_EQ(files_in_data_dir().size(), 3u);
  // init_environment_schema on a templated file: nothing to apply.
  auto store = sqlite::SqliteStore::open(path_of(a));
  const Json again =
      dataplane::initialize(*store, a["environment"]["id"].get<std::string>(), org, std::nullopt);
  EXPECT_TRUE(again["applied"].empty());
  EXPECT_THROW(dataplane::initialize(*store, new_uuid_v7(), org, std::nullopt), Error);
}

TEST_F(TemplateTest, ADamagedImageIsDroppedAndThatDatabaseBuiltByDdl) {
  dataplane_template::forget();
  const std::string org = organization_id("acme");
  ASSERT_TRUE(dataplane_template::held());
  const std::string reference = ddl_fingerprint();
  // The schema text of a table, a ledger checksum, an index's name: each
  // changed in the image gives a copy that fails to read or differs from the
  // fingerprint; the image is dropped and that database built by DDL.
  const std::string sum = dataplane::checksum(dataplane::migrations()[0]);
  int round = 0;
  for (const std::string& text :
       {std::string("sys_package_installation"), sum, std::string("applied_at")}) {
    SCOPED_TRACE(text);
    const std::string n = std::to_string(++round);
    if (!dataplane_template::held()) environment(org, "warm-" + n);
    ASSERT_TRUE(dataplane_template::damage_for_test(text));
    const Json e = environment(org, "e-" + n);
    EXPECT_FALSE(dataplane_template::held());
    EXPECT_EQ(fingerprint_of(path_of(e)), reference);
    expect_stamped(e, org);
  }
  // The next one builds a fresh image again.
  const Json last = environment(org, "after");
  EXPECT_TRUE(dataplane_template::held());
  EXPECT_EQ(fingerprint_of(path_of(last)), reference);
  const Json c = call_json("check");
  EXPECT_EQ(c["ok"], true) << c.dump();
}

TEST_F(TemplateTest, TheFingerprintSeesAStamp) {
  // An image holding an identity (a foreign template) is not a template.
  const std::string path = dir + "/stamped.db";
  auto store = sqlite::SqliteStore::open(path);
  dataplane::migrate_unstamped(*store);
  const std::string bare = dataplane_template::fingerprint(*store);
  dataplane::initialize(*store, new_uuid_v7(), std::nullopt, std::nullopt);
  EXPECT_NE(dataplane_template::fingerprint(*store), bare);
}

TEST_F(TemplateTest, TheImageNeverWritesOverAnExistingFile) {
  dataplane_template::forget();
  const std::string org = organization_id("acme");
  const std::string busy = data_dir + "/busy.db";
  { std::ofstream(busy) << "someone else's"; }
  EXPECT_FALSE(dataplane_template::create(host, busy, new_uuid_v7(), org, std::string("busy")));
  EXPECT_TRUE(dataplane_template::held());
  EXPECT_FALSE(dataplane_template::create(host, busy, new_uuid_v7(), org, std::string("busy")));
  std::ifstream in(busy);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "someone else's");
}

TEST_F(TemplateTest, AnUnpublishedFileJournalsInMemoryAndStillRollsBack) {
  const std::string path = dir + "/unpublished.db";
  {
    auto store = dataplane_template::open_unpublished(host, path);
    EXPECT_EQ(query_one(*store, "PRAGMA journal_mode")->text("journal_mode"), "memory");
    store->exec("CREATE TABLE t (x)");
    {
      Atomic tx(*store, "undone");
      execute(*store, "INSERT INTO t (x) VALUES (1)");
      EXPECT_FALSE(std::filesystem::exists(path + "-journal"));
    }  // rolled back
    EXPECT_EQ(query_one(*store, "SELECT count(*) AS n FROM t")->integer("n"), 0);
  }
  // The mode was the connection's: the file itself keeps a rollback journal.
  auto again = sqlite::SqliteStore::open(path);
  EXPECT_EQ(query_one(*again, "PRAGMA journal_mode")->text("journal_mode"), "delete");
}

}  // namespace
