// Hostile input in the core (issue 14): the JSON bounds, the database row
// rules, and credentials bound to their database's name and URL (envelope
// format 2) with the migration from format 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "catalog/row_rules.hpp"
#include "core/ids.hpp"
#include "core/json_bounds.hpp"
#include "env_fixture.hpp"
#include "secrets/crypto.hpp"
#include "secrets/vault.hpp"

namespace envdb::test {
namespace {

std::string nested(size_t depth) {
  std::string out;
  for (size_t i = 0; i < depth; ++i) out += "{\"a\":";
  out += "1";
  out += std::string(depth, '}');
  return out;
}

TEST(JsonBounds, CountsBracketsOutsideStringsOnly) {
  using json_bounds::first_excess;
  EXPECT_FALSE(first_excess(nested(64), 64));
  EXPECT_TRUE(first_excess(nested(65), 64));
  EXPECT_FALSE(first_excess("{\"a\":\"[[[[[[[[[[\"}", 2));
  EXPECT_FALSE(
      first_excess("{\"a\":\"\\\"[[[[[\"}", 2));  // an escaped quote does not end the string
  EXPECT_TRUE(first_excess("[[[", 2));            // not JSON, still counted
  auto excess = first_excess("{\"slug\":\"x\",\"metadata\":{\"a\":{\"b\":1}}}", 2);
  ASSERT_TRUE(excess);
  EXPECT_EQ(excess->top_key, "metadata");
  // 100,000 levels: a scan, not a recursion.
  EXPECT_TRUE(first_excess(nested(100000), 64));
}

TEST(JsonBounds, InputStoredAndQuiet) {
  EXPECT_EQ(code_of([] { json_bounds::parse_input(nested(65), "metadata"); }),
            Code::invalid_parameter);
  EXPECT_NE(message_of([] {
              json_bounds::parse_input(nested(100000), "metadata");
            }).find("metadata is nested deeper than 64 levels"),
            std::string::npos);
  EXPECT_EQ(code_of([] { json_bounds::parse_stored(nested(100000), "metadata"); }),
            Code::schema_mismatch);
  EXPECT_EQ(code_of([] {
              json_bounds::parse_input(std::string(json_bounds::kMaxBytes + 1, ' '), "metadata");
            }),
            Code::invalid_parameter);
  EXPECT_FALSE(json_bounds::parse_quiet(nested(65)));
  EXPECT_TRUE(json_bounds::parse_quiet(nested(64)));
  EXPECT_TRUE(json_bounds::parse_input("nope", "metadata").is_discarded());
}

TEST(RowRules, DatabaseNames) {
  EXPECT_TRUE(row_rules::is_generated_database_name(database_name_for(new_uuid_v7())));
  for (const char* bad : {"../victim/app", "env-", "env-AAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "env-aaaaaaaaaaaaaaaaaaaaaaaaa1", "env-aaaaaaaaaaaaaaaaaaaaaaaaaa/"})
    EXPECT_FALSE(row_rules::is_generated_database_name(bad)) << bad;
  EXPECT_TRUE(row_rules::database_problem("turso", "acme-db", std::nullopt) == std::nullopt);
  EXPECT_TRUE(row_rules::database_problem("sqlite", "acme-db", std::nullopt).has_value());
  EXPECT_TRUE(row_rules::database_problem("turso", "../x", std::nullopt).has_value());
  const std::string name = "env-" + std::string(26, 'a');
  EXPECT_FALSE(row_rules::database_problem("sqlite", name, "file:/d/" + name + ".db"));
  EXPECT_TRUE(row_rules::database_problem("sqlite", name, "file:/d/../e/" + name + ".db"));
  EXPECT_TRUE(row_rules::database_problem("sqlite", name, "file:/victim/app.db"));
  EXPECT_TRUE(row_rules::database_problem("sqlite", name, "file:relative/" + name + ".db"));
}

class Bound : public EnvFixture {
 protected:
  std::string cipher_of(const std::string& id) {
    auto row = query_one(host.store(),
                         "SELECT token_cipher FROM envdb.sys_database_credential WHERE id = $1",
                         {id});
    return std::get<Blob>((*row)["token_cipher"]).bytes;
  }
  std::string reveal(const std::string& id) {
    return std::get<std::string>(host.call("reveal_credential", {id}));
  }
};

TEST_F(Bound, NewCredentialsAreFormatTwoAndFollowTheirUrl) {
  Json org = organization("acme");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  const std::string id = org["defaultEnvironment"]["credentials"][0]["id"].get<std::string>();
  EXPECT_EQ(crypto::envelope_version(cipher_of(id)), crypto::kEnvelopeVersionBound);
  const std::string token = reveal(id);
  // The sqlite file's URL was set after the credentials were issued: they
  // were re-sealed for it, so they open.
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET database_url = 'file:/elsewhere/x.db' "
          "WHERE id = $1",
          {db});
  EXPECT_EQ(code_of([&] { reveal(id); }), Code::schema_mismatch);  // not even looked at
  execute(host.store(), "UPDATE envdb.sys_environment_database SET driver = 'turso' WHERE id = $1",
          {db});
  EXPECT_EQ(code_of([&] { reveal(id); }), Code::decrypt_failed);  // a URL it was not sealed for
}

TEST_F(Bound, SetDatabaseUrlReseals) {
  Json org = organization("acme", "turso");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  Json issued = call_json("issue_credential", {db, std::string("readwrite"), std::string("tok")});
  const std::string id = issued["credential"]["id"].get<std::string>();
  {
    Atomic tx(host.store());
    vault::set_database_url(host, db, "libsql://one");
    tx.done();
  }
  EXPECT_EQ(reveal(id), "tok");
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET database_url = 'libsql://two' WHERE id = $1",
          {db});
  EXPECT_EQ(code_of([&] { reveal(id); }), Code::decrypt_failed);
  execute(host.store(),
          "UPDATE envdb.sys_environment_database SET database_url = 'libsql://one' WHERE id = $1",
          {db});
  EXPECT_EQ(reveal(id), "tok");
  // Without its key the URL cannot change (the token could not follow it):
  // key_unavailable, and the URL stays.
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET kms_key_id = 'absent' WHERE id = $1", {id});
  EXPECT_EQ(code_of([&] {
              Atomic tx(host.store());
              vault::set_database_url(host, db, "libsql://three");
              tx.done();
            }),
            Code::key_unavailable);
  EXPECT_EQ(query_one(host.store(),
                      "SELECT database_url FROM envdb.sys_environment_database WHERE id = $1", {db})
                ->text("database_url"),
            "libsql://one");
}

TEST_F(Bound, FormatOneOpensAndIsResealedByInit) {
  Json org = organization("acme", "turso");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  Json issued = call_json("issue_credential", {db, std::string("admin"), std::string("old")});
  const std::string id = issued["credential"]["id"].get<std::string>();
  const std::string v1 = crypto::seal(host.keyring().key("k1"), "old",
                                      crypto::credential_aad(id, db, "admin"),
                                      crypto::kEnvelopeVersionUnbound);
  execute(host.store(), "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
          {id, Blob{v1}});
  EXPECT_EQ(reveal(id), "old");
  // A format-1 envelope whose version byte says 2 opens under neither.
  std::string flipped = v1;
  flipped[0] = 2;
  execute(host.store(), "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
          {id, Blob{flipped}});
  EXPECT_EQ(code_of([&] { reveal(id); }), Code::decrypt_failed);
  execute(host.store(), "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
          {id, Blob{v1}});
  host.call("init");
  EXPECT_EQ(crypto::envelope_version(cipher_of(id)), crypto::kEnvelopeVersionBound);
  EXPECT_EQ(reveal(id), "old");
  EXPECT_EQ(count("sys_audit_event", "action = 'credential.reseal'"), 1);
}

TEST_F(Bound, InitLeavesFormatOneWhoseKeyIsAbsent) {
  Json org = organization("acme", "turso");
  const std::string db = org["defaultEnvironment"]["database"]["id"].get<std::string>();
  Json issued = call_json("issue_credential", {db, std::string("admin"), std::string("old")});
  const std::string id = issued["credential"]["id"].get<std::string>();
  crypto::SecretBytes other(crypto::random_bytes(32));
  const std::string v1 = crypto::seal(other, "old", crypto::credential_aad(id, db, "admin"),
                                      crypto::kEnvelopeVersionUnbound);
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET token_cipher = $2, kms_key_id = 'gone' "
          "WHERE id = $1",
          {id, Blob{v1}});
  host.call("init");  // does not fail: the credential waits for its key
  EXPECT_EQ(crypto::envelope_version(cipher_of(id)), crypto::kEnvelopeVersionUnbound);
  Json report = call_json("check");
  bool listed = false;
  for (const Json& f : report["findings"])
    listed = listed || (f["kind"] == "credential_unbound" && f["id"] == id);
  EXPECT_TRUE(listed);
  host.keyring().add("gone", std::move(other));
  EXPECT_EQ(reveal(id), "old");
  EXPECT_EQ(std::get<int64_t>(host.call("rewrap_credentials")), 1);
  EXPECT_EQ(crypto::envelope_version(cipher_of(id)), crypto::kEnvelopeVersionBound);
  EXPECT_EQ(reveal(id), "old");
}

}  // namespace
}  // namespace envdb::test
