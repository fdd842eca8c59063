#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "env_fixture.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::EnvFixture;
using envdb::test::keys_of;

namespace {

const std::vector<std::string> kClaimKeys = {"id",           "kind",          "driver",
                                             "status",       "environmentId", "databaseId",
                                             "databaseName", "region",        "attempts",
                                             "payload"};

}  // namespace

class Outbox : public EnvFixture {
 protected:
  void SetUp() override {
    EnvFixture::SetUp();
    org = organization_id("acme");
  }
  std::string org;

  // The plaintext a credential row opens to, with the test's key.
  std::string open_credential(const std::string& credential_id) {
    // Format 2: bound to the database's name and URL as well.
    auto row = query_one(host.store(),
                         "SELECT c.database_id, c.scope, c.kms_key_id, c.token_cipher, "
                         "d.database_name, d.database_url FROM envdb.sys_database_credential c "
                         "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
                         "WHERE c.id = $1",
                         {credential_id});
    const auto& cipher = std::get<Blob>((*row)["token_cipher"]).bytes;
    auto plain =
        crypto::open(host.keyring().key(row->text("kms_key_id")), cipher,
                     crypto::bound_credential_aad(credential_id, row->text("database_id"),
                                                  row->text("scope"), row->text("database_name"),
                                                  row->opt_text("database_url")),
                     crypto::kEnvelopeVersionBound);
    return std::string(plain.view());
  }
};

TEST_F(Outbox, ClaimMarksJobsRunningOldestFirst) {
  const Json a = environment(org, "a", "turso");
  const Json b = environment(org, "b", "turso");
  environment(org, "p", "postgres");
  Json jobs = call_json("claim_provisioning_jobs",
                        {std::string("turso"), int64_t{10}, std::string("worker-1")});
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(keys_of(jobs[0]), kClaimKeys);
  EXPECT_EQ(keys_of(jobs[1]), kClaimKeys);
  // Oldest first: (created_at, id) order; a and b may share a millisecond.
  auto created = [&](const Json& job) {
    return query_one(host.store(),
                     "SELECT created_at FROM envdb.sys_provisioning_job WHERE id = $1",
                     {job["id"].get<std::string>()})
               ->text("created_at") +
           job["id"].get<std::string>();
  };
  EXPECT_LT(created(jobs[0]), created(jobs[1]));
  if (jobs[0]["id"] != a["job"]["id"]) std::swap(jobs[0], jobs[1]);
  EXPECT_EQ(jobs[0]["id"], a["job"]["id"]);
  EXPECT_EQ(jobs[1]["id"], b["job"]["id"]);
  EXPECT_EQ(jobs[0]["kind"], "create_database");
  EXPECT_EQ(jobs[0]["driver"], "turso");
  EXPECT_EQ(jobs[0]["status"], "running");
  EXPECT_EQ(jobs[0]["attempts"], 1);
  EXPECT_EQ(jobs[0]["environmentId"], a["environment"]["id"]);
  EXPECT_EQ(jobs[0]["databaseId"], a["database"]["id"]);
  EXPECT_EQ(jobs[0]["databaseName"], a["database"]["databaseName"]);
  EXPECT_EQ(jobs[0]["region"], "default");
  auto mint_entry = [](const std::string& scope) {
    return Json({{"authorization", scope == "readonly" ? "read-only" : "full-access"},
                 {"expiresAt", nullptr},
                 {"replaces", nullptr},
                 {"scope", scope}});
  };
  EXPECT_EQ(jobs[0]["payload"],
            Json({{"action", "create"},
                  {"credentialIds", Json::array()},
                  {"databaseId", a["database"]["id"]},
                  {"databaseName", a["database"]["databaseName"]},
                  {"databaseUrl", nullptr},
                  {"environmentId", a["environment"]["id"]},
                  {"invalidateTokens", false},
                  {"mint", Json::array({mint_entry("admin"), mint_entry("readwrite"),
                                        mint_entry("readonly")})},
                  {"region", "default"},
                  {"scopes", {"admin", "readwrite", "readonly"}}}));
  auto row = query_one(host.store(),
                       "SELECT worker, started_at FROM envdb.sys_provisioning_job "
                       "WHERE id = $1",
                       {jobs[0]["id"].get<std::string>()});
  EXPECT_EQ(row->text("worker"), "worker-1");
  EXPECT_FALSE(row->text("started_at").empty());
  // Nothing pending is left for turso; postgres still has its job.
  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("turso")}), Json::array());
  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("postgres")}).size(), 1u);
  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("sqlite")}), Json::array());
  EXPECT_EQ(count("sys_audit_event", "action = 'job.claim'"), 2);
}

