#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "catalog/dataplane.hpp"
#include "catalog/dataplane_template.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"
#include "env_fixture.hpp"
#include "tenancy/provision.hpp"

using namespace envdb;
using envdb::test::code_of;
using envdb::test::EnvFixture;
using envdb::test::keys_of;
using envdb::test::table_names;
namespace fs = std::filesystem;

namespace {

std::string path_of_url(const Json& database) {
  const std::string url = database["databaseUrl"].get<std::string>();
  EXPECT_EQ(url.rfind("file:", 0), 0u) << url;
  return url.substr(5);
}

}  // namespace

// ---- provision_organization ----------------------------------------------

using EnvOrganization = EnvFixture;

TEST_F(EnvOrganization, CreatesOrganizationAndActiveSqliteDefaultEnvironment) {
  const Json r = organization("acme");
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"organization", "defaultEnvironment",
                                                  "durationMs", "warnings"}));
  EXPECT_EQ(keys_of(r["organization"]),
            (std::vector<std::string>{"id", "slug", "name", "metadata", "createdAt", "updatedAt",
                                      "deprovisionedAt"}));
  EXPECT_EQ(r["organization"]["slug"], "acme");
  EXPECT_TRUE(r["durationMs"].is_number_integer());
  EXPECT_EQ(r["warnings"], Json::array());

  const Json& d = r["defaultEnvironment"];
  EXPECT_EQ(keys_of(d),
            (std::vector<std::string>{"environment", "database", "credentials", "job"}));
  EXPECT_EQ(keys_of(d["environment"]), test::kEnvironmentKeys);
  EXPECT_EQ(keys_of(d["database"]), test::kDatabaseKeys);
  const Json& env = d["environment"];
  EXPECT_EQ(env["organizationId"], r["organization"]["id"]);
  EXPECT_EQ(env["slug"], "default");
  EXPECT_EQ(env["name"], "Default");
  EXPECT_EQ(env["envType"], "default");
  EXPECT_EQ(env["isDefault"], true);
  EXPECT_EQ(env["isProtected"], true);
  EXPECT_EQ(env["status"], "active");
  EXPECT_EQ(env["region"], "default");
  EXPECT_TRUE(d["job"].is_null());

  const Json& db = d["database"];
  EXPECT_EQ(db["driver"], "sqlite");
  EXPECT_EQ(db["environmentId"], env["id"]);
  EXPECT_EQ(db["databaseName"], database_name_for(db["id"].get<std::string>()));
  EXPECT_FALSE(db["provisionedAt"].is_null());

  ASSERT_EQ(d["credentials"].size(), 3u);
  std::set<std::string> scopes;
  for (auto& c : d["credentials"]) {
    EXPECT_EQ(keys_of(c), test::kCredentialKeys);
    EXPECT_EQ(c["databaseId"], db["id"]);
    EXPECT_EQ(c["status"], "active");
    EXPECT_EQ(c["kmsKeyId"], "k1");
    scopes.insert(c["scope"].get<std::string>());
  }
  EXPECT_EQ(scopes, (std::set<std::string>{"admin", "readwrite", "readonly"}));

  // The file is where the URL says, initialised and stamped with this identity.
  const std::string path = path_of_url(db);
  EXPECT_EQ(path, fs::absolute(data_dir + "/" + db["databaseName"].get<std::string>() + ".db")
                      .lexically_normal()
                      .string());
  ASSERT_TRUE(fs::exists(path));
  EXPECT_EQ(files_in_data_dir(),
            (std::set<std::string>{db["databaseName"].get<std::string>() + ".db"}));
  EXPECT_EQ(fs::status(data_dir).permissions() & fs::perms::all, fs::perms::owner_all);
  auto file = sqlite::SqliteStore::open(path);
  EXPECT_EQ(table_names(*file),
            (std::vector<std::string>{"sys_environment_info", "sys_package_installation",
                                      "sys_schema_migration"}));
  auto stamp = query_one(*file, "SELECT * FROM sys_environment_info");
  ASSERT_TRUE(stamp);
  EXPECT_EQ(stamp->text("environment_id"), env["id"]);
  EXPECT_EQ(stamp->text("organization_id"), r["organization"]["id"]);
  EXPECT_EQ(stamp->text("database_name"), db["databaseName"]);
  EXPECT_EQ(stamp->integer("schema_version"), dataplane::current_version());

  EXPECT_EQ(count("sys_audit_event", "action = 'organization.provision'"), 1);
}

TEST_F(EnvOrganization, CallerSuppliedIdMetadataAndCreatedBy) {
  // A postgres database of a region without a registered host: on this server.
  host.call("config", {std::string("local_server_regions"), std::string("*")});
  const Json r = call_json("provision_organization",
                           {std::string("acme"), std::string("Acme"), std::string("org_2abc:X.y-z"),
                            std::string("eu-west"), std::string("postgres"), std::string("alice"),
                            std::string(R"({"tier":"gold"})")});
  EXPECT_EQ(r["organization"]["id"], "org_2abc:X.y-z");
  EXPECT_EQ(r["organization"]["metadata"], Json({{"tier", "gold"}}));
  const Json& env = r["defaultEnvironment"]["environment"];
  EXPECT_EQ(env["createdBy"], "alice");
  EXPECT_EQ(env["region"], "eu-west");
  EXPECT_EQ(r["defaultEnvironment"]["database"]["region"], "eu-west");
}

