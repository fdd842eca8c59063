// Credentials and keys through the SQL function table: issue, reveal, rotate
// with an overlap window, expire, revoke, rewrap, tampering, missing keys,
// refusals that leave no partial write, and a control database file that never
// holds a plaintext token.

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "secrets/credentials.hpp"
#include "secrets/crypto.hpp"
#include "secrets/vault.hpp"
#include "surface/api.hpp"
#include "test_host.hpp"

using namespace envdb;

namespace {

using test::contains;
using test::error_of;

std::string key_b64(char fill) { return crypto::base64_encode(std::string(32, fill)); }

// The same host as test::MemoryHost, over a database file.
using test::FileHost;

Value call(Host& h, const std::string& fn, std::vector<Value> args = {}) {
  const api::Function* f = api::find(fn);
  if (!f) throw std::runtime_error("no function " + fn);
  return api::invoke(h, *f, std::move(args));
}

std::string call_text(Host& h, const std::string& fn, std::vector<Value> args = {}) {
  return std::get<std::string>(call(h, fn, std::move(args)));
}

Json call_json(Host& h, const std::string& fn, std::vector<Value> args = {}) {
  return Json::parse(call_text(h, fn, std::move(args)));
}

int64_t count(Host& h, const std::string& sql, const std::vector<Value>& params = {}) {
  auto row = query_one(h.store(), sql, params);
  return row->integer(row->names().at(0));
}

int64_t active_count(Host& h, const std::string& database_id, const std::string& scope) {
  return count(h,
               "SELECT count(*) AS n FROM envdb.sys_database_credential WHERE database_id = $1 AND "
               "scope = $2 AND status = 'active'",
               {database_id, scope});
}

// Every credential row (ciphertext in hex) and the audit trail's size: equal
// before and after a refused call means nothing was written.
std::string dump(Host& h) {
  std::string out;
  for (const Row& r : query(h.store(),
                            "SELECT id, database_id, scope, status, kms_key_id, hex(token_cipher) "
                            "AS c, expires_at, revoked_at, rotated_from FROM "
                            "envdb.sys_database_credential ORDER BY id")) {
    for (size_t i = 0; i < r.size(); ++i) out += r.opt_text(r.names()[i]).value_or("~") + "|";
    out += "\n";
  }
  out += "audit=" + std::to_string(count(h, "SELECT count(*) AS n FROM envdb.sys_audit_event"));
  return out;
}

// An organization, an environment and its database, written directly.
std::string make_database(Host& h, const std::string& driver = "sqlite",
                          const std::string& status = "active") {
  const std::string org = new_uuid_v7(), env = new_uuid_v7(), db = new_uuid_v7();
  const std::string slug = "o" + org.substr(24);
  execute(h.store(), "INSERT INTO envdb.sys_organization (id, slug, name) VALUES ($1, $2, 'Org')",
          {org, slug});
  execute(h.store(),
          "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "status) VALUES ($1, $2, 'dev', 'Dev', 'development', 'r1', $3)",
          {env, org, status});
  execute(h.store(),
          "INSERT INTO envdb.sys_environment_database (id, environment_id, database_name, driver, "
          "region) VALUES ($1, $2, $3, $4, 'r1')",
          {db, env, database_name_for(db), driver});
  return db;
}

// n readwrite credentials of db, sealed under the active key and left
// `rotating` (so none supersedes another), in one transaction: id -> token.
std::map<std::string, std::string> insert_rotating(Host& h, const std::string& db, int n) {
  std::map<std::string, std::string> tokens;
  h.store().exec("BEGIN");
  for (int i = 0; i < n; ++i) {
    const std::string token = "token-" + std::to_string(i);
    Json c = vault::insert_sealed(h, db, "readwrite", token, std::nullopt, std::nullopt);
    execute(h.store(), "UPDATE envdb.sys_database_credential SET status = 'rotating' WHERE id = $1",
            {c["id"].get<std::string>()});
    tokens[c["id"]] = token;
  }
  h.store().exec("COMMIT");
  return tokens;
}

void setup(Host& h) {
  call(h, "init");
  EXPECT_EQ(call_text(h, "keyring_add", {std::string("k1"), key_b64('a')}), "added k1");
}

std::string status_of(Host& h, const std::string& id) {
  return query_one(h.store(), "SELECT status FROM envdb.sys_database_credential WHERE id = $1",
                   {id})
      ->text("status");
}

std::string reveal(Host& h, const std::string& id) {
  return call_text(h, "reveal_credential", {id});
}

Blob cipher_of(Host& h, const std::string& id) {
  auto row = query_one(h.store(),
                       "SELECT token_cipher FROM envdb.sys_database_credential WHERE id = $1",
                       {id});
  return std::get<Blob>((*row)["token_cipher"]);
}

void set_cipher(Host& h, const std::string& id, const Value& v) {
  execute(h.store(), "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
          {id, v});
}

int64_t seconds_until(const std::string& iso) {
  return (ms_from_iso(iso).value() - now_ms()) / 1000;
}

}  // namespace

