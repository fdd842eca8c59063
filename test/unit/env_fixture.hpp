// Shared by the environments, outbox and legacy suites: an initialised
// catalog with a key, a private sqlite_data_dir, and helpers to call
// functions, catch code words and count rows.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/errors.hpp"
#include "core/json.hpp"
#include "secrets/crypto.hpp"
#include "surface/api.hpp"
#include "test_host.hpp"

namespace envdb::test {

inline std::string make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "envdb-test-XXXXXX").string();
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  return pattern;
}

// The code word of the envdb::Error `f` throws; fails the test when it does not.
inline Code code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "expected an envdb::Error";
  return Code::internal;
}

inline std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an envdb::Error";
  return "";
}

inline std::vector<std::string> keys_of(const Json& j) {
  std::vector<std::string> out;
  for (auto& [k, v] : j.items()) out.push_back(k);
  return out;
}

inline const std::vector<std::string> kEnvironmentKeys = {
    "id",       "organizationId", "slug",        "name",       "description", "envType",
    "region",   "isDefault",      "isProtected", "status",     "dlpPolicyId", "createdBy",
    "metadata", "createdAt",      "updatedAt",   "archivedAt", "expiresAt",   "trialExtensions"};
inline const std::vector<std::string> kDatabaseKeys = {"id",
                                                       "environmentId",
                                                       "databaseName",
                                                       "databaseUrl",
                                                       "driver",
                                                       "region",
                                                       "storageLimitMb",
                                                       "provisionedAt",
                                                       "lastAccessedAt",
                                                       "metadata",
                                                       "createdAt",
                                                       "updatedAt",
                                                       "droppedAt",
                                                       "usageBytes",
                                                       "usageMeasuredAt",
                                                       "storageReadOnly"};
inline const std::vector<std::string> kCredentialKeys = {"id",        "databaseId", "kmsKeyId",
                                                         "scope",     "status",     "issuedAt",
                                                         "expiresAt", "rotatedFrom"};

class EnvFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    host.call("init");
    host.keyring().add("k1", crypto::SecretBytes(crypto::random_bytes(32)));
    dir = make_temp_dir();
    data_dir = dir + "/envs";
    host.call("config", {std::string("sqlite_data_dir"), data_dir});
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  Json call_json(const std::string& fn, std::vector<Value> args = {}) {
    return Json::parse(std::get<std::string>(host.call(fn, std::move(args))));
  }
  Json request(const std::string& fn, const Json& body) {
    return Json::parse(
        std::get<std::string>(api::invoke_request(host, *api::find(fn), body.dump())));
  }

  int64_t count(const std::string& table, const std::string& where = "") {
    auto row = query_one(host.store(), "SELECT count(*) AS n FROM envdb." + table +
                                           (where.empty() ? "" : " WHERE " + where));
    return row->integer("n");
  }
  std::map<std::string, int64_t> counts() {
    std::map<std::string, int64_t> out;
    for (const char* t : {"sys_organization", "sys_environment", "sys_environment_database",
                          "sys_database_credential", "sys_provisioning_job", "sys_audit_event"})
      out[t] = count(t);
    return out;
  }
  std::set<std::string> files_in_data_dir() {
    std::set<std::string> out;
    std::error_code ec;
    if (!std::filesystem::exists(data_dir, ec)) return out;
    for (auto& e : std::filesystem::directory_iterator(data_dir))
      out.insert(e.path().filename().string());
    return out;
  }

  // An organization with a sqlite default environment; returns the response.
  Json organization(const std::string& slug, const std::string& driver = "sqlite") {
    return call_json("provision_organization",
                     {slug, std::string("Org ") + slug, null_value(), null_value(), driver});
  }
  std::string organization_id(const std::string& slug, const std::string& driver = "sqlite") {
    return organization(slug, driver)["organization"]["id"].get<std::string>();
  }
  // provision_environment(organization_id, slug, name, env_type, region, driver)
  Json environment(const std::string& org, const std::string& slug,
                   const std::string& driver = "sqlite",
                   const std::string& env_type = "development") {
    return call_json("provision_environment",
                     {org, slug, null_value(), env_type, null_value(), driver});
  }

  MemoryHost host;
  std::string dir;
  std::string data_dir;
};

}  // namespace envdb::test