TEST_F(Outbox, ClaimValidatesItsArguments) {
  environment(org, "a", "turso");
  const auto before = counts();
  auto claim = [&](std::vector<Value> args) {
    return code_of([&] { host.call("claim_provisioning_jobs", std::move(args)); });
  };
  EXPECT_EQ(claim({std::string("mysql")}), Code::invalid_parameter);
  EXPECT_EQ(claim({std::string("turso"), int64_t{0}}), Code::invalid_parameter);
  EXPECT_EQ(claim({std::string("turso"), int64_t{1001}}), Code::invalid_parameter);
  EXPECT_EQ(claim({std::string("turso"), int64_t{1}, std::string(257, 'w')}),
            Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("turso"), int64_t{1000}}).size(), 1u);
}

TEST_F(Outbox, TwoClaimersGetDisjointJobs) {
  // Two connections to one catalog file, claiming in turns.
  const std::string path = dir + "/catalog.db";
  test::FileHost one(path), two(path);
  one.call("init");
  one.call("config", {std::string("sqlite_data_dir"), data_dir});
  one.call("provision_organization", {std::string("acme"), std::string("Acme"), std::string("o1"),
                                      null_value(), std::string("turso")});
  std::set<std::string> all;
  for (int i = 0; i < 6; ++i) {
    const Json r = Json::parse(std::get<std::string>(
        one.call("provision_environment", {std::string("o1"), "e" + std::to_string(i), null_value(),
                                           null_value(), null_value(), std::string("turso")})));
    all.insert(r["job"]["id"].get<std::string>());
  }
  all.insert(query_one(one.store(),
                       "SELECT id FROM sys_provisioning_job WHERE environment_id = "
                       "(SELECT id FROM sys_environment WHERE slug = 'default')")
                 ->text("id"));
  std::set<std::string> got_one, got_two;
  for (int round = 0; round < 4; ++round) {
    for (auto* h : {&one, &two}) {
      const Json jobs = Json::parse(std::get<std::string>(
          h->call("claim_provisioning_jobs",
                  {std::string("turso"), int64_t{2}, std::string(h == &one ? "one" : "two")})));
      for (auto& j : jobs) {
        const std::string id = j["id"];
        EXPECT_FALSE(got_one.count(id) || got_two.count(id)) << id << " claimed twice";
        (h == &one ? got_one : got_two).insert(id);
      }
    }
  }
  EXPECT_FALSE(got_one.empty());
  EXPECT_FALSE(got_two.empty());
  std::set<std::string> both = got_one;
  both.insert(got_two.begin(), got_two.end());
  EXPECT_EQ(both, all);
  EXPECT_EQ(query_one(two.store(),
                      "SELECT count(*) AS n FROM sys_provisioning_job WHERE status = "
                      "'running' AND attempts = 1")
                ->integer("n"),
            7);
}