TEST(Credentials, IssueRevealRotateExpireRevoke) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);

  // Issue with a generated token.
  Json c1 = call_json(h, "issue_credential", {db})["credential"];
  EXPECT_EQ(c1["scope"], "readwrite");
  EXPECT_EQ(c1["status"], "active");
  EXPECT_EQ(c1["kmsKeyId"], "k1");
  EXPECT_EQ(c1["databaseId"], db);
  EXPECT_TRUE(c1["rotatedFrom"].is_null());
  EXPECT_TRUE(c1["expiresAt"].is_null());  // credential_ttl_seconds defaults to 0: no expiry
  EXPECT_FALSE(c1.contains("token"));
  const std::string id1 = c1["id"];
  const std::string tok1 = reveal(h, id1);
  EXPECT_EQ(tok1.size(), 43u);
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);

  // Issuing again supersedes: the old one rotates for rotation_grace_seconds.
  call(h, "config", {std::string("rotation_grace_seconds"), std::string("120")});
  Json c2 = call_json(h, "issue_credential",
                      {db, std::string("readwrite"), std::string("caller-token-1")})["credential"];
  const std::string id2 = c2["id"];
  EXPECT_EQ(c2["rotatedFrom"], id1);
  EXPECT_EQ(status_of(h, id1), "rotating");
  auto exp1 = query_one(h.store(),
                        "SELECT expires_at FROM envdb.sys_database_credential WHERE id = $1", {id1})
                  ->text("expires_at");
  EXPECT_NEAR(seconds_until(exp1), 120, 3);
  EXPECT_EQ(reveal(h, id2), "caller-token-1");
  EXPECT_EQ(reveal(h, id1), tok1);  // still valid inside the window
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);

  // Rotate with a grace period: both valid inside the window.
  Json rot = call_json(h, "rotate_credential", {db, std::string("readwrite"), int64_t{3600}});
  const std::string id3 = rot["credential"]["id"];
  EXPECT_EQ(rot["previous"]["id"], id2);
  EXPECT_EQ(rot["previous"]["status"], "rotating");
  EXPECT_NEAR(seconds_until(rot["previous"]["expiresAt"].get<std::string>()), 3600, 3);
  EXPECT_EQ(rot["credential"]["status"], "active");
  EXPECT_EQ(rot["credential"]["rotatedFrom"], id2);
  EXPECT_EQ(reveal(h, id2), "caller-token-1");
  const std::string tok3 = reveal(h, id3);
  EXPECT_EQ(tok3.size(), 43u);
  EXPECT_NE(tok3, tok1);
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);

  // Expire: overdue rotating credentials become revoked, others stay.
  execute(h.store(),
          "UPDATE envdb.sys_database_credential SET expires_at = '2000-01-01T00:00:00.000Z' "
          "WHERE id = $1",
          {id2});
  EXPECT_EQ(std::get<int64_t>(call(h, "expire_credentials")), 1);
  EXPECT_EQ(status_of(h, id2), "revoked");
  EXPECT_EQ(status_of(h, id1), "rotating");
  EXPECT_EQ(status_of(h, id3), "active");
  EXPECT_EQ(error_of([&] { reveal(h, id2); }).code(), Code::conflict);
  EXPECT_EQ(std::get<int64_t>(call(h, "expire_credentials")), 0);
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);

  // Revoke one by one; a second revoke is a refused transition.
  Json rev = call_json(h, "revoke_credential", {id3})["credential"];
  EXPECT_EQ(rev["status"], "revoked");
  EXPECT_FALSE(rev["revokedAt"].is_null());
  EXPECT_EQ(active_count(h, db, "readwrite"), 0);
  EXPECT_EQ(error_of([&] { call(h, "revoke_credential", {id3}); }).code(),
            Code::invalid_transition);
  EXPECT_EQ(error_of([&] { reveal(h, id3); }).code(), Code::conflict);

  // An active credential past its expires_at expires too.
  Json c4 = call_json(h, "issue_credential", {db, std::string("admin")})["credential"];
  EXPECT_EQ(active_count(h, db, "admin"), 1);
  execute(h.store(),
          "UPDATE envdb.sys_database_credential SET expires_at = '2001-01-01T00:00:00.000Z' "
          "WHERE id = $1",
          {c4["id"].get<std::string>()});
  EXPECT_EQ(error_of([&] { reveal(h, c4["id"]); }).code(), Code::conflict);  // overdue
  EXPECT_EQ(std::get<int64_t>(call(h, "expire_credentials")), 1);
  EXPECT_EQ(active_count(h, db, "admin"), 0);

  // The audit trail tells the story and never holds a token.
  std::string trail;
  for (const Row& r : query(h.store(), "SELECT action, detail FROM envdb.sys_audit_event"))
    trail += r.text("action") + " " + r.text("detail") + "\n";
  for (const char* action : {"credential.issue", "credential.rotate", "credential.expire",
                             "credential.revoke", "credential.reveal"})
    EXPECT_TRUE(contains(trail, action)) << action;
  for (const std::string& secret : {tok1, tok3, std::string("caller-token-1")})
    EXPECT_FALSE(contains(trail, secret));
}

TEST(Credentials, RotationGraceZeroExpiresThePreviousAtOnce) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string id1 = call_json(h, "issue_credential", {db})["credential"]["id"];
  Json rot = call_json(h, "rotate_credential", {db, null_value(), int64_t{0}});
  EXPECT_EQ(rot["previous"]["id"], id1);
  EXPECT_EQ(error_of([&] { reveal(h, id1); }).code(), Code::conflict);
  EXPECT_EQ(std::get<int64_t>(call(h, "expire_credentials")), 1);
  EXPECT_EQ(status_of(h, id1), "revoked");
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);
}

