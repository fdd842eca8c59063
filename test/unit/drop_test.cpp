// drop_environment_database: the explicit drop of an archived environment's
// database after drop_grace_seconds (sqlite: the file now; postgres and
// turso: a drop_database job whose completion records the drop).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/clock.hpp"
#include "env_fixture.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::EnvFixture;
using envdb::test::keys_of;
using envdb::test::message_of;
namespace fs = std::filesystem;

namespace {

class Drop : public EnvFixture {
 protected:
  std::string org;
  void SetUp() override {
    EnvFixture::SetUp();
    org = organization_id("acme");
  }
  // An archived environment of `driver`; returns its provision response.
  Json archived(const std::string& slug, const std::string& driver = "sqlite") {
    const Json e = environment(org, slug, driver);
    call_json("archive_environment", {e["environment"]["id"].get<std::string>()});
    return e;
  }
  // Moves the archive `seconds` into the past.
  void age(const std::string& env_id, int64_t seconds) {
    execute(host.store(),
            "UPDATE envdb.sys_environment SET archived_at = $2::timestamptz WHERE id = $1",
            {Value(env_id), Value(iso_from_ms(now_ms() - seconds * 1000))});
  }
  Json drop(const std::string& env_id, std::optional<bool> force = std::nullopt) {
    std::vector<Value> args{env_id};
    if (force) args.push_back(*force);
    return call_json("drop_environment_database", std::move(args));
  }
  Code drop_code(const std::string& env_id, std::optional<bool> force = std::nullopt) {
    return code_of([&] { drop(env_id, force); });
  }
  std::optional<std::string> dropped_at(const std::string& database_id) {
    return query_one(host.store(),
                     "SELECT dropped_at FROM envdb.sys_environment_database WHERE id = $1",
                     {database_id})
        ->opt_text("dropped_at");
  }
};

std::string file_of(const Json& provisioned) {
  return provisioned["database"]["databaseUrl"].get<std::string>().substr(5);
}

}  // namespace

TEST_F(Drop, ArchiveRecordsItsTime) {
  const Json e = environment(org, "dev");
  EXPECT_TRUE(e["environment"]["archivedAt"].is_null());
  const int64_t before = now_ms();
  const Json a = call_json("archive_environment", {e["environment"]["id"].get<std::string>()});
  const auto at = ms_from_iso(a["environment"]["archivedAt"].get<std::string>());
  ASSERT_TRUE(at);
  EXPECT_GE(*at, before - 1);
  EXPECT_LE(*at, now_ms() + 1);
}

TEST_F(Drop, SqliteWaitsForTheGracePeriodThenDeletesTheFile) {
  const Json e = archived("dev");
  const std::string id = e["environment"]["id"], db = e["database"]["id"];
  const std::string path = file_of(e);
  ASSERT_TRUE(fs::exists(path));
  std::ofstream(path + "-wal") << "x";
  std::ofstream(path + "-shm") << "x";
  std::ofstream(path + "-journal") << "x";

  const auto before = counts();
  const std::string refused = message_of([&] { drop(id); });
  EXPECT_EQ(refused.rfind("invalid_transition:", 0), 0u) << refused;
  EXPECT_NE(refused.find("drop_grace_seconds = 604800"), std::string::npos) << refused;
  age(id, 604800 - 60);
  EXPECT_EQ(drop_code(id), Code::invalid_transition);
  EXPECT_EQ(drop_code(id, false), Code::invalid_transition);
  EXPECT_EQ(counts(), before);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_FALSE(dropped_at(db));

  age(id, 604800 + 1);
  const Json d = drop(id);
  EXPECT_EQ(keys_of(d), (std::vector<std::string>{"environment", "database", "job"}));
  EXPECT_EQ(keys_of(d["database"]), test::kDatabaseKeys);
  EXPECT_EQ(d["environment"]["status"], "archived");
  EXPECT_TRUE(d["job"].is_null());
  EXPECT_TRUE(d["database"]["droppedAt"].is_string());
  for (const char* suffix : {"", "-wal", "-shm", "-journal"})
    EXPECT_FALSE(fs::exists(path + suffix)) << suffix;
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.drop_database'"), 1);
  EXPECT_EQ(count("sys_provisioning_job", "kind = 'drop_database'"), 0);

  const std::string again = message_of([&] { drop(id, true); });
  EXPECT_EQ(again.rfind("invalid_transition:", 0), 0u) << again;
  EXPECT_NE(again.find("already dropped"), std::string::npos) << again;
  // check() does not call a dropped database missing.
  const Json c = call_json("check");
  EXPECT_EQ(c["ok"], true) << c.dump();
}

TEST_F(Drop, GraceZeroOrForceDropsAtOnce) {
  const Json a = archived("a"), b = archived("b");
  EXPECT_EQ(drop_code(a["environment"]["id"]), Code::invalid_transition);
  call_json("drop_environment_database", {a["environment"]["id"].get<std::string>(), true});
  EXPECT_FALSE(fs::exists(file_of(a)));
  host.call("config", {std::string("drop_grace_seconds"), std::string("0")});
  drop(b["environment"]["id"]);
  EXPECT_FALSE(fs::exists(file_of(b)));
  EXPECT_EQ(count("sys_environment_database", "dropped_at IS NOT NULL"), 2);
}