TEST_F(EnvOrganization, DuplicatesAndBadInputWriteNothing) {
  organization("acme");
  const auto before = counts();
  const auto files = files_in_data_dir();
  // Same slug.
  EXPECT_EQ(code_of([&] { organization("acme"); }), Code::already_exists);
  // Same id.
  call_json("provision_organization",
            {std::string("beta"), std::string("Beta"), std::string("org-1")});
  const auto after_beta = counts();
  EXPECT_EQ(code_of([&] {
              host.call("provision_organization",
                        {std::string("gamma"), std::string("Gamma"), std::string("org-1")});
            }),
            Code::already_exists);
  EXPECT_EQ(counts(), after_beta);
  // Bad values.
  auto bad = [&](std::vector<Value> args) {
    return code_of([&] { host.call("provision_organization", std::move(args)); });
  };
  EXPECT_EQ(bad({std::string("Bad Slug"), std::string("x")}), Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("")}), Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string(201, 'n')}), Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("x"), std::string("_bad id")}),
            Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("x"), null_value(), std::string(65, 'r')}),
            Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("x"), null_value(), null_value(),
                 std::string("mysql")}),
            Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("x"), null_value(), null_value(), null_value(),
                 std::string(257, 'c')}),
            Code::invalid_parameter);
  EXPECT_EQ(bad({std::string("ok"), std::string("x"), null_value(), null_value(), null_value(),
                 null_value(), std::string("[1,2]")}),
            Code::invalid_parameter);
  EXPECT_EQ(counts(), after_beta);
  EXPECT_EQ(before.at("sys_organization") + 1, after_beta.at("sys_organization"));
  EXPECT_EQ(files_in_data_dir().size(), files.size() + 1);
}

TEST_F(EnvOrganization, RequestFormGivesTheSameShape) {
  const Json r = request("provision_organization", {{"slug", "acme"},
                                                    {"name", "Acme"},
                                                    {"driver", "turso"},
                                                    {"createdBy", "bob"},
                                                    {"metadata", {{"a", 1}}}});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"organization", "defaultEnvironment",
                                                  "durationMs", "warnings"}));
  EXPECT_EQ(r["defaultEnvironment"]["environment"]["createdBy"], "bob");
  EXPECT_EQ(r["organization"]["metadata"]["a"], 1);
  EXPECT_EQ(code_of([&] {
              request("provision_organization", {{"slug", "x"}, {"nme", "y"}});
            }),
            Code::invalid_parameter);
}

TEST_F(EnvOrganization, TursoWaitsForItsJobWithoutCredentials) {
  const Json d = organization("acme", "turso")["defaultEnvironment"];
  EXPECT_EQ(d["environment"]["status"], "provisioning");
  EXPECT_EQ(d["credentials"], Json::array());
  EXPECT_TRUE(d["database"]["databaseUrl"].is_null());
  EXPECT_TRUE(d["database"]["provisionedAt"].is_null());
  ASSERT_FALSE(d["job"].is_null());
  EXPECT_EQ(keys_of(d["job"]), (std::vector<std::string>{"id", "kind", "status"}));
  EXPECT_EQ(d["job"]["kind"], "create_database");
  EXPECT_EQ(d["job"]["status"], "pending");
  EXPECT_TRUE(files_in_data_dir().empty());
}

TEST_F(EnvOrganization, PostgresGetsCredentialsAndAJobWithPayload) {
  const Json d = organization("acme", "postgres")["defaultEnvironment"];
  EXPECT_EQ(d["environment"]["status"], "provisioning");
  EXPECT_EQ(d["credentials"].size(), 3u);
  EXPECT_TRUE(d["database"]["databaseUrl"].is_null());
  auto job = query_one(host.store(),
                       "SELECT driver, status, payload, database_id FROM "
                       "envdb.sys_provisioning_job");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->text("driver"), "postgres");
  EXPECT_EQ(job->text("database_id"), d["database"]["id"]);
  EXPECT_EQ(Json::parse(job->text("payload")),
            Json({{"databaseName", d["database"]["databaseName"]},
                  {"region", "default"},
                  {"scopes", {"admin", "readwrite", "readonly"}}}));
}