TEST(Credentials, RotationNeverLengthensALife) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string soon = iso_from_ms(now_ms() + 60000);
  const std::string id1 =
      call_json(h, "issue_credential", {db, null_value(), null_value(), soon})["credential"]["id"];
  Json rot = call_json(h, "rotate_credential", {db, null_value(), int64_t{86400}});
  EXPECT_EQ(rot["previous"]["id"], id1);
  EXPECT_EQ(rot["previous"]["expiresAt"], soon);
}

TEST(Credentials, ScopesAreIndependentAndRequestFormWorks) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  call(h, "issue_credential", {db, std::string("admin")});
  call(h, "issue_credential", {db, std::string("readonly")});
  call(h, "issue_credential", {db});
  Value v =
      api::invoke_request(h, *api::find("issue_credential"),
                          Json{{"databaseId", db}, {"scope", "admin"}, {"token", "t-42"}}.dump());
  Json c = Json::parse(std::get<std::string>(v))["credential"];
  EXPECT_EQ(c["scope"], "admin");
  EXPECT_EQ(reveal(h, c["id"]), "t-42");
  for (const char* scope : {"admin", "readonly", "readwrite"})
    EXPECT_EQ(active_count(h, db, scope), 1);
  v = api::invoke_request(h, *api::find("rotate_credential"),
                          Json{{"databaseId", db}, {"scope", "readonly"}, {"grace", 10}}.dump());
  EXPECT_EQ(Json::parse(std::get<std::string>(v))["previous"]["status"], "rotating");
  EXPECT_EQ(active_count(h, db, "readonly"), 1);
}

TEST(Credentials, TursoNeedsTheCallersToken) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h, "turso", "provisioning");
  const std::string before = dump(h);
  Error e = error_of([&] { call(h, "issue_credential", {db}); });
  EXPECT_EQ(e.code(), Code::invalid_parameter);
  EXPECT_STREQ(e.what(), "invalid_parameter: token is required for turso databases");
  EXPECT_EQ(dump(h), before);
  Json c = call_json(h, "issue_credential", {db, std::string("admin"), std::string("turso-jwt")});
  EXPECT_EQ(reveal(h, c["credential"]["id"]), "turso-jwt");
  const std::string mid = dump(h);
  // Without a token the rotation is a mint job for the Turso worker, which a
  // database Turso never got cannot have.
  e = error_of([&] { call(h, "rotate_credential", {db, std::string("admin")}); });
  EXPECT_EQ(e.code(), Code::conflict);
  EXPECT_NE(std::string(e.what()).find("not provisioned at Turso yet"), std::string::npos);
  EXPECT_EQ(dump(h), mid);
  Json rot = call_json(h, "rotate_credential",
                       {db, std::string("admin"), null_value(), std::string("turso-jwt-2")});
  EXPECT_EQ(reveal(h, rot["credential"]["id"]), "turso-jwt-2");
}

TEST(Credentials, RefusalsCarryTheirCodeAndWriteNothing) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string archived = make_database(h, "sqlite", "archived");
  const std::string cred = call_json(h, "issue_credential", {db})["credential"]["id"];
  const std::string long_token(vault::kMaxTokenBytes + 1, 'x');
  const std::string before = dump(h);

  struct Case {
    const char* what;
    std::string fn;
    std::vector<Value> args;
    Code code;
  };
  const std::vector<Case> cases = {
      {"unknown database", "issue_credential", {std::string("no-such-db")}, Code::not_found},
      {"bad database id", "issue_credential", {std::string("bad id")}, Code::invalid_parameter},
      {"archived environment", "issue_credential", {archived}, Code::conflict},
      {"archived environment", "rotate_credential", {archived}, Code::conflict},
      {"unknown scope", "issue_credential", {db, std::string("root")}, Code::invalid_parameter},
      {"empty token",
       "issue_credential",
       {db, null_value(), std::string()},
       Code::invalid_parameter},
      {"long token", "issue_credential", {db, null_value(), long_token}, Code::invalid_parameter},
      {"past expiry",
       "issue_credential",
       {db, null_value(), null_value(), std::string("2001-01-01T00:00:00Z")},
       Code::invalid_parameter},
      {"bad expiry",
       "issue_credential",
       {db, null_value(), null_value(), std::string("soon")},
       Code::invalid_parameter},
      {"no active credential", "rotate_credential", {db, std::string("readonly")}, Code::not_found},
      {"negative grace",
       "rotate_credential",
       {db, null_value(), int64_t{-1}},
       Code::invalid_parameter},
      {"huge grace",
       "rotate_credential",
       {db, null_value(), int64_t{1} << 40},
       Code::invalid_parameter},
      {"unknown database", "rotate_credential", {std::string("nope")}, Code::not_found},
      {"unknown credential", "revoke_credential", {std::string("nope")}, Code::not_found},
      {"unknown credential", "reveal_credential", {std::string("nope")}, Code::not_found},
      {"unloaded target key", "rewrap_credentials", {std::string("k9")}, Code::key_unavailable},
      {"missing argument", "revoke_credential", {}, Code::invalid_parameter},
  };
  for (const Case& c : cases) {
    Error e = error_of([&] { call(h, c.fn, c.args); });
    EXPECT_EQ(e.code(), c.code) << c.fn << ": " << c.what << ": " << e.what();
    EXPECT_FALSE(contains(e.what(), long_token)) << c.what;
    EXPECT_EQ(dump(h), before) << c.fn << ": " << c.what;
  }

  // A failure after the first writes rolls the whole call back.
  h.store().exec(
      "CREATE TEMP TRIGGER refuse_audit BEFORE INSERT ON main.sys_audit_event "
      "BEGIN SELECT RAISE(ABORT, 'conflict: injected failure'); END");
  for (auto fn : {"issue_credential", "rotate_credential"}) {
    EXPECT_EQ(error_of([&] { call(h, fn, {db}); }).code(), Code::conflict) << fn;
    EXPECT_EQ(dump(h), before) << fn;
  }
  EXPECT_EQ(error_of([&] { call(h, "revoke_credential", {cred}); }).code(), Code::conflict);
  EXPECT_EQ(dump(h), before);
  h.store().exec("DROP TRIGGER refuse_audit");
  EXPECT_EQ(status_of(h, cred), "active");
  EXPECT_EQ(active_count(h, db, "readwrite"), 1);

  // No key loaded at all.
  h.keyring() = Keyring();
  EXPECT_EQ(error_of([&] { call(h, "issue_credential", {db}); }).code(), Code::key_unavailable);
  EXPECT_EQ(error_of([&] { call(h, "rotate_credential", {db}); }).code(), Code::key_unavailable);
  EXPECT_EQ(error_of([&] { call(h, "rewrap_credentials"); }).code(), Code::key_unavailable);
  EXPECT_EQ(dump(h), before);
}