TEST_F(Drop, RefusalsWriteNothing) {
  const Json active = environment(org, "live");
  const std::string prod = environment(org, "prod", "sqlite", "production")["environment"]["id"];
  call_json("archive_environment", {prod, true});
  const auto before = counts();
  EXPECT_EQ(drop_code(active["environment"]["id"], true), Code::invalid_transition);
  EXPECT_EQ(drop_code("0190a000-0000-7000-8000-000000000000", true), Code::not_found);
  EXPECT_EQ(drop_code("not an id", true), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { host.call("drop_environment_database", {null_value()}); }),
            Code::invalid_parameter);
  // A protected environment always waits for its grace period.
  EXPECT_EQ(drop_code(prod, true), Code::conflict);
  EXPECT_EQ(drop_code(prod), Code::invalid_transition);
  EXPECT_EQ(code_of([&] {
              host.call("config", {std::string("drop_grace_seconds"), std::string("-1")});
            }),
            Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
  EXPECT_TRUE(fs::exists(file_of(active)));
  // After its grace period a protected environment's database can go.
  age(prod, 604800 + 1);
  EXPECT_TRUE(drop(prod)["database"]["droppedAt"].is_string());
}

TEST_F(Drop, AFileThatCannotBeDeletedLeavesTheRegistryNotDropped) {
  const Json e = archived("dev");
  const std::string id = e["environment"]["id"], db = e["database"]["id"];
  const std::string path = file_of(e);
  // A non-empty directory where the -wal file would be: remove() fails.
  fs::create_directories(path + "-wal/inside");
  const auto before = counts();
  EXPECT_EQ(drop_code(id, true), Code::internal);
  EXPECT_EQ(counts(), before);
  EXPECT_FALSE(dropped_at(db));
  // Once the obstacle is gone, a second call converges.
  fs::remove_all(path + "-wal");
  drop(id, true);
  EXPECT_TRUE(dropped_at(db));
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(Drop, PostgresQueuesAJobWhoseCompletionRecordsTheDrop) {
  const Json e = environment(org, "pg", "postgres");
  const std::string id = e["environment"]["id"], db = e["database"]["id"];
  call_json("claim_provisioning_jobs", {std::string("postgres")});
  call_json("complete_provisioning_job",
            {e["job"]["id"].get<std::string>(), std::string("postgresql://h/x")});
  call_json("archive_environment", {id});
  const Json d = drop(id, true);
  ASSERT_TRUE(d["job"].is_object());
  EXPECT_EQ(d["job"]["kind"], "drop_database");
  EXPECT_EQ(d["job"]["driver"], "postgres");
  EXPECT_EQ(d["job"]["status"], "pending");
  EXPECT_TRUE(d["database"]["droppedAt"].is_null());
  const std::string job = d["job"]["id"];
  // A second call while the job is queued is refused.
  const std::string queued = message_of([&] { drop(id, true); });
  EXPECT_NE(queued.find("already being dropped"), std::string::npos) << queued;
  EXPECT_EQ(count("sys_provisioning_job", "kind = 'drop_database'"), 1);

  const Json jobs = call_json("claim_provisioning_jobs", {std::string("postgres"), int64_t{10}});
  bool claimed = false;
  for (const Json& j : jobs) claimed = claimed || j["id"] == job;
  ASSERT_TRUE(claimed);
  EXPECT_EQ(code_of([&] {
              host.call("complete_provisioning_job", {job, std::string("postgresql://h/x")});
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              host.call("complete_provisioning_job",
                        {job, null_value(), std::string(R"({"admin":"t"})")});
            }),
            Code::invalid_parameter);
  const Json done = call_json("complete_provisioning_job", {job});
  EXPECT_EQ(done["environment"]["status"], "archived");
  EXPECT_EQ(done["job"]["status"], "done");
  EXPECT_TRUE(dropped_at(db));
  EXPECT_EQ(count("sys_database_credential", "database_id = '" + db + "' AND status <> 'revoked'"),
            0);
  EXPECT_EQ(drop_code(id, true), Code::invalid_transition);
}

TEST_F(Drop, TursoJobCanFailAndBeQueuedAgain) {
  // Archived while provisioning: the create job is cancelled, the drop still
  // goes to the worker (the database may exist half-made).
  const Json e = archived("t", "turso");
  const std::string id = e["environment"]["id"], db = e["database"]["id"];
  const std::string first = drop(id, true)["job"]["id"];
  const Json claimed = call_json("claim_provisioning_jobs", {std::string("turso")});
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0]["id"], first);
  EXPECT_EQ(claimed[0]["kind"], "drop_database");
  EXPECT_EQ(claimed[0]["payload"]["databaseName"], e["database"]["databaseName"]);
  const Json failed = call_json("fail_provisioning_job", {first, std::string("turso said no")});
  EXPECT_EQ(failed["environment"]["status"], "archived");
  EXPECT_FALSE(dropped_at(db));
  const std::string second = drop(id, true)["job"]["id"];
  EXPECT_NE(second, first);
  call_json("claim_provisioning_jobs", {std::string("turso")});
  EXPECT_EQ(call_json("complete_provisioning_job", {second})["environment"]["status"], "archived");
  EXPECT_TRUE(dropped_at(db));
}