TEST_F(Outbox, CompleteStoresTursoTokensAndActivates) {
  const Json made = environment(org, "t", "turso");
  const std::string job = made["job"]["id"];
  const std::string env = made["environment"]["id"];
  // A pending job cannot be completed.
  EXPECT_EQ(code_of([&] {
              host.call("complete_provisioning_job",
                        {job, std::string("libsql://x"), std::string(R"({"readwrite":"tok"})")});
            }),
            Code::invalid_transition);
  call_json("claim_provisioning_jobs", {std::string("turso")});
  const auto before = counts();
  auto complete = [&](Value url, Value tokens) {
    return code_of([&] { host.call("complete_provisioning_job", {job, url, tokens}); });
  };
  EXPECT_EQ(complete(std::string("libsql://x"), null_value()), Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"), std::string("{}")), Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"), std::string(R"({"owner":"t"})")),
            Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"), std::string(R"({"readwrite":"t","admin":""})")),
            Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"), std::string(R"({"readwrite":5})")),
            Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"),
                     Json({{"readwrite", std::string(4097, 't')}}).dump()),
            Code::invalid_parameter);
  EXPECT_EQ(complete(std::string(""), std::string(R"({"readwrite":"t"})")),
            Code::invalid_parameter);
  EXPECT_EQ(complete(std::string("libsql://x"), std::string("[1]")), Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
  // A message never repeats a token.
  const std::string msg = test::message_of([&] {
    host.call("complete_provisioning_job",
              {job, null_value(), std::string(R"({"readwrite":"s3cr3t-value","bogus":"x"})")});
  });
  EXPECT_EQ(msg.find("s3cr3t-value"), std::string::npos);

  const Json r = call_json("complete_provisioning_job",
                           {job, std::string("libsql://acme-t.turso.io"),
                            std::string(R"({"readwrite":"rw-token","readonly":"ro-token"})")});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"job", "environment"}));
  EXPECT_EQ(r["job"]["status"], "done");
  EXPECT_FALSE(r["job"]["finishedAt"].is_null());
  EXPECT_EQ(r["environment"]["status"], "active");
  const Json g = call_json("get_environment", {env});
  EXPECT_EQ(g["database"]["databaseUrl"], "libsql://acme-t.turso.io");
  EXPECT_FALSE(g["database"]["provisionedAt"].is_null());
  ASSERT_EQ(g["credentials"].size(), 2u);
  std::map<std::string, std::string> plain;
  for (auto& c : g["credentials"]) {
    EXPECT_EQ(c["status"], "active");
    plain[c["scope"]] = open_credential(c["id"]);
  }
  EXPECT_EQ(plain, (std::map<std::string, std::string>{{"readwrite", "rw-token"},
                                                       {"readonly", "ro-token"}}));
  // The audit trail names scopes, never tokens.
  auto audit = query_one(host.store(),
                         "SELECT detail FROM envdb.sys_audit_event WHERE action = "
                         "'job.complete'");
  EXPECT_EQ(audit->text("detail").find("rw-token"), std::string::npos);
  // Done is done.
  EXPECT_EQ(complete(null_value(), std::string(R"({"readwrite":"t"})")), Code::invalid_transition);
  EXPECT_EQ(code_of([&] {
              host.call("fail_provisioning_job", {job, std::string("late")});
            }),
            Code::invalid_transition);
}

TEST_F(Outbox, CompleteWithoutKeyIsKeyUnavailableAndWritesNothing) {
  test::MemoryHost bare;
  bare.call("init");
  bare.call("provision_organization", {std::string("acme"), std::string("Acme"), std::string("o1"),
                                       null_value(), std::string("turso")});
  const Json jobs = Json::parse(
      std::get<std::string>(bare.call("claim_provisioning_jobs", {std::string("turso")})));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(code_of([&] {
              bare.call("complete_provisioning_job",
                        {jobs[0]["id"].get<std::string>(), std::string("libsql://x"),
                         std::string(R"({"readwrite":"t"})")});
            }),
            Code::key_unavailable);
  EXPECT_EQ(query_one(bare.store(), "SELECT status FROM sys_environment")->text("status"),
            "provisioning");
  EXPECT_EQ(query_one(bare.store(), "SELECT status FROM sys_provisioning_job")->text("status"),
            "running");
}

