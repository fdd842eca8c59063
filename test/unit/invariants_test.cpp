// The invariant checker: each inconsistency is made with raw SQL (or by hand
// on disk), then check() must report it and check(true) repair it, with an
// audit event per repair, and leave a catalog that checks clean.
#include <gtest/gtest.h>

#include <fstream>

#include "catalog/dataplane.hpp"
#include "core/ids.hpp"
#include "env_fixture.hpp"
#include "surface/invariants.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::EnvFixture;

namespace fs = std::filesystem;

class Check : public EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    org = organization_id("acme", "turso");
  }

  Json check(bool repair = false) { return call_json("check", {repair}); }

  // Runs raw SQL with the catalog's foreign-key triggers out of the way (as
  // a careless restore or a hand edit could), then puts them back with init().
  void bypassing_foreign_keys(const std::vector<std::string>& statements) {
    for (const Row& r : query(host.store(),
                              "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name "
                              "LIKE '%\\_fk%' ESCAPE '\\'"))
      host.store().exec("DROP TRIGGER \"" + r.text("name") + "\"");
    for (const auto& sql : statements) host.store().exec(sql);
    host.call("init");
  }

  // Findings of one kind, as (table, id).
  static std::vector<std::pair<std::string, std::string>> of_kind(const Json& report,
                                                                  const std::string& kind) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Json& f : report["findings"])
      if (f["kind"] == kind)
        out.emplace_back(f["table"].get<std::string>(), f["id"].get<std::string>());
    return out;
  }
  int64_t repairs_audited() { return count("sys_audit_event", "action = 'check.repair'"); }

  std::string org;
};

TEST_F(Check, CleanCatalogHasNoFindings) {
  const Json env = environment(org, "dev", "sqlite");
  call_json("add_environment_member", {env["environment"]["id"].get<std::string>(),
                                       std::string("u1"), std::string("env_user")});
  environment(org, "stage", "postgres");
  const Json report = check();
  EXPECT_EQ(report, (Json{{"ok", true}, {"repaired", 0}, {"findings", Json::array()}}));
  const auto before = counts();
  EXPECT_EQ(check(true)["repaired"], 0);
  EXPECT_EQ(counts(), before);  // nothing to repair, nothing written
}

TEST_F(Check, RepairTakesABoolean) {
  EXPECT_EQ(code_of([&] { host.call("check", {std::string("yes")}); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { host.call("check", {int64_t{2}}); }), Code::invalid_parameter);
  EXPECT_TRUE(check(false)["ok"].get<bool>());
}

TEST_F(Check, OrphanRowsAreReportedThenDeletedWithWhatHangsOffThem) {
  const Json env = environment(org, "dev", "turso");
  const std::string env_id = env["environment"]["id"];
  const std::string db_id = env["database"]["id"];
  call_json("add_environment_member", {env_id, std::string("u1"), std::string("env_user")});
  call_json("issue_credential", {db_id, std::string("readwrite"), std::string("tok-1")});
  call_json("rotate_credential",
            {db_id, std::string("readwrite"), null_value(), std::string("tok-2")});
  const std::string job_id =
      query_one(host.store(), "SELECT id FROM envdb.sys_provisioning_job WHERE environment_id = $1",
                {env_id})
          ->text("id");
  ASSERT_EQ(count("sys_database_credential", "database_id = '" + db_id + "'"), 2);

  bypassing_foreign_keys({"DELETE FROM sys_environment WHERE id = '" + env_id + "'"});

  const auto before = counts();
  const int64_t audited = repairs_audited();
  Json report = check();
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["repaired"], 0);
  const auto orphans = of_kind(report, "orphan_row");
  // The database row, the member and the job lost their environment; the two
  // credentials hang off the database row.
  ASSERT_EQ(orphans.size(), 5u) << report.dump(2);
  EXPECT_EQ(orphans[0], std::make_pair(std::string("sys_environment_database"), db_id));
  EXPECT_EQ(orphans[1].first, "sys_database_credential");
  EXPECT_EQ(orphans[2].first, "sys_database_credential");
  EXPECT_EQ(orphans[3].first, "sys_environment_member");
  EXPECT_EQ(orphans[4], std::make_pair(std::string("sys_provisioning_job"), job_id));
  for (const Json& f : report["findings"]) {
    EXPECT_FALSE(f["repaired"].get<bool>());
    EXPECT_NE(f["detail"].get<std::string>(), "");
  }
  EXPECT_NE(report["findings"][0]["detail"].get<std::string>().find(env_id), std::string::npos);
  EXPECT_EQ(counts(), before);  // a report writes nothing

  report = check(true);
  EXPECT_TRUE(report["ok"].get<bool>()) << report.dump(2);
  EXPECT_EQ(report["repaired"], 5);
  for (const Json& f : report["findings"]) EXPECT_TRUE(f["repaired"].get<bool>());
  EXPECT_EQ(count("sys_environment_database", "id = '" + db_id + "'"), 0);
  EXPECT_EQ(count("sys_database_credential", "database_id = '" + db_id + "'"), 0);
  EXPECT_EQ(count("sys_environment_member", "environment_id = '" + env_id + "'"), 0);
  EXPECT_EQ(count("sys_provisioning_job", "environment_id = '" + env_id + "'"), 0);
  EXPECT_EQ(repairs_audited(), audited + 5);
  auto event = query_one(host.store(),
                         "SELECT subject_type, subject_id, detail FROM envdb.sys_audit_event "
                         "WHERE action = 'check.repair' AND subject_id = $1",
                         {db_id});
  ASSERT_TRUE(event);
  EXPECT_EQ(event->text("subject_type"), "sys_environment_database");
  const Json detail = Json::parse(event->text("detail"));
  EXPECT_EQ(detail["kind"], "orphan_row");
  EXPECT_EQ(detail["action"], "deleted the row");

  EXPECT_EQ(check(), (Json{{"ok", true}, {"repaired", 0}, {"findings", Json::array()}}));
}