TEST(Credentials, TamperedMovedOrWronglyKeyedCiphertextsDoNotOpen) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string a =
      call_json(h, "issue_credential",
                {db, std::string("admin"), std::string("tok-admin")})["credential"]["id"];
  const std::string b =
      call_json(h, "issue_credential",
                {db, std::string("readwrite"), std::string("tok-rw")})["credential"]["id"];
  const Blob original = cipher_of(h, b);

  auto expect_decrypt_failed = [&](const char* what) {
    Error e = error_of([&] { reveal(h, b); });
    EXPECT_EQ(e.code(), Code::decrypt_failed) << what << ": " << e.what();
    EXPECT_TRUE(contains(e.what(), b)) << e.what();
    EXPECT_FALSE(contains(e.what(), "tok-")) << e.what();
  };

  // One flipped bit anywhere: version, nonce, ciphertext, tag.
  for (size_t at : {size_t{0}, size_t{5}, size_t{20}, original.bytes.size() - 1}) {
    Blob flipped = original;
    flipped.bytes[at] = static_cast<char>(flipped.bytes[at] ^ 0x01);
    set_cipher(h, b, flipped);
    expect_decrypt_failed("flipped byte");
  }
  set_cipher(h, b, Blob{original.bytes.substr(0, 10)});
  expect_decrypt_failed("truncated");
  set_cipher(h, b, std::string("not a ciphertext at all, just text"));
  expect_decrypt_failed("text");

  // Another row's ciphertext: its associated data names the other row.
  set_cipher(h, b, cipher_of(h, a));
  expect_decrypt_failed("moved");

  // Restored, it opens again.
  set_cipher(h, b, original);
  EXPECT_EQ(reveal(h, b), "tok-rw");

  // The same key id with other bytes is a wrong key, not garbage.
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k1"), key_b64('z')});
  expect_decrypt_failed("wrong key");
}

TEST(Credentials, MissingKeyIsKeyUnavailable) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string id = call_json(h, "issue_credential", {db})["credential"]["id"];
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  Error e = error_of([&] { reveal(h, id); });
  EXPECT_EQ(e.code(), Code::key_unavailable);
  EXPECT_EQ(std::string(e.what()),
            "key_unavailable: credential " + id + " is sealed under key 'k1', which is not loaded");
}

TEST(Credentials, RewrapMovesEveryLiveCredentialAndRevealStillWorks) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const std::string db2 = make_database(h);
  std::map<std::string, std::string> tokens;
  for (const std::string& d : {db, db2})
    for (const char* scope : {"admin", "readwrite", "readonly"}) {
      std::string id =
          call_json(h, "issue_credential", {d, std::string(scope)})["credential"]["id"];
      tokens[id] = reveal(h, id);
    }
  const std::string revoked = tokens.begin()->first;
  call(h, "revoke_credential", {revoked});

  EXPECT_EQ(call_text(h, "keyring_add", {std::string("k2"), key_b64('b')}), "added k2");
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), 5);
  EXPECT_EQ(
      count(h, "SELECT count(*) AS n FROM envdb.sys_database_credential WHERE kms_key_id = 'k2'"),
      5);
  EXPECT_EQ(query_one(h.store(),
                      "SELECT kms_key_id FROM envdb.sys_database_credential WHERE id = $1",
                      {revoked})
                ->text("kms_key_id"),
            "k1");  // revoked credentials stay where they are
  for (auto& [id, token] : tokens)
    if (id != revoked) {
      EXPECT_EQ(reveal(h, id), token);
    }
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), 0);

  // Without k1 every moved credential still opens.
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  for (auto& [id, token] : tokens)
    if (id != revoked) {
      EXPECT_EQ(reveal(h, id), token);
    }

  // Default target: the active key.
  call(h, "keyring_add", {std::string("k3"), key_b64('c')});
  EXPECT_EQ(call_text(h, "keyring_use", {std::string("k3")}), "using k3");
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials")), 5);
  for (auto& [id, token] : tokens)
    if (id != revoked) {
      EXPECT_EQ(reveal(h, id), token);
    }
  // open_token is the router's way in.
  auto row = query_one(h.store(),
                       std::string("SELECT ") + vault::kSealedColumns +
                           " FROM envdb.sys_database_credential WHERE id = $1",
                       {std::prev(tokens.end())->first});
  EXPECT_EQ(vault::open_token(h, *row), std::prev(tokens.end())->second);
}