TEST_F(Outbox, PostgresJobsCompleteWithoutTokens) {
  const Json made = environment(org, "p", "postgres");
  const Json credentials_before =
      call_json("get_environment", {made["environment"]["id"].get<std::string>()})["credentials"];
  EXPECT_EQ(credentials_before.size(), 3u);
  const Json claimed = call_json("claim_provisioning_jobs", {std::string("postgres")});
  ASSERT_EQ(claimed.size(), 1u);
  const Json r = call_json("complete_provisioning_job",
                           {claimed[0]["id"].get<std::string>(),
                            std::string("postgresql://db.internal:5432/") +
                                made["database"]["databaseName"].get<std::string>()});
  EXPECT_EQ(r["environment"]["status"], "active");
  // The credentials envdb generated at provisioning stay the ones in use.
  EXPECT_EQ(call_json("get_environment",
                      {made["environment"]["id"].get<std::string>()})["credentials"],
            credentials_before);
  EXPECT_EQ(r["job"]["status"], "done");
}

TEST_F(Outbox, FailWithRetryRequeuesAndWithoutFailsTheEnvironment) {
  const Json made = environment(org, "t", "turso");
  const std::string job = made["job"]["id"];
  const std::string env = made["environment"]["id"];
  EXPECT_EQ(code_of([&] {
              host.call("fail_provisioning_job", {job, std::string("x")});
            }),
            Code::invalid_transition);  // pending, not claimed
  call_json("claim_provisioning_jobs", {std::string("turso")});
  const Json again = call_json("fail_provisioning_job", {job, std::string("rate limited"), true});
  EXPECT_EQ(keys_of(again), (std::vector<std::string>{"job", "environment"}));
  EXPECT_EQ(again["job"]["status"], "pending");
  EXPECT_EQ(again["job"]["lastError"], "rate limited");
  EXPECT_TRUE(again["job"]["worker"].is_null());
  EXPECT_EQ(again["environment"]["status"], "provisioning");

  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("turso")})[0]["attempts"], 2);
  const std::string long_error(5000, 'e');
  const Json failed = call_json("fail_provisioning_job", {job, long_error});
  EXPECT_EQ(failed["job"]["status"], "failed");
  EXPECT_EQ(failed["job"]["lastError"].get<std::string>().size(), 4000u);
  EXPECT_EQ(failed["job"]["attempts"], 2);
  EXPECT_EQ(failed["environment"]["status"], "failed");
  EXPECT_EQ(code_of([&] {
              host.call("fail_provisioning_job", {job, std::string("")});
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              host.call("fail_provisioning_job", {std::string("nope"), std::string("x")});
            }),
            Code::not_found);
  // retry_environment brings the same job back.
  const Json r = call_json("retry_environment", {env});
  EXPECT_EQ(r["job"]["id"], job);
  EXPECT_EQ(r["job"]["status"], "pending");
}

TEST_F(Outbox, ErrorTextIsTruncatedOnCharacterBoundaries) {
  const Json made = environment(org, "t", "turso");
  call_json("claim_provisioning_jobs", {std::string("turso")});
  std::string error;
  for (int i = 0; i < 4100; ++i) error += "\xc3\xa9";  // é, two bytes
  const Json failed =
      call_json("fail_provisioning_job", {made["job"]["id"].get<std::string>(), error});
  EXPECT_EQ(failed["job"]["lastError"].get<std::string>().size(), 8000u);
}

TEST_F(Outbox, ArchivedEnvironmentRefusesCompletionButTakesFailure) {
  const Json made = environment(org, "p", "postgres");
  const std::string job = made["job"]["id"];
  call_json("claim_provisioning_jobs", {std::string("postgres")});
  call_json("archive_environment", {made["environment"]["id"].get<std::string>()});
  const auto before = counts();
  EXPECT_EQ(code_of([&] {
              host.call("complete_provisioning_job", {job, std::string("postgresql://h/db")});
            }),
            Code::conflict);
  EXPECT_EQ(counts(), before);
  const Json f = call_json("fail_provisioning_job", {job, std::string("no longer wanted")});
  EXPECT_EQ(f["job"]["status"], "failed");
  EXPECT_EQ(f["environment"]["status"], "archived");
}