TEST_F(EnvOrganization, NoKeyMeansKeyUnavailableAndNoRows) {
  test::MemoryHost bare;
  bare.call("init");
  bare.call("config", {std::string("sqlite_data_dir"), data_dir});
  EXPECT_EQ(code_of([&] {
              bare.call("provision_organization", {std::string("acme"), std::string("Acme")});
            }),
            Code::key_unavailable);
  EXPECT_EQ(query_one(bare.store(), "SELECT count(*) AS n FROM sys_organization")->integer("n"), 0);
  EXPECT_TRUE(files_in_data_dir().empty());
  // turso needs no key up front.
  bare.call("provision_organization", {std::string("acme"), std::string("Acme"), null_value(),
                                       null_value(), std::string("turso")});
}

// ---- provision_environment -----------------------------------------------

using EnvProvision = EnvFixture;

TEST_F(EnvProvision, DefaultsComeFromTypeAndSettings) {
  const std::string org = organization_id("acme");
  host.call("config", {std::string("default_region"), std::string("eu-1")});
  const Json r = call_json("provision_environment", {org, std::string("dev")});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"environment", "database", "credentials", "job",
                                                  "durationMs", "warnings"}));
  EXPECT_EQ(keys_of(r["environment"]), test::kEnvironmentKeys);
  EXPECT_EQ(keys_of(r["database"]), test::kDatabaseKeys);
  for (auto& c : r["credentials"]) EXPECT_EQ(keys_of(c), test::kCredentialKeys);
  EXPECT_EQ(r["environment"]["name"], "dev");
  EXPECT_EQ(r["environment"]["envType"], "development");
  EXPECT_EQ(r["environment"]["isProtected"], false);
  EXPECT_EQ(r["environment"]["isDefault"], false);
  EXPECT_EQ(r["environment"]["region"], "eu-1");
  EXPECT_EQ(r["environment"]["status"], "active");
  EXPECT_EQ(r["database"]["driver"], "sqlite");
  EXPECT_TRUE(r["job"].is_null());
  EXPECT_EQ(r["warnings"], Json::array());
  EXPECT_TRUE(fs::exists(path_of_url(r["database"])));

  host.call("config", {std::string("default_driver"), std::string("turso")});
  const Json t =
      call_json("provision_environment",
                {org, std::string("prod"), std::string("Production"), std::string("production")});
  EXPECT_EQ(t["database"]["driver"], "turso");
  EXPECT_EQ(t["environment"]["isProtected"], true);
  EXPECT_EQ(t["environment"]["status"], "provisioning");
  const Json u = call_json("provision_environment",
                           {org, std::string("prod2"), null_value(), std::string("production"),
                            null_value(), null_value(), false, false});
  EXPECT_EQ(u["environment"]["isProtected"], false);
}

TEST_F(EnvProvision, AllOptionsAndRequestForm) {
  host.call("config", {std::string("local_server_regions"), std::string("*")});
  const std::string org = organization_id("acme");
  const Json r = request("provision_environment", {{"organizationId", org},
                                                   {"slug", "sbx"},
                                                   {"name", "Sandbox"},
                                                   {"envType", "sandbox"},
                                                   {"region", "us"},
                                                   {"driver", "postgres"},
                                                   {"isProtected", true},
                                                   {"description", "for demos"},
                                                   {"storageLimitMb", 512},
                                                   {"createdBy", "carol"},
                                                   {"metadata", {{"team", "sales"}}}});
  EXPECT_EQ(r["environment"]["envType"], "sandbox");
  EXPECT_EQ(r["environment"]["description"], "for demos");
  EXPECT_EQ(r["environment"]["isProtected"], true);
  EXPECT_EQ(r["environment"]["createdBy"], "carol");
  EXPECT_EQ(r["environment"]["metadata"], Json({{"team", "sales"}}));
  EXPECT_EQ(r["database"]["storageLimitMb"], 512);
  EXPECT_EQ(r["database"]["region"], "us");
  EXPECT_EQ(r["job"]["status"], "pending");
}

TEST_F(EnvProvision, RefusalsCarryTheirCodeAndWriteNothing) {
  const std::string org = organization_id("acme");
  environment(org, "dev");
  const auto before = counts();
  const auto files = files_in_data_dir();
  auto call = [&](std::vector<Value> args) {
    return code_of([&] { host.call("provision_environment", std::move(args)); });
  };
  const Value N = null_value();
  EXPECT_EQ(call({std::string("no-such-org"), std::string("x")}), Code::not_found);
  EXPECT_EQ(call({std::string("bad org"), std::string("x")}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("Bad")}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("dev")}), Code::already_exists);
  EXPECT_EQ(call({org, std::string("x"), std::string(201, 'n')}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, std::string("default")}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, std::string("staging")}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, std::string(65, 'r')}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, std::string("oracle")}), Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, true}), Code::conflict);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, std::string(2001, 'd')}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, int64_t{0}}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, int64_t{-5}}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, std::string("ten")}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, N, std::string(257, 'c')}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, N, N, std::string("\"text\"")}),
            Code::invalid_parameter);
  EXPECT_EQ(call({org, std::string("x"), N, N, N, N, N, N, N, N, N, std::string("{bad")}),
            Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(files_in_data_dir(), files);
  // The limits themselves are accepted.
  call_json("provision_environment",
            {org, std::string(63, 'a'), std::string(200, 'n'), N, std::string(64, 'r'), N, N, N,
             std::string(2000, 'd'), int64_t{1}, std::string(256, 'c')});
}