TEST(Credentials, RewrapIsAllOrNothingWhenAKeyIsMissing) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  call(h, "issue_credential", {db, std::string("admin")});  // under k1
  // A later millisecond gives a later UUIDv7: rewrap (ORDER BY id) moves the
  // k1 credential before it meets the one under the missing key.
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  call(h, "keyring_add", {std::string("kx"), key_b64('x')});
  call(h, "keyring_use", {std::string("kx")});
  const std::string under_kx =
      call_json(h, "issue_credential", {db, std::string("readonly")})["credential"]["id"];
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  // kx leaves the keyring: a fresh one holds k1 and k2.
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k1"), key_b64('a')});
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  const std::string before = dump(h);
  Error e = error_of([&] { call(h, "rewrap_credentials", {std::string("k2")}); });
  EXPECT_EQ(e.code(), Code::key_unavailable);
  EXPECT_TRUE(contains(e.what(), under_kx)) << e.what();
  EXPECT_TRUE(contains(e.what(), "'kx', which is not loaded")) << e.what();
  EXPECT_EQ(dump(h), before);  // the k1 credential, rewrapped first, was rolled back
}

TEST(Credentials, RewrapWorksInBatchesAndReportsProgress) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  const int n = 1203;
  h.store().exec("BEGIN");
  for (int i = 0; i < n; ++i) {
    Json c = vault::insert_sealed(h, db, "readwrite", "token-" + std::to_string(i), std::nullopt,
                                  std::nullopt);
    execute(h.store(), "UPDATE envdb.sys_database_credential SET status = 'rotating' WHERE id = $1",
            {c["id"].get<std::string>()});
  }
  h.store().exec("COMMIT");
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  h.notices.clear();
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), n);
  ASSERT_EQ(h.notices.size(), 3u);
  EXPECT_EQ(h.notices[0].rfind("rewrapped 500 of 1203", 0), 0u) << h.notices[0];
  EXPECT_EQ(h.notices[2].rfind("rewrapped 1203 of 1203", 0), 0u) << h.notices[2];
  EXPECT_EQ(
      count(h, "SELECT count(*) AS n FROM envdb.sys_database_credential WHERE kms_key_id = 'k2'"),
      n);
  auto rows = query(h.store(), std::string("SELECT ") + vault::kSealedColumns +
                                   " FROM envdb.sys_database_credential ORDER BY id");
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  // UUIDv7 ids are not ordered within one millisecond: compare as a set.
  std::set<std::string> opened;
  for (const Row& r : rows) opened.insert(vault::open_token(h, r));
  ASSERT_EQ(opened.size(), static_cast<size_t>(n));
  EXPECT_EQ(opened.count("token-0"), 1u);
  EXPECT_EQ(opened.count("token-1202"), 1u);
}

// One batch and one row more, over three databases (interleaved in id order),
// some rows still in envelope format 1: every live row is re-sealed exactly
// once, format 2 under the new key, and opens to its own token.
TEST(Credentials, RewrapAtTheBatchBoundaryReSealsEveryRowOnce) {
  test::MemoryHost h;
  setup(h);
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});  // k1 stays the active key
  const std::vector<std::string> dbs = {make_database(h), make_database(h), make_database(h)};
  const int n = static_cast<int>(credentials::kRewrapBatch) + 1;
  std::map<std::string, std::string> tokens;  // id -> token
  std::map<std::string, Blob> before;         // id -> token_cipher
  const auto unbind = [&](const std::string& id, const std::string& db, const std::string& key) {
    const std::string cipher = crypto::seal(h.keyring().key(key), tokens[id],
                                            crypto::credential_aad(id, db, "readwrite"),
                                            crypto::kEnvelopeVersionUnbound);
    execute(h.store(),
            "UPDATE envdb.sys_database_credential SET token_cipher = $2, kms_key_id = $3 "
            "WHERE id = $1",
            {id, Blob{cipher}, key});
  };
  h.store().exec("BEGIN");
  for (int i = 0; i < n + 3; ++i) {
    const std::string& db = dbs[static_cast<size_t>(i) % dbs.size()];
    const std::string token = "token-" + std::to_string(i);
    Json c = vault::insert_sealed(h, db, "readwrite", token, std::nullopt, std::nullopt);
    const std::string id = c["id"];
    execute(h.store(), "UPDATE envdb.sys_database_credential SET status = 'rotating' WHERE id = $1",
            {id});
    tokens[id] = token;
    if (i >= n)  // three more under the target key: two in format 1, one in format 2
      unbind(id, db, "k2");
    else if (i % 7 == 0)
      unbind(id, db, "k1");
    if (i == n + 2) {
      const std::string cipher =
          crypto::seal(h.keyring().key("k2"), token,
                       vault::bound_aad(id, db, "readwrite", {database_name_for(db), std::nullopt}),
                       crypto::kEnvelopeVersionBound);
      set_cipher(h, id, Blob{cipher});
    }
    before[id] = cipher_of(h, id);
  }
  h.store().exec("COMMIT");
  h.notices.clear();
  // n under k1 and the two format-1 envelopes under k2.
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), n + 2);
  ASSERT_EQ(h.notices.size(), 3u);
  const std::string total = std::to_string(n + 2);
  EXPECT_EQ(h.notices[0].rfind("rewrapped 2 of " + total, 0), 0u) << h.notices[0];
  EXPECT_EQ(h.notices[1].rfind("rewrapped " + std::to_string(credentials::kRewrapBatch + 2) +
                                   " of " + total,
                               0),
            0u)
      << h.notices[1];
  EXPECT_EQ(h.notices[2].rfind("rewrapped " + total + " of " + total, 0), 0u) << h.notices[2];
  auto audit = query_one(h.store(),
                         "SELECT detail FROM envdb.sys_audit_event WHERE action = "
                         "'credential.rewrap'");
  ASSERT_TRUE(audit);
  const Json detail = Json::parse(audit->text("detail"));
  EXPECT_EQ(detail["credentials"], n + 2);
  EXPECT_EQ(detail["from"], (Json{{"k1", n}, {"k2", 2}}));
  // Only k2 loaded: each row is format 2 under k2 and opens to its own token;
  // every one but the format-2 row already under k2 has a new envelope.
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  int changed = 0;
  for (const Row& r : query(h.store(), std::string("SELECT ") + vault::kSealedColumns +
                                           " FROM envdb.sys_database_credential")) {
    const std::string id = r.text("id");
    EXPECT_EQ(r.text("kms_key_id"), "k2");
    const std::string& cipher = std::get<Blob>(r["token_cipher"]).bytes;
    EXPECT_EQ(crypto::envelope_version(cipher), crypto::kEnvelopeVersionBound) << id;
    EXPECT_EQ(vault::open_token(h, r), tokens[id]);
    changed += before[id].bytes != cipher ? 1 : 0;
  }
  EXPECT_EQ(changed, n + 2);
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), 0);
}