TEST_F(Check, EnvironmentWithoutOrganizationTakesItsRowsAlong) {
  const std::string other = organization_id("globex", "turso");
  const auto env_ids = query(host.store(),
                             "SELECT id FROM envdb.sys_environment WHERE organization_id = $1",
                             {other});
  ASSERT_EQ(env_ids.size(), 1u);
  bypassing_foreign_keys({"DELETE FROM sys_organization WHERE id = '" + other + "'"});
  Json report = check();
  // The environment, its database row and its job.
  EXPECT_EQ(of_kind(report, "orphan_row").size(), 3u) << report.dump(2);
  report = check(true);
  EXPECT_EQ(report["repaired"], 3);
  EXPECT_EQ(count("sys_environment", "organization_id = '" + other + "'"), 0);
  EXPECT_TRUE(check()["ok"].get<bool>());
  EXPECT_EQ(count("sys_environment", "organization_id = '" + org + "'"), 1);  // untouched
}

TEST_F(Check, MemberOfAnotherOrganizationIsAnOrphan) {
  const Json env = environment(org, "dev", "turso");
  const std::string other = organization_id("globex", "turso");
  bypassing_foreign_keys(
      {"INSERT INTO sys_environment_member (id, environment_id, organization_id, user_id, role) "
       "VALUES ('" +
       new_uuid_v7() + "', '" + env["environment"]["id"].get<std::string>() + "', '" + other +
       "', 'u9', 'env_user')"});
  const Json report = check();
  ASSERT_EQ(of_kind(report, "orphan_row").size(), 1u);
  EXPECT_EQ(report["findings"][0]["table"], "sys_environment_member");
  EXPECT_EQ(check(true)["repaired"], 1);
  EXPECT_EQ(count("sys_environment_member"), 0);
}

TEST_F(Check, DanglingRotatedFromIsClearedNotDeleted) {
  const Json env = environment(org, "dev", "turso");
  const std::string db_id = env["database"]["id"];
  const Json first =
      call_json("issue_credential", {db_id, std::string("readonly"), std::string("a")});
  const Json second = call_json("rotate_credential",
                                {db_id, std::string("readonly"), null_value(), std::string("b")});
  const std::string first_id = first["credential"]["id"];
  const std::string second_id = second["credential"]["id"];
  bypassing_foreign_keys({"DELETE FROM sys_database_credential WHERE id = '" + first_id + "'"});
  Json report = check();
  ASSERT_EQ(of_kind(report, "orphan_row"), (std::vector<std::pair<std::string, std::string>>{
                                               {"sys_database_credential", second_id}}));
  EXPECT_NE(report["findings"][0]["detail"].get<std::string>().find("rotated_from"),
            std::string::npos);
  report = check(true);
  EXPECT_EQ(report["repaired"], 1);
  auto row =
      query_one(host.store(),
                "SELECT status, rotated_from FROM envdb.sys_database_credential WHERE id = $1",
                {second_id});
  ASSERT_TRUE(row);  // still there, still active
  EXPECT_EQ(row->text("status"), "active");
  EXPECT_FALSE(row->opt_text("rotated_from"));
  EXPECT_TRUE(check()["ok"].get<bool>());
}