TEST_F(EnvProvision, IfNotExistsReturnsTheExistingEnvironmentUnchanged) {
  const std::string org = organization_id("acme");
  const Json first = environment(org, "stage", "postgres", "production");
  const auto before = counts();
  const Json again =
      call_json("provision_environment",
                {org, std::string("stage"), std::string("Other name"), std::string("trial"),
                 null_value(), std::string("turso"), null_value(), null_value(), null_value(),
                 null_value(), null_value(), null_value(), true});
  EXPECT_EQ(counts(), before);
  EXPECT_EQ(again["environment"], first["environment"]);
  EXPECT_EQ(again["database"], first["database"]);
  EXPECT_EQ(again["credentials"], first["credentials"]);
  EXPECT_EQ(again["job"], first["job"]);
  EXPECT_EQ(again["environment"]["status"], "provisioning");
  ASSERT_EQ(again["warnings"].size(), 1u);
  EXPECT_NE(again["warnings"][0].get<std::string>().find("already exists"), std::string::npos);
  // Without the flag: already_exists.
  EXPECT_EQ(code_of([&] { environment(org, "stage"); }), Code::already_exists);
  // The same slug in another organization is a different environment.
  const std::string other = organization_id("beta");
  EXPECT_EQ(environment(other, "stage")["warnings"], Json::array());
}

TEST_F(EnvProvision, IsDefaultOnlyWhenTheOrganizationHasNone) {
  const std::string org = organization_id("acme");
  // Remove the default flag behind envdb's back: now a new default is welcome.
  execute(host.store(),
          "UPDATE envdb.sys_environment SET is_default = 0 WHERE organization_id = $1", {org});
  const Json r =
      call_json("provision_environment", {org, std::string("main"), null_value(), null_value(),
                                          null_value(), null_value(), true});
  EXPECT_EQ(r["environment"]["isDefault"], true);
  EXPECT_EQ(code_of([&] {
              host.call("provision_environment", {org, std::string("main2"), null_value(),
                                                  null_value(), null_value(), null_value(), true});
            }),
            Code::conflict);
}

TEST_F(EnvProvision, ExistingFileIsAConflictAndNeverOverwritten) {
  fs::create_directories(data_dir);
  const std::string name = "env-aaaaaaaaaaaaaaaaaaaaaaaaaa";
  const std::string path = data_dir + "/" + name + ".db";
  { std::ofstream(path) << "not mine"; }
  provision::Undo undo(host);
  EXPECT_EQ(code_of([&] { provision::create_sqlite_file(host, "e1", "o1", name, false, undo); }),
            Code::conflict);
  std::ifstream in(path);
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "not mine");
  EXPECT_EQ(files_in_data_dir(), (std::set<std::string>{name + ".db"}));
}

TEST_F(EnvProvision, UndoRemovesFilesUnlessKept) {
  fs::create_directories(data_dir);
  const std::string a = data_dir + "/a.db", b = data_dir + "/b.db";
  {
    std::ofstream(a) << "a";
    std::ofstream(a + "-journal") << "j";
    std::ofstream(b) << "b";
  }
  {
    provision::Undo undo(host);
    undo.add_file(a);
  }
  {
    provision::Undo undo(host);
    undo.add_file(b);
    undo.keep();
  }
  EXPECT_EQ(files_in_data_dir(), (std::set<std::string>{"b.db"}));
}

namespace {

// A store that fails on the DDL that creates the package table: the data-plane
// initializer breaks halfway through the new file.
class BrokenStore : public Store {
 public:
  explicit BrokenStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}
  Dialect dialect() const override { return inner_->dialect(); }
  std::unique_ptr<Statement> prepare(const std::string& sql) override {
    return inner_->prepare(sql);
  }
  void exec(const std::string& sql) override {
    if (sql.find("sys_package_installation") != std::string::npos)
      throw Error(Code::internal, "disk full (simulated)");
    inner_->exec(sql);
  }
  void savepoint(const std::string& n) override { inner_->savepoint(n); }
  void release(const std::string& n) override { inner_->release(n); }
  void rollback_to(const std::string& n) override { inner_->rollback_to(n); }

 private:
  std::unique_ptr<Store> inner_;
};

class BrokenFileHost : public test::MemoryHost {
 public:
  std::unique_ptr<Store> open_database_file(const std::string& path) override {
    opened.push_back(path);
    return std::make_unique<BrokenStore>(MemoryHost::open_database_file(path));
  }
  std::vector<std::string> opened;
};

}  // namespace