// A database's row is checked once for its consecutive credentials, never
// skipped for the next database's: a row envdb never writes there refuses the
// whole call (schema_mismatch) and nothing changes.
TEST(Credentials, RewrapChecksTheRowOfEachDatabase) {
  test::MemoryHost h;
  setup(h);
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  const std::string good = make_database(h), bad = make_database(h);
  for (const std::string& db : {good, good, bad, bad}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // ids in this order
    vault::insert_sealed(h, db, "readwrite", "token", std::nullopt, std::nullopt);
    execute(h.store(),
            "UPDATE envdb.sys_database_credential SET status = 'rotating' WHERE status = "
            "'active'");
  }
  execute(
      h.store(),
      "UPDATE envdb.sys_environment_database SET database_url = 'file:/elsewhere.db' WHERE id = $1",
      {bad});
  const std::string before = dump(h);
  Error e = error_of([&] { call(h, "rewrap_credentials", {std::string("k2")}); });
  EXPECT_EQ(e.code(), Code::schema_mismatch) << e.what();
  EXPECT_TRUE(contains(e.what(), bad)) << e.what();
  EXPECT_EQ(dump(h), before);
}

TEST(Credentials, FunctionTableRowsAndRoles) {
  using namespace api;
  struct Want {
    const char* name;
    std::vector<std::string> params;
    Type returns;
    unsigned roles;
  };
  const std::vector<Want> wants = {
      {"issue_credential", {"database_id", "scope", "token", "expires_at"}, Type::json, kAdmin},
      {"rotate_credential", {"database_id", "scope", "grace", "token"}, Type::json, kAdmin},
      {"revoke_credential", {"credential_id"}, Type::json, kAdmin},
      {"expire_credentials", {}, Type::integer, kAdmin},
      {"rewrap_credentials", {"kms_key_id"}, Type::integer, kAdmin},
      {"reveal_credential", {"credential_id"}, Type::text, kAdmin | kRouter},
      {"keyring_status", {}, Type::json, kAdmin},
      {"keyring_add", {"kms_key_id", "key_base64"}, Type::text, kAdmin},
      {"keyring_use", {"kms_key_id"}, Type::text, kAdmin},
  };
  for (const Want& w : wants) {
    const Function* f = find(w.name);
    ASSERT_NE(f, nullptr) << w.name;
    std::vector<std::string> params;
    for (auto& p : f->params) params.push_back(p.name);
    EXPECT_EQ(params, w.params) << w.name;
    EXPECT_EQ(f->returns, w.returns) << w.name;
    EXPECT_EQ(f->roles, w.roles) << w.name;
    EXPECT_FALSE(f->flags & kPure) << w.name;
    EXPECT_TRUE(available_in(*f, "sqlite")) << w.name;
  }
  EXPECT_FALSE(available_in(*find("keyring_add"), "postgres"));
  EXPECT_FALSE(available_in(*find("keyring_use"), "postgres"));
  EXPECT_TRUE(available_in(*find("keyring_status"), "postgres"));
}