TEST_F(Check, ActiveEnvironmentWithoutDatabaseRowIsMarkedFailed) {
  const std::string id = new_uuid_v7();
  execute(host.store(),
          "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "status) VALUES ($1, $2, 'ghost', 'Ghost', 'development', 'default', 'active')",
          {id, org});
  Json report = check();
  ASSERT_EQ(of_kind(report, "active_without_database"),
            (std::vector<std::pair<std::string, std::string>>{{"sys_environment", id}}));
  const int64_t audited = repairs_audited();
  report = check(true);
  EXPECT_EQ(report["repaired"], 1);
  EXPECT_TRUE(report["ok"].get<bool>());
  EXPECT_EQ(query_one(host.store(), "SELECT status FROM envdb.sys_environment WHERE id = $1", {id})
                ->text("status"),
            "failed");
  EXPECT_EQ(repairs_audited(), audited + 1);
  auto event = query_one(host.store(),
                         "SELECT environment_id, organization_id FROM envdb.sys_audit_event "
                         "WHERE action = 'check.repair'");
  EXPECT_EQ(event->text("environment_id"), id);
  EXPECT_EQ(event->text("organization_id"), org);
  EXPECT_TRUE(check()["ok"].get<bool>());
}

TEST_F(Check, SqliteEnvironmentWhoseFileIsGoneIsMarkedFailedAndCanBeRetried) {
  const Json env = environment(org, "dev", "sqlite");
  const std::string id = env["environment"]["id"];
  const std::string url = env["database"]["databaseUrl"];
  ASSERT_EQ(url.substr(0, 5), "file:");
  const std::string path = url.substr(5);
  EXPECT_EQ(host.database_exists("sqlite", env["database"]["databaseName"].get<std::string>(), url),
            true);
  fs::remove(path);
  EXPECT_EQ(host.database_exists("sqlite", env["database"]["databaseName"].get<std::string>(), url),
            false);
  EXPECT_EQ(host.database_exists("turso", "x", std::nullopt), std::nullopt);

  Json report = check();
  ASSERT_EQ(of_kind(report, "active_without_database").size(), 1u) << report.dump(2);
  EXPECT_NE(report["findings"][0]["detail"].get<std::string>().find(path), std::string::npos);
  EXPECT_EQ(check(true)["repaired"], 1);
  EXPECT_EQ(call_json("get_environment", {id})["environment"]["status"], "failed");
  // From failed the ordinary way back: a new file.
  call_json("retry_environment", {id});
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(check()["ok"].get<bool>());
}

// The file is always <sqlite_data_dir>/<database_name>.db; a URL naming any
// other file is a row envdb does not act on (invalid_row), so whether "its"
// file exists cannot be told.
TEST_F(Check, SqliteFileExistsLooksOnlyInsideTheDataDirectory) {
  const std::string name = "env-aaaaaaaaaaaaaaaaaaaaaaaaaa";
  EXPECT_EQ(invariants::sqlite_file_exists(host, name, std::nullopt), false);
  fs::create_directories(data_dir);
  std::ofstream(data_dir + "/" + name + ".db") << "x";
  EXPECT_EQ(invariants::sqlite_file_exists(host, name, std::nullopt), true);
  EXPECT_EQ(invariants::sqlite_file_exists(host, name, "file:" + data_dir + "/" + name + ".db"),
            true);
  std::ofstream(dir + "/elsewhere.db") << "x";
  EXPECT_EQ(invariants::sqlite_file_exists(host, name,
                                           std::string("file:" + dir + "/elsewhere.db")),
            std::nullopt);
  EXPECT_EQ(invariants::sqlite_file_exists(host, "../escape", std::nullopt), std::nullopt);
  fs::remove(data_dir + "/" + name + ".db");
  fs::create_directories(data_dir + "/" + name + ".db");
  EXPECT_EQ(invariants::sqlite_file_exists(host, name, std::nullopt), false);  // not a file
}