TEST_F(EnvProvision, FailedFileCreationLeavesNoTempFileAndNoRows) {
  dataplane_template::forget();
  BrokenFileHost broken;
  broken.call("init");
  broken.keyring().add("k1", crypto::SecretBytes(crypto::random_bytes(32)));
  broken.call("config", {std::string("sqlite_data_dir"), data_dir});
  broken.call("provision_organization", {std::string("acme"), std::string("Acme"),
                                         std::string("o1"), null_value(), std::string("turso")});
  auto n = [&](const char* table) {
    return query_one(broken.store(), std::string("SELECT count(*) AS n FROM ") + table)
        ->integer("n");
  };
  const int64_t envs = n("sys_environment"), creds = n("sys_database_credential"),
                audits = n("sys_audit_event");
  EXPECT_EQ(code_of([&] {
              broken.call("provision_environment", {std::string("o1"), std::string("dev")});
            }),
            Code::internal);
  // Without a template image the temporary file is opened twice: to build
  // the image, which breaks the same way, then by DDL.
  ASSERT_EQ(broken.opened.size(), 2u);
  for (const std::string& path : broken.opened) {
    EXPECT_NE(path.find(".db.tmp-"), std::string::npos);
    EXPECT_FALSE(fs::exists(path)) << path;
  }
  EXPECT_TRUE(files_in_data_dir().empty());
  EXPECT_EQ(n("sys_environment"), envs);
  EXPECT_EQ(n("sys_environment_database"), envs);
  EXPECT_EQ(n("sys_database_credential"), creds);
  EXPECT_EQ(n("sys_audit_event"), audits);
}

TEST_F(EnvProvision, DataDirectoryThatIsAFileIsRefused) {
  { std::ofstream(dir + "/plain") << "x"; }
  host.call("config", {std::string("sqlite_data_dir"), dir + "/plain"});
  const std::string org = organization_id("acme", "turso");
  const auto before = counts();
  EXPECT_EQ(code_of([&] { environment(org, "dev"); }), Code::invalid_parameter);
  EXPECT_EQ(counts(), before);
}

TEST_F(EnvProvision, RelativeDataDirectoryIsResolvedAgainstTheWorkingDirectory) {
  const fs::path old = fs::current_path();
  fs::current_path(dir);
  host.call("config", {std::string("sqlite_data_dir"), std::string("rel/envs")});
  Json r;
  try {
    r = organization("acme");
  } catch (...) {
    fs::current_path(old);
    throw;
  }
  fs::current_path(old);
  const std::string path = path_of_url(r["defaultEnvironment"]["database"]);
  EXPECT_EQ(path.rfind(fs::path(dir).string() + "/rel/envs/", 0), 0u) << path;
  EXPECT_TRUE(fs::exists(path));
}

// ---- get / status / archive / default / retry -----------------------------

using EnvLifecycle = EnvFixture;

TEST_F(EnvLifecycle, GetEnvironmentListsAllCredentialsWithoutSecrets) {
  const std::string org = organization_id("acme");
  const Json made = environment(org, "dev");
  const std::string id = made["environment"]["id"];
  call_json("archive_environment", {id});
  const Json g = call_json("get_environment", {id});
  EXPECT_EQ(keys_of(g), (std::vector<std::string>{"environment", "database", "credentials"}));
  EXPECT_EQ(g["environment"]["status"], "archived");
  EXPECT_EQ(g["database"]["id"], made["database"]["id"]);
  ASSERT_EQ(g["credentials"].size(), 3u);
  for (auto& c : g["credentials"]) {
    EXPECT_EQ(c["status"], "revoked");
    EXPECT_FALSE(c.contains("token"));
    EXPECT_FALSE(c.contains("tokenCipher"));
  }
  EXPECT_LE(g["credentials"][0]["issuedAt"].get<std::string>(),
            g["credentials"][1]["issuedAt"].get<std::string>());
  EXPECT_EQ(code_of([&] { host.call("get_environment", {std::string("nope")}); }), Code::not_found);
  EXPECT_EQ(code_of([&] { host.call("get_environment", {std::string("bad id")}); }),
            Code::invalid_parameter);
}