TEST(CredentialsFile, ControlDatabaseNeverHoldsAPlaintextToken) {
  char name[] = "/tmp/envdb_cred_XXXXXX";
  const int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string path = name;
  const std::string key_bytes = "0123456789abcdefghijklmnopqrstuv";
  std::vector<std::string> secrets = {"PLAINTEXT-caller-token-7f3a9c", "PLAINTEXT-rotated-41d2e8"};
  std::string db, rotated_id;
  {
    FileHost h(path);
    call(h, "init");
    call(h, "keyring_add", {std::string("k1"), crypto::base64_encode(key_bytes)});
    db = make_database(h);
    call(h, "issue_credential", {db, std::string("admin"), secrets[0]});
    std::string generated = call_json(h, "issue_credential", {db})["credential"]["id"];
    secrets.push_back(reveal(h, generated));
    Json rot =
        call_json(h, "rotate_credential", {db, std::string("admin"), int64_t{60}, secrets[1]});
    rotated_id = rot["credential"]["id"];
    Json rot2 = call_json(h, "rotate_credential", {db});
    secrets.push_back(reveal(h, rot2["credential"]["id"]));
    call(h, "keyring_add", {std::string("k2"), key_b64('q')});
    EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), 4);
    call(h, "revoke_credential", {rot["previous"]["id"].get<std::string>()});
    call(h, "expire_credentials");
    EXPECT_EQ(reveal(h, rotated_id), secrets[1]);
  }
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_TRUE(contains(bytes, db));  // the file holds the rows we wrote
  for (const std::string& s : secrets) EXPECT_FALSE(contains(bytes, s)) << s;
  EXPECT_FALSE(contains(bytes, key_bytes));
  EXPECT_FALSE(contains(bytes, crypto::base64_encode(key_bytes)));

  // A new host on the same file, without the key: key_unavailable, never garbage.
  {
    FileHost h(path);
    Error e = error_of([&] { reveal(h, rotated_id); });
    EXPECT_EQ(e.code(), Code::key_unavailable);
    EXPECT_TRUE(contains(e.what(), "sealed under key 'k2', which is not loaded")) << e.what();
    call(h, "keyring_add", {std::string("k2"), key_b64('r')});  // the wrong bytes
    EXPECT_EQ(error_of([&] { reveal(h, rotated_id); }).code(), Code::decrypt_failed);
  }
  {
    FileHost h(path);
    call(h, "keyring_add", {std::string("k2"), key_b64('q')});
    EXPECT_EQ(reveal(h, rotated_id), secrets[1]);
  }
  std::remove(path.c_str());
}

TEST(KeyringFunctions, StatusCoversLoadedAndReferencedKeysWithoutKeyMaterial) {
  test::MemoryHost h;
  setup(h);
  const std::string db = make_database(h);
  call(h, "issue_credential", {db, std::string("admin")});
  call(h, "issue_credential", {db, std::string("readonly")});
  const std::string gone = call_json(h, "issue_credential", {db})["credential"]["id"];
  call(h, "revoke_credential", {gone});
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  call(h, "keyring_use", {std::string("k2")});
  call(h, "issue_credential", {db});

  const std::string text = call_text(h, "keyring_status");
  EXPECT_FALSE(contains(text, key_b64('a')));
  EXPECT_FALSE(contains(text, key_b64('b')));
  EXPECT_EQ(Json::parse(text),
            Json::parse(R"([{"kmsKeyId":"k1","active":false,"loaded":true,"credentials":2},
                            {"kmsKeyId":"k2","active":true,"loaded":true,"credentials":1}])"));

  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k3"), key_b64('c')});
  EXPECT_EQ(call_json(h, "keyring_status"),
            Json::parse(R"([{"kmsKeyId":"k3","active":true,"loaded":true,"credentials":0},
                            {"kmsKeyId":"k1","active":false,"loaded":false,"credentials":2},
                            {"kmsKeyId":"k2","active":false,"loaded":false,"credentials":1}])"));
}

TEST(KeyringFunctions, AddAndUseRefuseBadInputWithoutEchoingKeys) {
  test::MemoryHost h;
  call(h, "init");
  EXPECT_EQ(call_json(h, "keyring_status"), Json::array());

  const std::string not_b64 = "this-is/not_base64!!";
  Error e = error_of([&] { call(h, "keyring_add", {std::string("k1"), not_b64}); });
  EXPECT_EQ(e.code(), Code::invalid_parameter);
  EXPECT_TRUE(contains(e.what(), "key_base64")) << e.what();
  EXPECT_FALSE(contains(e.what(), not_b64));

  const std::string short_key = crypto::base64_encode(std::string(16, 's'));
  e = error_of([&] { call(h, "keyring_add", {std::string("k1"), short_key}); });
  EXPECT_EQ(e.code(), Code::invalid_parameter);
  EXPECT_TRUE(contains(e.what(), "key_base64 must decode to exactly 32 bytes, got 16")) << e.what();
  EXPECT_FALSE(contains(e.what(), short_key));

  EXPECT_EQ(error_of([&] {
              call(h, "keyring_add", {std::string("bad id"), key_b64('a')});
            }).code(),
            Code::invalid_parameter);
  EXPECT_EQ(h.keyring().size(), 0u);

  EXPECT_EQ(call_text(h, "keyring_add", {std::string("k1"), key_b64('a')}), "added k1");
  EXPECT_EQ(call_text(h, "keyring_add", {std::string("k1"), key_b64('a')}), "added k1");
  e = error_of([&] { call(h, "keyring_add", {std::string("k1"), key_b64('b')}); });
  EXPECT_EQ(e.code(), Code::conflict);
  EXPECT_FALSE(contains(e.what(), key_b64('b')));
  EXPECT_EQ(h.keyring().active_id(), "k1");

  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  EXPECT_EQ(h.keyring().active_id(), "k1");  // a later key waits for keyring_use
  EXPECT_EQ(error_of([&] { call(h, "keyring_use", {std::string("k9")}); }).code(),
            Code::key_unavailable);
  EXPECT_EQ(call_text(h, "keyring_use", {std::string("k2")}), "using k2");
  EXPECT_EQ(h.keyring().active_id(), "k2");
}