TEST_F(Check, TemporaryFilesAreDeleted) {
  environment(org, "dev", "sqlite");  // a registered file stays
  const std::string temp = data_dir + "/env-bbbbbbbbbbbbbbbbbbbbbbbbbb.db.tmp-0123456789abcdef";
  std::ofstream(temp) << "half";
  std::ofstream(temp + "-journal") << "half";
  std::ofstream(data_dir + "/notes.txt") << "not envdb's";
  std::ofstream(data_dir + "/env-short.db") << "not envdb's";
  const auto before = files_in_data_dir();

  Json report = check();
  const auto files = of_kind(report, "file_without_registry");
  ASSERT_EQ(files.size(), 1u) << report.dump(2);
  EXPECT_EQ(files[0].second, temp);
  EXPECT_EQ(files_in_data_dir(), before);

  report = check(true);
  EXPECT_EQ(report["repaired"], 1);
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_FALSE(fs::exists(temp + "-journal"));
  EXPECT_TRUE(fs::exists(data_dir + "/notes.txt"));
  EXPECT_TRUE(fs::exists(data_dir + "/env-short.db"));
  EXPECT_EQ(files_in_data_dir().size(), before.size() - 2);
  EXPECT_TRUE(check()["ok"].get<bool>());
}

TEST_F(Check, UnregisteredFileOfThisCatalogIsMovedAside) {
  // What a provisioning killed between the rename and the commit leaves: the
  // file in place, stamped, and no registry row.
  const std::string name = database_name_for(new_uuid_v7());
  const std::string path = data_dir + "/" + name + ".db";
  fs::create_directories(data_dir);
  {
    auto file = host.open_database_file(path);
    dataplane::initialize(*file, new_uuid_v7(), org, name);
  }
  Json report = check();
  ASSERT_EQ(of_kind(report, "file_without_registry"),
            (std::vector<std::pair<std::string, std::string>>{{"sys_environment_database", path}}));
  EXPECT_TRUE(fs::exists(path));
  const int64_t audited = repairs_audited();
  report = check(true);
  EXPECT_EQ(report["repaired"], 1) << report.dump(2);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(data_dir + "/unregistered/" + name + ".db"));
  EXPECT_EQ(repairs_audited(), audited + 1);
  EXPECT_TRUE(check()["ok"].get<bool>());

  // The same name again does not overwrite what was moved before.
  {
    auto file = host.open_database_file(path);
    dataplane::initialize(*file, new_uuid_v7(), org, name);
  }
  EXPECT_EQ(check(true)["repaired"], 1);
  EXPECT_TRUE(fs::exists(data_dir + "/unregistered/" + name + ".db"));
  EXPECT_TRUE(fs::exists(data_dir + "/unregistered/" + name + ".1.db"));
}

TEST_F(Check, FileOfAnotherCatalogIsReportedAndLeftInPlace) {
  const std::string name = database_name_for(new_uuid_v7());
  const std::string path = data_dir + "/" + name + ".db";
  fs::create_directories(data_dir);
  {
    auto file = host.open_database_file(path);
    dataplane::initialize(*file, new_uuid_v7(), new_uuid_v7(), name);  // unknown organization
  }
  const std::string unstamped = data_dir + "/" + database_name_for(new_uuid_v7()) + ".db";
  std::ofstream(unstamped) << "not a database";
  Json report = check(true);
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["repaired"], 0);
  ASSERT_EQ(of_kind(report, "file_without_registry").size(), 2u);
  for (const Json& f : report["findings"]) EXPECT_FALSE(f["repaired"].get<bool>());
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(fs::exists(unstamped));
}

TEST_F(Check, FileOfAnOrphanDatabaseRowIsMovedWhenTheRowGoes) {
  const Json env = environment(org, "dev", "sqlite");
  const std::string env_id = env["environment"]["id"];
  const std::string path = env["database"]["databaseUrl"].get<std::string>().substr(5);
  bypassing_foreign_keys({"DELETE FROM sys_environment WHERE id = '" + env_id + "'"});
  Json report = check();
  EXPECT_EQ(of_kind(report, "file_without_registry").size(), 1u) << report.dump(2);
  report = check(true);
  EXPECT_TRUE(report["ok"].get<bool>()) << report.dump(2);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(data_dir + "/unregistered/" + fs::path(path).filename().string()));
}