TEST_F(EnvLifecycle, StatusFollowsTheStateMachine) {
  const std::string org = organization_id("acme");
  const std::string id = environment(org, "dev")["environment"]["id"];
  auto set = [&](const std::string& status) {
    return call_json("set_environment_status", {id, status, std::string("maintenance")});
  };
  const Json s = set("suspended");
  EXPECT_EQ(keys_of(s), (std::vector<std::string>{"environment"}));
  EXPECT_EQ(s["environment"]["status"], "suspended");
  EXPECT_EQ(set("active")["environment"]["status"], "active");
  // Both changes are in the audit trail (the same millisecond may hold both).
  std::set<std::string> details;
  for (auto& row : query(host.store(),
                         "SELECT detail, environment_id FROM envdb.sys_audit_event "
                         "WHERE action = 'environment.status'")) {
    EXPECT_EQ(row.text("environment_id"), id);
    details.insert(Json::parse(row.text("detail")).dump());
  }
  EXPECT_EQ(
      details,
      (std::set<std::string>{
          Json({{"from", "active"}, {"to", "suspended"}, {"reason", "maintenance"}}).dump(),
          Json({{"from", "suspended"}, {"to", "active"}, {"reason", "maintenance"}}).dump()}));
  const auto before = counts();
  EXPECT_EQ(code_of([&] { set("active"); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { set("failed"); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { set("provisioning"); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { set("deleted"); }), Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              host.call("set_environment_status", {std::string("nope"), std::string("active")});
            }),
            Code::not_found);
  EXPECT_EQ(counts(), before);
  // Archived through set_environment_status is archiving: final.
  EXPECT_EQ(set("archived")["environment"]["status"], "archived");
  EXPECT_EQ(count("sys_database_credential", "status <> 'revoked'"), 3);  // the default's
  EXPECT_EQ(code_of([&] { set("active"); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { set("suspended"); }), Code::invalid_transition);
}

TEST_F(EnvLifecycle, ArchivedViaStatusObeysArchiveRules) {
  const Json org = organization("acme");
  const std::string org_id = org["organization"]["id"];
  const std::string default_id = org["defaultEnvironment"]["environment"]["id"];
  const std::string prod = environment(org_id, "prod", "sqlite", "production")["environment"]["id"];
  const auto before = counts();
  EXPECT_EQ(code_of([&] {
              host.call("set_environment_status", {default_id, std::string("archived")});
            }),
            Code::conflict);
  EXPECT_EQ(code_of([&] {
              host.call("set_environment_status", {prod, std::string("archived")});
            }),
            Code::conflict);
  EXPECT_EQ(counts(), before);
}

TEST_F(EnvLifecycle, ActivatingAnUnprovisionedDatabaseIsAConflict) {
  const std::string org = organization_id("acme");
  const std::string id = environment(org, "pg", "postgres")["environment"]["id"];
  EXPECT_EQ(code_of([&] {
              host.call("set_environment_status", {id, std::string("active")});
            }),
            Code::conflict);
  // provisioning -> failed is allowed, and the queued job is cancelled with it.
  const Json f = call_json("set_environment_status", {id, std::string("failed")});
  EXPECT_EQ(f["environment"]["status"], "failed");
  EXPECT_EQ(count("sys_provisioning_job", "status = 'pending'"), 0);
  EXPECT_EQ(count("sys_provisioning_job", "status = 'failed'"), 1);
}

TEST_F(EnvLifecycle, ArchiveRevokesCredentialsAndRefusesDefaultAndProtected) {
  const Json o = organization("acme");
  const std::string org = o["organization"]["id"];
  const std::string default_id = o["defaultEnvironment"]["environment"]["id"];
  const std::string prod = environment(org, "prod", "sqlite", "production")["environment"]["id"];
  const std::string dev = environment(org, "dev")["environment"]["id"];
  const auto before = counts();
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {default_id}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {default_id, true}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {prod}); }), Code::conflict);
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {prod, false}); }), Code::conflict);
  EXPECT_EQ(counts(), before);

  const Json a = call_json("archive_environment", {dev});
  EXPECT_EQ(keys_of(a), (std::vector<std::string>{"environment", "revokedCredentials"}));
  EXPECT_EQ(a["environment"]["status"], "archived");
  EXPECT_EQ(a["revokedCredentials"], 3);
  const Json p = call_json("archive_environment", {prod, true});
  EXPECT_EQ(p["environment"]["status"], "archived");
  EXPECT_EQ(p["revokedCredentials"], 3);
  EXPECT_EQ(count("sys_database_credential", "status = 'active'"), 3);  // the default's only
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {dev}); }), Code::invalid_transition);
  EXPECT_EQ(count("sys_audit_event", "action = 'environment.archive'"), 2);
}

TEST_F(EnvLifecycle, ArchivingAProvisioningEnvironmentCancelsItsJob) {
  const std::string org = organization_id("acme");
  const std::string id = environment(org, "t", "turso")["environment"]["id"];
  const Json a = call_json("archive_environment", {id});
  EXPECT_EQ(a["environment"]["status"], "archived");
  EXPECT_EQ(a["revokedCredentials"], 0);
  auto job = query_one(host.store(),
                       "SELECT status, last_error FROM envdb.sys_provisioning_job "
                       "WHERE environment_id = $1",
                       {id});
  EXPECT_EQ(job->text("status"), "failed");
  EXPECT_NE(job->text("last_error").find("cancelled"), std::string::npos);
}