// A host whose first progress notice plays another session committing in the
// middle of the pass: a credential issued under the old key (a later id), one
// already re-sealed put back under the old key (behind the cursor), and one
// not reached yet revoked.
class MidPassHost : public test::MemoryHost {
 public:
  std::function<void()> on_first_notice;
  void notice(const std::string& m) override {
    MemoryHost::notice(m);
    if (on_first_notice) std::exchange(on_first_notice, nullptr)();
  }
};

TEST(Credentials, RewrapKeysetWalkReSealsRowsChangedDuringThePass) {
  MidPassHost h;
  setup(h);
  const std::string db = make_database(h);
  const int n = 1203;
  std::map<std::string, std::string> tokens = insert_rotating(h, db, n);  // id -> token
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});              // k1 stays the active key
  const std::string first = tokens.begin()->first, last = std::prev(tokens.end())->first;
  std::string late;
  h.on_first_notice = [&] {
    // Behind the cursor: re-sealed under k1 as an older session would.
    auto row = query_one(h.store(),
                         std::string("SELECT c.id, c.database_id, c.scope, c.kms_key_id, "
                                     "c.token_cipher, d.driver, d.database_name, d.database_url "
                                     "FROM envdb.sys_database_credential c JOIN "
                                     "envdb.sys_environment_database d ON d.id = c.database_id "
                                     "WHERE c.id = $1"),
                         {first});
    ASSERT_EQ(row->text("kms_key_id"), "k2");
    const crypto::SecretBytes token = vault::open_secret(h, *row);
    const std::string cipher =
        crypto::seal(h.keyring().key("k1"), token.view(),
                     vault::bound_aad(first, db, "readwrite",
                                      {row->text("database_name"), std::nullopt}),
                     crypto::kEnvelopeVersionBound);
    execute(h.store(),
            "UPDATE envdb.sys_database_credential SET token_cipher = $2, kms_key_id = 'k1' "
            "WHERE id = $1",
            {first, Blob{cipher}});
    // Ahead of it: revoked, so left alone.
    execute(h.store(), "UPDATE envdb.sys_database_credential SET status = 'revoked' WHERE id = $1",
            {last});
    // New: issued under k1.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    late = vault::insert_sealed(h, db, "readonly", "late-token", std::nullopt, std::nullopt)["id"];
  };
  // n - 1 (one revoked) + the late one + the one put back.
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), n + 1);
  EXPECT_EQ(count(h,
                  "SELECT count(*) AS n FROM envdb.sys_database_credential WHERE kms_key_id = "
                  "'k1' AND status <> 'revoked'"),
            0);
  EXPECT_EQ(count(h,
                  "SELECT count(*) AS n FROM envdb.sys_database_credential WHERE id = $1 AND "
                  "kms_key_id = 'k1'",
                  {last}),
            1);
  // Everything live opens under k2 alone to its own token.
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  tokens.erase(last);
  tokens[late] = "late-token";
  for (const Row& r :
       query(h.store(), std::string("SELECT ") + vault::kSealedColumns +
                            " FROM envdb.sys_database_credential WHERE status <> 'revoked'")) {
    ASSERT_EQ(tokens.count(r.text("id")), 1u) << r.text("id");
    EXPECT_EQ(vault::open_token(h, r), tokens[r.text("id")]);
  }
  // A second call finds nothing to do and says so without a notice.
  h.notices.clear();
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), 0);
  EXPECT_TRUE(h.notices.empty());
}

// A database's URL changed between two batches (another session, in
// Postgres): the rows of the next batch are bound to the URL they are read
// with, not to the one the previous batch hashed.
TEST(Credentials, RewrapBindsEachBatchToTheUrlItReads) {
  MidPassHost h;
  setup(h);
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  const std::string db = make_database(h, "turso");
  vault::set_database_url(h, db, "libsql://before.example");
  const int n = static_cast<int>(credentials::kRewrapBatch) + 1;
  std::map<std::string, std::string> tokens = insert_rotating(h, db, n);  // id -> token
  h.on_first_notice = [&] { vault::set_database_url(h, db, "libsql://after.example"); };
  EXPECT_EQ(std::get<int64_t>(call(h, "rewrap_credentials", {std::string("k2")})), n);
  h.keyring() = Keyring();
  call(h, "keyring_add", {std::string("k2"), key_b64('b')});
  for (const Row& r : query(h.store(), std::string("SELECT ") + vault::kSealedColumns +
                                           " FROM envdb.sys_database_credential")) {
    EXPECT_EQ(r.text("kms_key_id"), "k2");
    EXPECT_EQ(vault::open_token(h, r), tokens[r.text("id")]);
  }
}

TEST(Credentials, RewrapUsesTheKmsKeyIndex) {
  test::MemoryHost h;
  setup(h);
  // The keyset walk's batch query reads one key's rows in id order.
  auto plan = query(h.store(),
                    "EXPLAIN QUERY PLAN SELECT c.id FROM sys_database_credential c WHERE "
                    "c.kms_key_id = 'k1' AND c.id > '' AND c.status <> 'revoked' ORDER BY c.id "
                    "LIMIT 500");
  std::string text;
  for (const Row& r : plan) text += r.text("detail") + "\n";
  EXPECT_TRUE(contains(text, "sys_database_credential_kms_key_idx")) << text;
  EXPECT_FALSE(contains(text, "TEMP B-TREE")) << text;
}