TEST_F(Check, CredentialsUnderAMissingKeyAreReportedNeverRepaired) {
  const Json env = environment(org, "dev", "sqlite");
  const std::string db_id = env["database"]["id"];
  ASSERT_EQ(count("sys_database_credential", "database_id = '" + db_id + "'"), 3);
  EXPECT_TRUE(check()["ok"].get<bool>());
  host.keyring().clear();
  host.keyring().add("k2", crypto::SecretBytes(crypto::random_bytes(32)));
  // Revoked credentials do not count: nothing will ever open them.
  const std::string revoked =
      query_one(host.store(),
                "SELECT id FROM envdb.sys_database_credential WHERE database_id = $1 AND scope = "
                "'readwrite'",
                {db_id})
          ->text("id");
  call_json("revoke_credential", {revoked});

  const auto before = counts();
  const Json report = check(true);
  const auto missing = of_kind(report, "credential_key_missing");
  ASSERT_EQ(missing.size(), 2u) << report.dump(2);  // admin and readonly
  for (auto& m : missing) EXPECT_NE(m.second, revoked);
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["repaired"], 0);
  EXPECT_FALSE(report["findings"][0]["repaired"].get<bool>());
  EXPECT_NE(report["findings"][0]["detail"].get<std::string>().find("'k1'"), std::string::npos);
  EXPECT_EQ(counts(), before);
}

TEST_F(Check, StaleRunningJobsGoBackToPending) {
  environment(org, "dev", "turso");
  const Json claimed =
      call_json("claim_provisioning_jobs", {std::string("turso"), int64_t{10}, std::string("w1")});
  ASSERT_EQ(claimed.size(), 2u);
  const std::string stale_id = claimed[0]["id"];
  EXPECT_TRUE(check()["ok"].get<bool>());  // just claimed: not stale
  execute(host.store(),
          "UPDATE envdb.sys_provisioning_job SET started_at = '2020-01-01T00:00:00.000Z' "
          "WHERE id = $1",
          {stale_id});
  Json report = check();
  ASSERT_EQ(of_kind(report, "stale_job"),
            (std::vector<std::pair<std::string, std::string>>{{"sys_provisioning_job", stale_id}}));
  EXPECT_NE(report["findings"][0]["detail"].get<std::string>().find("'w1'"), std::string::npos);

  host.call("config", {std::string("job_claim_timeout_seconds"), std::string("0")});  // never
  EXPECT_TRUE(check()["ok"].get<bool>());
  host.call("config", {std::string("job_claim_timeout_seconds"), std::string("3600")});

  report = check(true);
  EXPECT_EQ(report["repaired"], 1);
  auto job = query_one(host.store(),
                       "SELECT status, worker, started_at, attempts FROM "
                       "envdb.sys_provisioning_job WHERE id = $1",
                       {stale_id});
  EXPECT_EQ(job->text("status"), "pending");
  EXPECT_FALSE(job->opt_text("worker"));
  EXPECT_FALSE(job->opt_text("started_at"));
  EXPECT_EQ(job->integer("attempts"), 1);  // claims keep counting
  // The other claim is fresh and stays running.
  EXPECT_EQ(count("sys_provisioning_job", "status = 'running'"), 1);
  // Claimed again by the next worker.
  const Json again = call_json("claim_provisioning_jobs", {std::string("turso")});
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0]["id"], stale_id);
  EXPECT_TRUE(check()["ok"].get<bool>());
}

TEST_F(Check, ARepairThatFailsLeavesNothingChanged) {
  // Two findings; the second repair is refused by a trigger: the first one and
  // its audit event must not stay behind.
  const std::string ghost = new_uuid_v7();
  execute(host.store(),
          "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "status) VALUES ($1, $2, 'ghost', 'Ghost', 'development', 'default', 'active')",
          {ghost, org});
  environment(org, "dev", "turso");
  call_json("claim_provisioning_jobs", {std::string("turso")});
  execute(host.store(),
          "UPDATE envdb.sys_provisioning_job SET started_at = '2020-01-01T00:00:00.000Z'");
  host.store().exec(
      "CREATE TRIGGER refuse_requeue BEFORE UPDATE OF status ON sys_provisioning_job "
      "BEGIN SELECT RAISE(ABORT, 'refused'); END");
  const auto before = counts();
  EXPECT_EQ(check()["findings"].size(), 3u);
  EXPECT_THROW(check(true), Error);
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(query_one(host.store(), "SELECT status FROM envdb.sys_environment WHERE id = $1",
                      {ghost})
                ->text("status"),
            "active");
  host.store().exec("DROP TRIGGER refuse_requeue");
  EXPECT_EQ(check(true)["repaired"], 3);
}