TEST_F(EnvLifecycle, SetDefaultMovesTheFlag) {
  const Json o = organization("acme");
  const std::string org = o["organization"]["id"];
  const std::string old_default = o["defaultEnvironment"]["environment"]["id"];
  const std::string dev = environment(org, "dev")["environment"]["id"];
  const Json r = call_json("set_default_environment", {dev});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"environment", "previousDefaultId"}));
  EXPECT_EQ(r["environment"]["isDefault"], true);
  EXPECT_EQ(r["previousDefaultId"], old_default);
  EXPECT_EQ(count("sys_environment", "is_default = 1"), 1);
  EXPECT_EQ(call_json("get_environment", {old_default})["environment"]["isDefault"], false);
  // Again: nothing moves.
  const auto before = counts();
  const Json same = call_json("set_default_environment", {dev});
  EXPECT_EQ(same["previousDefaultId"], dev);
  EXPECT_EQ(counts(), before);
  // The new default cannot be archived, the old one (protected) only with force.
  EXPECT_EQ(code_of([&] { host.call("archive_environment", {dev, true}); }), Code::conflict);
  EXPECT_EQ(call_json("archive_environment", {old_default, true})["environment"]["status"],
            "archived");
  // Only active environments become the default.
  const std::string other = environment(org, "other")["environment"]["id"];
  call_json("set_environment_status", {other, std::string("suspended")});
  EXPECT_EQ(code_of([&] { host.call("set_default_environment", {other}); }), Code::conflict);
  const std::string pg = environment(org, "pg", "postgres")["environment"]["id"];
  EXPECT_EQ(code_of([&] { host.call("set_default_environment", {pg}); }), Code::conflict);
  EXPECT_EQ(call_json("get_environment", {dev})["environment"]["isDefault"], true);
}

TEST_F(EnvLifecycle, RetryOnlyFromFailed) {
  const std::string org = organization_id("acme");
  const std::string dev = environment(org, "dev")["environment"]["id"];
  const std::string pg = environment(org, "pg", "postgres")["environment"]["id"];
  EXPECT_EQ(code_of([&] { host.call("retry_environment", {dev}); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { host.call("retry_environment", {pg}); }), Code::invalid_transition);
  EXPECT_EQ(code_of([&] { host.call("retry_environment", {std::string("nope")}); }),
            Code::not_found);
}

TEST_F(EnvLifecycle, RetryRequeuesTheFailedJobKeepingAttempts) {
  const std::string org = organization_id("acme");
  const Json made = environment(org, "pg", "postgres");
  const std::string id = made["environment"]["id"];
  const std::string job_id = made["job"]["id"];
  const Json claimed = call_json("claim_provisioning_jobs", {std::string("postgres")});
  ASSERT_EQ(claimed.size(), 1u);
  call_json("fail_provisioning_job", {job_id, std::string("server down")});
  EXPECT_EQ(call_json("get_environment", {id})["environment"]["status"], "failed");
  const Json r = call_json("retry_environment", {id});
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"environment", "job"}));
  EXPECT_EQ(r["environment"]["status"], "provisioning");
  EXPECT_EQ(r["job"], Json({{"id", job_id}, {"kind", "create_database"}, {"status", "pending"}}));
  auto job = query_one(host.store(),
                       "SELECT attempts, worker FROM envdb.sys_provisioning_job "
                       "WHERE id = $1",
                       {job_id});
  EXPECT_EQ(job->integer("attempts"), 1);
  EXPECT_EQ(count("sys_provisioning_job"), 1);
  // Claimed again, the attempt count goes on.
  EXPECT_EQ(call_json("claim_provisioning_jobs", {std::string("postgres")})[0]["attempts"], 2);
}

TEST_F(EnvLifecycle, RetryViaStatusAndNewJobWhenNoneFailed) {
  const std::string org = organization_id("acme");
  const std::string id = environment(org, "t", "turso")["environment"]["id"];
  call_json("set_environment_status", {id, std::string("failed")});
  // The cancelled job is the failed one that comes back.
  const Json r = call_json("set_environment_status", {id, std::string("provisioning")});
  EXPECT_EQ(r["environment"]["status"], "provisioning");
  EXPECT_EQ(count("sys_provisioning_job", "status = 'pending'"), 1);
  EXPECT_EQ(count("sys_provisioning_job"), 1);
  // With no job at all, retry queues a new one.
  call_json("set_environment_status", {id, std::string("failed")});
  execute(host.store(), "DELETE FROM envdb.sys_provisioning_job");
  const Json again = call_json("retry_environment", {id});
  EXPECT_EQ(again["job"]["status"], "pending");
  EXPECT_EQ(count("sys_provisioning_job"), 1);
}

TEST_F(EnvLifecycle, RetryOfASqliteEnvironmentCreatesTheFileNow) {
  const std::string org = organization_id("acme");
  const Json made = environment(org, "dev");
  const std::string id = made["environment"]["id"];
  const std::string path = path_of_url(made["database"]);
  // An environment whose file went missing and was marked failed.
  execute(host.store(), "UPDATE envdb.sys_environment SET status = 'failed' WHERE id = $1", {id});
  fs::remove(path);
  const Json r = call_json("retry_environment", {id});
  EXPECT_EQ(r["environment"]["status"], "active");
  EXPECT_TRUE(r["job"].is_null());
  EXPECT_TRUE(fs::exists(path));
  // A file that is still there is reused when it carries this identity...
  execute(host.store(), "UPDATE envdb.sys_environment SET status = 'failed' WHERE id = $1", {id});
  EXPECT_EQ(call_json("retry_environment", {id})["environment"]["status"], "active");
  // ...and refused when it belongs to another environment.
  execute(host.store(), "UPDATE envdb.sys_environment SET status = 'failed' WHERE id = $1", {id});
  fs::remove(path);
  {
    auto other = sqlite::SqliteStore::open(path);
    dataplane::initialize(*other, "someone-else", org, made["database"]["databaseName"]);
  }
  EXPECT_EQ(code_of([&] { host.call("retry_environment", {id}); }), Code::schema_mismatch);
  EXPECT_EQ(call_json("get_environment", {id})["environment"]["status"], "failed");
  EXPECT_TRUE(fs::exists(path));  // not ours to delete
}

// ---- the data plane --------------------------------------------------------

class EnvDataPlane : public ::testing::Test {
 protected:
  std::unique_ptr<sqlite::SqliteStore> store = sqlite::SqliteStore::open(":memory:");
};

TEST_F(EnvDataPlane, InitializesIdempotently) {
  EXPECT_FALSE(dataplane::schema_version(*store));
  const Json first = dataplane::initialize(*store, "e1", "o1", "env-x");
  EXPECT_EQ(keys_of(first),
            (std::vector<std::string>{"environmentId", "schemaVersion", "applied"}));
  EXPECT_EQ(first, Json({{"environmentId", "e1"}, {"schemaVersion", 1}, {"applied", {1}}}));
  EXPECT_EQ(dataplane::schema_version(*store), 1);
  const Json second = dataplane::initialize(*store, "e1", "o1", "env-x");
  EXPECT_EQ(second["applied"], Json::array());
  EXPECT_EQ(query_one(*store, "SELECT count(*) AS n FROM sys_schema_migration")->integer("n"), 1);
  auto ledger = query_one(*store, "SELECT checksum FROM sys_schema_migration WHERE version = 1");
  EXPECT_EQ(ledger->text("checksum"), dataplane::checksum(dataplane::migrations()[0]));
  EXPECT_EQ(ledger->text("checksum").size(), 64u);
}

TEST_F(EnvDataPlane, ForeignIdentityDriftAndNewerVersionsAreSchemaMismatch) {
  dataplane::initialize(*store, "e1", "o1", "env-x");
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e2", "o1", "env-x"); }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e1", "o2", "env-x"); }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e1", "o1", "env-y"); }),
            Code::schema_mismatch);
  execute(*store, "UPDATE sys_schema_migration SET checksum = 'abc' WHERE version = 1");
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e1", "o1", "env-x"); }),
            Code::schema_mismatch);
  execute(*store, "UPDATE sys_schema_migration SET checksum = $1 WHERE version = 1",
          {dataplane::checksum(dataplane::migrations()[0])});
  execute(*store, "INSERT INTO sys_schema_migration VALUES (99, 'x', 'now')");
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e1", "o1", "env-x"); }),
            Code::schema_mismatch);
  // The stamp itself refuses a second row or a new identity.
  EXPECT_EQ(code_of([&] {
              execute(*store, "INSERT INTO sys_environment_info VALUES ('e9', 'o', 'n', 1, 'x')");
            }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of(
                [&] { execute(*store, "UPDATE sys_environment_info SET environment_id = 'e9'"); }),
            Code::schema_mismatch);
}

TEST_F(EnvDataPlane, PackageTableChecksStatusAndConfig) {
  dataplane::initialize(*store, "e1", "o1", "env-x");
  execute(*store,
          "INSERT INTO sys_package_installation (id, package_id, version, status) "
          "VALUES ('p1', 'crm', '1.0.0', 'active')");
  EXPECT_EQ(code_of([&] {
              execute(*store,
                      "INSERT INTO sys_package_installation (id, package_id, version, "
                      "status) VALUES ('p2', 'hr', '1', 'broken')");
            }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] {
              execute(*store,
                      "INSERT INTO sys_package_installation (id, package_id, version, "
                      "status) VALUES ('p3', 'crm', '2', 'active')");
            }),
            Code::already_exists);
  EXPECT_EQ(code_of([&] {
              execute(*store,
                      "INSERT INTO sys_package_installation (id, package_id, version, "
                      "status, config) VALUES ('p4', 'x', '2', 'active', '{oops')");
            }),
            Code::invalid_parameter);
  auto row = query_one(*store, "SELECT config, created_at FROM sys_package_installation");
  EXPECT_EQ(row->text("config"), "{}");
  EXPECT_TRUE(ms_from_iso(row->text("created_at")).has_value());
}

TEST_F(EnvDataPlane, RefusesBadIdentityArguments) {
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "bad id", "o1", "n"); }),
            Code::invalid_parameter);
  EXPECT_EQ(code_of([&] { dataplane::initialize(*store, "e1", "o1", ""); }),
            Code::invalid_parameter);
  EXPECT_FALSE(dataplane::schema_version(*store));
}
