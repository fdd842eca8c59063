#include "credentials.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "audit.hpp"
#include "clock.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "ids.hpp"
#include "pgdriver.hpp"
#include "records.hpp"
#include "row_rules.hpp"
#include "setup.hpp"
#include "turso.hpp"

namespace envdb::credentials {

const char* const kSealedColumns = "id, database_id, scope, kms_key_id, token_cipher";

namespace {

using T = api::Type;

// Durations are capped so that a computed timestamp keeps a four-digit year:
// the ISO text form, and its ordering as text in SQLite, rely on it.
constexpr int64_t kMaxSeconds = 100LL * 366 * 86400;

std::string seconds_from_now(int64_t seconds) {
  return iso_from_ms(now_ms() + std::min(seconds, kMaxSeconds) * 1000);
}

std::optional<std::string> default_expiry(Host& host) {
  const int64_t ttl = setup::setting_seconds(host, "credential_ttl_seconds");
  if (ttl <= 0) return std::nullopt;
  return seconds_from_now(ttl);
}

Value opt(const std::optional<std::string>& v) { return v ? Value(*v) : null_value(); }

bool postgres(Store& store) { return store.dialect() == Dialect::postgres; }

// The sentence of an error, without its code word.
std::string sentence_of(const Error& e) {
  const std::string what = e.what();
  const std::string prefix = std::string(code_word(e.code())) + ": ";
  return what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what;
}

// What a credential is bound to besides its own row (envelope format 2).
struct Identity {
  std::string name;
  std::optional<std::string> url;
};

// A database's identity as its row says now, validated (row_rules):
// schema_mismatch for a name or URL envdb never writes.
Identity database_identity(Store& store, const std::string& database_id) {
  auto db = query_one(store,
                      "SELECT id, driver, database_name, database_url "
                      "FROM envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  row_rules::require_database(*db);
  return {db->text("database_name"), db->opt_text("database_url")};
}

bool has_column(const Row& row, const char* name) {
  for (const std::string& n : row.names())
    if (n == name) return true;
  return false;
}

std::string bound_aad(const std::string& id, const std::string& database_id,
                      const std::string& scope, const Identity& identity) {
  return crypto::bound_credential_aad(id, database_id, scope, identity.name, identity.url);
}

crypto::SecretBytes open_secret(Host& host, const Row& row) {
  const std::string id = row.text("id");
  const std::string kms_key_id = row.text("kms_key_id");
  Keyring& keyring = host.keyring();
  if (!keyring.has(kms_key_id))
    fail(Code::key_unavailable, "credential " + id + " is sealed under key " +
                                    quote_value(kms_key_id) + ", which is not loaded");
  const Value& cipher = row["token_cipher"];
  std::string_view envelope;
  if (auto blob = std::get_if<Blob>(&cipher)) {
    envelope = blob->bytes;
  } else if (auto text = std::get_if<std::string>(&cipher)) {
    envelope = *text;  // a hand-edited row; crypto::open will judge it
  } else {
    fail(Code::decrypt_failed, "credential " + id + " has no ciphertext");
  }
  const std::string database_id = row.text("database_id");
  const std::string scope = row.text("scope");
  try {
    // Format 1 (before 0.3.0) opens under its own associated data until it
    // is re-sealed; anything else is judged as format 2, bound to the
    // database's name and URL as the row says now (taken from `row` when it
    // carries them, the router's case; else read).
    if (crypto::envelope_version(envelope) == crypto::kEnvelopeVersionUnbound)
      return crypto::open(keyring.key(kms_key_id), envelope,
                          crypto::credential_aad(id, database_id, scope),
                          crypto::kEnvelopeVersionUnbound);
    Identity identity;
    if (has_column(row, "database_name") && has_column(row, "driver")) {
      identity = {row.text("database_name"), row.opt_text("database_url")};
      row_rules::require_database(database_id, row.text("driver"), identity.name, identity.url);
    } else {
      identity = database_identity(host.store(), database_id);
    }
    return crypto::open(keyring.key(kms_key_id), envelope,
                        bound_aad(id, database_id, scope, identity),
                        crypto::kEnvelopeVersionBound);
  } catch (const Error& e) {
    if (e.code() != Code::decrypt_failed) throw;
    fail(Code::decrypt_failed, "credential " + id + " does not open under key " +
                                   quote_value(kms_key_id) + ": " + sentence_of(e));
  }
}

Json insert_sealed_token(Host& host, const std::string& database_id, const std::string& scope,
                         std::string_view token, const std::optional<std::string>& expires_at,
                         const std::optional<std::string>& rotated_from) {
  Keyring& keyring = host.keyring();
  const crypto::SecretBytes& key = keyring.active_key();
  const std::string id = new_uuid_v7();
  auto db = query_one(host.store(),
                      "SELECT id, driver, database_name, database_url "
                      "FROM envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  row_rules::require_database(*db);
  const std::string cipher =
      crypto::seal(key, token,
                   bound_aad(id, database_id, scope,
                             {db->text("database_name"), db->opt_text("database_url")}),
                   crypto::kEnvelopeVersionBound);
  const std::string now = now_iso();
  // A postgres database's credential is a login role of that name.
  std::optional<std::string> username;
  if (db->text("driver") == "postgres")
    username = pgdriver::login_name(db->text("database_name"), scope, id);
  execute(host.store(),
          "INSERT INTO envdb.sys_database_credential (id, database_id, token_cipher, kms_key_id, "
          "scope, status, username, issued_at, expires_at, rotated_from) "
          "VALUES ($1, $2, $3, $4, $5, 'active', $6, $7::timestamptz, $8::timestamptz, $9)",
          {id, database_id, Blob{cipher}, keyring.active_id(), scope, opt(username), now,
           opt(expires_at), opt(rotated_from)});
  return records::credential_json(records::load_credential(host.store(), "credential_id", id));
}

// A database with its environment, the target of issue and rotate.
struct Target {
  std::string database_id;
  std::string driver;
  std::string environment_id;
  std::string organization_id;
};

// Loads a database and its environment, refusing an archived environment.
// In Postgres the environment row is locked FOR NO KEY UPDATE (one
// environment has one database), so issue and rotate on one database run one
// after the other and the later one's next statements see what the earlier
// one committed. (Locking only the active credential row would not do under
// READ COMMITTED: the waiting transaction re-checks that row, finds it no
// longer active and misses the new one.) The same lock makes an archive
// (which revokes every credential) run wholly before or wholly after this
// call. The database row is not locked: the router's last_accessed_at touch
// holds that row until its transaction ends, and an admin write must never
// wait for a router that keeps its transaction open. Inserting a credential
// takes only FOR KEY SHARE on it, which the touch does not block.
Target load_target(Store& store, const std::string& database_id) {
  require_id("database_id", database_id);
  std::string sql =
      "SELECT d.id, d.driver, e.id AS environment_id, e.organization_id, e.status "
      "FROM envdb.sys_environment_database d JOIN envdb.sys_environment e "
      "ON e.id = d.environment_id WHERE d.id = $1";
  if (postgres(store)) sql += " FOR NO KEY UPDATE OF e";
  auto row = query_one(store, sql, {database_id});
  if (!row)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  if (row->text("status") == "archived")
    fail(Code::conflict, "database_id " + quote_value(database_id) + " belongs to environment " +
                             quote_value(row->text("environment_id")) + ", which is archived");
  return {row->text("id"), row->text("driver"), row->text("environment_id"),
          row->text("organization_id")};
}

std::string scope_arg(api::Call& c) {
  std::string scope = c.opt_text("scope", 64).value_or("readwrite");
  if (!is_scope(scope))
    fail(Code::invalid_parameter,
         "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
  return scope;
}

// The caller's token, or a generated one where envdb mints tokens. Never
// quoted in a message.
crypto::SecretBytes token_arg(api::Call& c, const Target& target, bool& generated) {
  auto token = c.opt_text("token", kMaxTokenBytes);
  if (token) {
    if (token->empty()) fail(Code::invalid_parameter, "token must not be empty");
    generated = false;
    return crypto::SecretBytes(std::move(*token));
  }
  if (target.driver == "turso")
    fail(Code::invalid_parameter, "token is required for turso databases");
  generated = true;
  return crypto::SecretBytes(crypto::generate_token());
}

std::optional<Row> active_credential(Store& store, const std::string& database_id,
                                     const std::string& scope) {
  std::string sql = std::string("SELECT ") + records::kCredentialColumns +
                    " FROM envdb.sys_database_credential "
                    "WHERE database_id = $1 AND scope = $2 AND status = 'active'";
  if (postgres(store)) sql += " FOR UPDATE";
  return query_one(store, sql, {database_id, scope});
}

// The previous credential stays valid until `until`, or until its own earlier
// expiry: a rotation never lengthens a credential's life.
void start_rotating(Store& store, const std::string& credential_id, const std::string& until) {
  execute(store,
          "UPDATE envdb.sys_database_credential SET status = 'rotating', expires_at = CASE WHEN "
          "expires_at IS NOT NULL AND expires_at < $2::timestamptz THEN expires_at ELSE "
          "$2::timestamptz END WHERE id = $1",
          {credential_id, until});
}

audit::Event event_for(const Target& t, const char* action, const std::string& credential_id) {
  audit::Event e;
  e.action = action;
  e.organization_id = t.organization_id;
  e.environment_id = t.environment_id;
  e.subject_type = "credential";
  e.subject_id = credential_id;
  return e;
}

// A credential with the identity of its environment, for revoke, expire and
// reveal.
std::string credential_with_owner_sql(const std::string& where) {
  return "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.status, c.expires_at, "
         "d.environment_id, e.organization_id FROM envdb.sys_database_credential c "
         "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
         "JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE " +
         where;
}

audit::Event event_for(const Row& r, const char* action) {
  audit::Event e;
  e.action = action;
  e.organization_id = r.text("organization_id");
  e.environment_id = r.text("environment_id");
  e.subject_type = "credential";
  e.subject_id = r.text("id");
  e.detail = Json{{"databaseId", r.text("database_id")}, {"scope", r.text("scope")}};
  return e;
}

// The audit trail of a reveal. Repeated reveals of one credential by one
// caller within a minute (UTC, from :00) are counted on that minute's first
// event (detail.count, detail.lastAt), so the append-only table grows with
// distinct events, not with calls. In Postgres an event another transaction
// is counting on is skipped (SKIP LOCKED), never waited for: a router that
// keeps its transaction open then costs one more event, not a stall.
void record_reveal(Host& host, const Row& row) {
  Store& store = host.store();
  const int64_t now = now_ms();
  const auto actor = host.actor();
  std::string sql =
      "SELECT id, detail FROM envdb.sys_audit_event WHERE environment_id = $1 AND "
      "occurred_at >= $2::timestamptz AND action = 'credential.reveal' AND subject_id = $3 AND "
      "COALESCE(actor, '') = $4 ORDER BY occurred_at DESC, id DESC LIMIT 1";
  if (postgres(store)) sql += " FOR UPDATE SKIP LOCKED";
  auto previous = query_one(store, sql,
                            {row.text("environment_id"), iso_from_ms(now - now % 60000),
                             row.text("id"), actor.value_or("")});
  if (previous) {
    Json detail = Json::parse(previous->text("detail"), nullptr, false);
    if (detail.is_object() && detail.contains("count") && detail["count"].is_number_integer()) {
      detail["count"] = detail["count"].get<int64_t>() + 1;
      detail["lastAt"] = iso_from_ms(now);
      execute(store, "UPDATE envdb.sys_audit_event SET detail = $2::jsonb WHERE id = $1",
              {previous->text("id"), detail.dump()});
      return;
    }
  }
  audit::Event e = event_for(row, "credential.reveal");
  e.detail["count"] = 1;
  e.detail["lastAt"] = iso_from_ms(now);
  audit::record(host, e);
}

// ---- SQL functions -------------------------------------------------------

Value issue(api::Call& c) {
  const std::string database_id = c.text("database_id", 128);
  const std::string scope = scope_arg(c);
  const auto expires_at = c.opt_timestamp("expires_at");
  if (expires_at && ms_from_iso(*expires_at).value_or(0) <= now_ms())
    fail(Code::invalid_parameter,
         "expires_at " + quote_value(*expires_at) + " is not in the future");

  Host& host = c.host;
  Store& store = c.store;
  Atomic tx(store);
  const Target target = load_target(store, database_id);
  bool generated = false;
  const crypto::SecretBytes token = token_arg(c, target, generated);
  host.keyring().active_key();  // key_unavailable before anything is written

  // One active credential per scope: an active one is superseded, and stays
  // valid for the rotation grace period as `rotating`.
  std::optional<std::string> superseded;
  if (auto previous = active_credential(store, database_id, scope)) {
    superseded = previous->text("id");
    start_rotating(store, *superseded,
                   seconds_from_now(setup::setting_seconds(host, "rotation_grace_seconds")));
  }
  Json credential = insert_sealed_token(host, database_id, scope, token.view(),
                                        expires_at ? expires_at : default_expiry(host), superseded);
  audit::Event e = event_for(target, "credential.issue", credential["id"].get<std::string>());
  e.detail = Json{{"databaseId", database_id},
                  {"scope", scope},
                  {"kmsKeyId", credential["kmsKeyId"]},
                  {"tokenSource", generated ? "generated" : "caller"},
                  {"supersededId", json_text(superseded)}};
  audit::record(host, e);
  pgdriver::queue_job(host, database_id, "create_login", credential["id"].get<std::string>());
  tx.done();
  return api::json_result(Json{{"credential", credential}});
}

// rotate_credential on a turso database without a token: envdb cannot mint
// Turso tokens, so the worker is asked to (a create_login job). The active
// credential stays active until the job completes; then it is rotating for
// `grace` and the minted token is the active one (turso::complete).
Value rotate_by_mint(Host& host, const Target& target, const std::string& scope, int64_t grace) {
  Store& store = host.store();
  auto previous = active_credential(store, target.database_id, scope);
  if (!previous)
    fail(Code::not_found, "database_id " + quote_value(target.database_id) + " has no active " +
                              scope + " credential to rotate");
  const std::string previous_id = previous->text("id");
  auto job = turso::queue(host, target.database_id, "rotate", {previous_id}, grace);
  if (!job)
    fail(Code::conflict, "database_id " + quote_value(target.database_id) +
                             " is not provisioned at Turso yet; give token to rotate it");
  const std::string job_id = job->text("id");
  audit::Event e = event_for(target, "credential.rotate", previous_id);
  e.detail = Json{{"databaseId", target.database_id},
                  {"scope", scope},
                  {"tokenSource", "turso"},
                  {"previousId", previous_id},
                  {"graceSeconds", grace},
                  {"jobId", job_id}};
  audit::record(host, e);
  return api::json_result(
      Json{{"credential", nullptr},
           {"previous",
            records::credential_json(records::load_credential(store, "credential_id", previous_id))},
           {"job", records::job_json(*job)}});
}

Value rotate(api::Call& c) {
  const std::string database_id = c.text("database_id", 128);
  const std::string scope = scope_arg(c);
  const auto grace_arg = c.opt_seconds("grace");
  if (grace_arg && *grace_arg > kMaxSeconds)
    fail(Code::invalid_parameter,
         "grace of " + std::to_string(*grace_arg) + " seconds is longer than 100 years");

  Host& host = c.host;
  Store& store = c.store;
  Atomic tx(store);
  const Target target = load_target(store, database_id);
  const int64_t grace =
      grace_arg ? *grace_arg : setup::setting_seconds(host, "rotation_grace_seconds");
  if (target.driver == "turso" && !c.opt_text("token", kMaxTokenBytes)) {
    Value out = rotate_by_mint(host, target, scope, grace);
    tx.done();
    return out;
  }
  bool generated = false;
  const crypto::SecretBytes token = token_arg(c, target, generated);
  host.keyring().active_key();

  auto previous = active_credential(store, database_id, scope);
  if (!previous)
    fail(Code::not_found, "database_id " + quote_value(database_id) + " has no active " + scope +
                              " credential to rotate");
  const std::string previous_id = previous->text("id");
  start_rotating(store, previous_id, seconds_from_now(grace));
  Json credential = insert_sealed_token(host, database_id, scope, token.view(),
                                        default_expiry(host), previous_id);
  Json previous_json =
      records::credential_json(records::load_credential(store, "credential_id", previous_id));
  audit::Event e = event_for(target, "credential.rotate", credential["id"].get<std::string>());
  e.detail = Json{{"databaseId", database_id},
                  {"scope", scope},
                  {"kmsKeyId", credential["kmsKeyId"]},
                  {"tokenSource", generated ? "generated" : "caller"},
                  {"previousId", previous_id},
                  {"graceSeconds", grace},
                  {"previousExpiresAt", previous_json["expiresAt"]}};
  audit::record(host, e);
  pgdriver::queue_job(host, database_id, "create_login", credential["id"].get<std::string>());
  tx.done();
  return api::json_result(Json{{"credential", credential}, {"previous", previous_json}});
}

Value revoke(api::Call& c) {
  const std::string id = c.text("credential_id", 128);
  require_id("credential_id", id);
  Store& store = c.store;
  Atomic tx(store);
  auto row = query_one(
      store, credential_with_owner_sql("c.id = $1") + (postgres(store) ? " FOR UPDATE OF c" : ""),
      {id});
  if (!row) fail(Code::not_found, "credential_id " + quote_value(id) + " names no credential");
  if (row->text("status") == "revoked")
    fail(Code::invalid_transition, "credential " + quote_value(id) + " is already revoked");
  execute(store,
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$2::timestamptz WHERE id = $1",
          {id, now_iso()});
  audit::Event e = event_for(*row, "credential.revoke");
  e.detail["previousStatus"] = row->text("status");
  audit::record(c.host, e);
  pgdriver::queue_job(c.host, row->text("database_id"), "disable_login", id);
  turso::queue(c.host, row->text("database_id"), "revoke", {id});
  Json credential = records::credential_json(records::load_credential(store, "credential_id", id));
  tx.done();
  return api::json_result(Json{{"credential", credential}});
}

Value expire(api::Call& c) { return expire_due(c.host); }

}  // namespace

int64_t expire_due(Host& host) {
  Store& store = host.store();
  const std::string now = now_iso();
  Atomic tx(store);
  auto rows = query(store,
                    credential_with_owner_sql("c.status IN ('active', 'rotating') AND "
                                              "c.expires_at <= $1::timestamptz ORDER BY c.id") +
                        (postgres(store) ? " FOR UPDATE OF c" : ""),
                    {now});
  std::map<std::string, std::vector<std::string>> expired;  // database -> credentials
  for (const Row& row : rows) {
    execute(store,
            "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
            "$2::timestamptz WHERE id = $1",
            {row.text("id"), now});
    audit::Event e = event_for(row, "credential.expire");
    e.detail["previousStatus"] = row.text("status");
    e.detail["expiredAt"] = row.text("expires_at");
    audit::record(host, e);
    pgdriver::queue_job(host, row.text("database_id"), "disable_login", row.text("id"));
    expired[row.text("database_id")].push_back(row.text("id"));
  }
  // turso: one invalidation per database, however many of its credentials
  // expired.
  for (auto& [database_id, ids] : expired) turso::queue(host, database_id, "expire", ids);
  tx.done();
  return static_cast<int64_t>(rows.size());
}

namespace {

Value rewrap(api::Call& c) {
  Keyring& keyring = c.host.keyring();
  std::string target;
  if (c.given("kms_key_id")) {
    target = c.text("kms_key_id", 128);
    keyring.key(target);  // key_unavailable when it is not loaded
  } else {
    keyring.active_key();  // key_unavailable when the keyring is empty
    target = keyring.active_id();
  }
  const crypto::SecretBytes& key = keyring.key(target);
  Store& store = c.store;

  Atomic tx(store);
  // Under another key, or still in envelope format 1 (re-sealed in place,
  // bound to its database's name and URL).
  const std::string pending =
      " FROM envdb.sys_database_credential c JOIN envdb.sys_environment_database d "
      "ON d.id = c.database_id WHERE c.status <> 'revoked' AND (c.kms_key_id <> $1 OR "
      "substr(c.token_cipher, 1, 1) <> $2::bytea)";
  const Value bound_version = Blob{std::string(1, static_cast<char>(crypto::kEnvelopeVersionBound))};
  int64_t total =
      query_one(store, "SELECT count(*) AS n" + pending, {target, bound_version})->integer("n");
  const std::string batch_sql =
      "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.token_cipher, d.driver, "
      "d.database_name, d.database_url" +
      pending + " ORDER BY c.id LIMIT " + std::to_string(kRewrapBatch) +
      (postgres(store) ? " FOR UPDATE OF c" : "");
  int64_t moved = 0;
  std::map<std::string, int64_t> from;
  for (;;) {
    auto rows = query(store, batch_sql, {target, bound_version});
    if (rows.empty()) break;
    for (const Row& row : rows) {
      const crypto::SecretBytes token = open_secret(c.host, row);
      const std::string cipher = crypto::seal(
          key, token.view(),
          bound_aad(row.text("id"), row.text("database_id"), row.text("scope"),
                    {row.text("database_name"), row.opt_text("database_url")}),
          crypto::kEnvelopeVersionBound);
      execute(store,
              "UPDATE envdb.sys_database_credential SET token_cipher = $2, kms_key_id = $3 "
              "WHERE id = $1",
              {row.text("id"), Blob{cipher}, target});
      ++from[row.text("kms_key_id")];
    }
    moved += static_cast<int64_t>(rows.size());
    total = std::max(total, moved);  // Postgres: rows committed meanwhile join in
    c.host.notice("rewrapped " + std::to_string(moved) + " of " + std::to_string(total) +
                  " credentials to key " + quote_value(target));
  }
  if (moved > 0) {
    audit::Event e;
    e.action = "credential.rewrap";
    e.subject_type = "key";
    e.subject_id = target;
    Json sources = Json::object();
    for (auto& [id, n] : from) sources[id] = n;
    e.detail = Json{{"kmsKeyId", target}, {"credentials", moved}, {"from", sources}};
    audit::record(c.host, e);
  }
  tx.done();
  return moved;
}

Value reveal(api::Call& c) {
  const std::string id = c.text("credential_id", 128);
  require_id("credential_id", id);
  Store& store = c.store;
  auto row = query_one(
      store,
      "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.token_cipher, c.status, c.expires_at, "
      "(c.expires_at IS NOT NULL AND c.expires_at <= $2::timestamptz) AS expired, "
      "d.environment_id, d.driver, d.database_name, d.database_url, e.organization_id "
      "FROM envdb.sys_database_credential c "
      "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
      "JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE c.id = $1",
      {id, now_iso()});
  if (!row) fail(Code::not_found, "credential_id " + quote_value(id) + " names no credential");
  if (row->text("status") == "revoked")
    fail(Code::conflict, "credential " + quote_value(id) + " is revoked");
  if (row->boolean("expired"))
    fail(Code::conflict,
         "credential " + quote_value(id) + " expired at " + row->text("expires_at"));
  // A secret leaves only with an audit record. Where none can be written (a
  // READ ONLY transaction, a hot standby) the reveal is refused, unless the
  // operator allowed unaudited reveals (setting allow_unaudited_reveal).
  const bool audited = store.writable();
  if (!audited && setup::setting(c.host, "allow_unaudited_reveal") != "on")
    fail(Code::permission_denied,
         "credential_id " + quote_value(id) +
             " cannot be revealed here: no audit event can be written (a READ ONLY transaction "
             "or a hot standby); reveal on a writable primary, or set allow_unaudited_reveal");
  crypto::SecretBytes token = open_secret(c.host, *row);
  if (audited) record_reveal(c.host, *row);
  return std::string(token.view());
}

Value keyring_status(api::Call& c) {
  Keyring& keyring = c.host.keyring();
  std::map<std::string, int64_t> live;  // referenced key -> credentials not revoked
  for (const Row& r : query(c.store,
                            "SELECT kms_key_id, sum(CASE WHEN status <> 'revoked' THEN 1 ELSE 0 "
                            "END) AS live FROM envdb.sys_database_credential GROUP BY kms_key_id"))
    live[r.text("kms_key_id")] = r.integer("live");
  Json out = Json::array();
  for (const std::string& id : keyring.ids()) {
    auto it = live.find(id);
    out.push_back(Json{{"kmsKeyId", id},
                       {"active", id == keyring.active_id()},
                       {"loaded", true},
                       {"credentials", it == live.end() ? 0 : it->second}});
  }
  for (auto& [id, n] : live) {
    if (keyring.has(id)) continue;
    out.push_back(Json{{"kmsKeyId", id}, {"active", false}, {"loaded", false}, {"credentials", n}});
  }
  return api::json_result(out);
}

Value keyring_add(api::Call& c) {
  const std::string id = c.text("kms_key_id", 128);
  require_id("kms_key_id", id);
  // Never quoted: this is key material.
  const crypto::SecretBytes text(c.text("key_base64", 1024));
  std::optional<std::string> decoded = crypto::base64_decode(text.view());
  if (!decoded) fail(Code::invalid_parameter, "key_base64 is not valid base64 (standard alphabet)");
  crypto::SecretBytes key(std::move(*decoded));
  if (key.size() != crypto::kKeySize)
    fail(Code::invalid_parameter,
         "key_base64 must decode to exactly 32 bytes, got " + std::to_string(key.size()));
  c.host.keyring().add(id, std::move(key));
  return "added " + id;
}

Value keyring_use(api::Call& c) {
  const std::string id = c.text("kms_key_id", 128);
  c.host.keyring().use(id);
  return "using " + id;
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"issue_credential",
       {{"database_id", T::text, nullptr},
        {"scope", T::text, "'readwrite'"},
        {"token", T::text, "NULL"},
        {"expires_at", T::timestamp, "NULL"}},
       T::json,
       issue,
       kWrites | kRequestForm,
       kAdmin,
       "issue an active credential of a scope (token generated unless given; required for turso); "
       "an active one of that scope becomes rotating until now + rotation_grace_seconds"},
      {"rotate_credential",
       {{"database_id", T::text, nullptr},
        {"scope", T::text, "'readwrite'"},
        {"grace", T::interval, "NULL"},
        {"token", T::text, "NULL"}},
       T::json,
       rotate,
       kWrites | kRequestForm,
       kAdmin,
       "replace the active credential of a scope; the previous one stays valid as rotating until "
       "now + grace (default rotation_grace_seconds)"},
      {"revoke_credential",
       {{"credential_id", T::text, nullptr}},
       T::json,
       revoke,
       kWrites,
       kAdmin,
       "revoke one credential"},
      {"expire_credentials",
       {},
       T::integer,
       expire,
       kWrites,
       kAdmin,
       "revoke every active or rotating credential whose expires_at has passed; returns how many"},
      {"rewrap_credentials",
       {{"kms_key_id", T::text, "NULL"}},
       T::integer,
       rewrap,
       kWrites,
       kAdmin,
       "re-encrypt every credential not revoked under the given (or active) key; returns how many "
       "moved"},
      {"reveal_credential",
       {{"credential_id", T::text, nullptr}},
       T::text,
       reveal,
       0,
       kAdmin | kRouter,
       "the plaintext token of a credential that is not revoked or expired; audited (repeated "
       "reveals of one credential by one caller within a minute are counted on one event); "
       "refused where no audit event can be written unless allow_unaudited_reveal is on"},
      {"keyring_status",
       {},
       T::json,
       keyring_status,
       0,
       kAdmin,
       "keys loaded or referenced by credentials, with counts; never key material"},
      {"keyring_add",
       {{"kms_key_id", T::text, nullptr}, {"key_base64", T::text, nullptr}},
       T::text,
       keyring_add,
       kSqliteOnly,
       kAdmin,
       "add a 32-byte key (base64) to this connection's keyring"},
      {"keyring_use",
       {{"kms_key_id", T::text, nullptr}},
       T::text,
       keyring_use,
       kSqliteOnly,
       kAdmin,
       "make a loaded key the active key for new ciphertexts"},
  };
}

bool is_scope(const std::string& scope) {
  return scope == "readwrite" || scope == "readonly" || scope == "admin";
}

std::string open_token(Host& host, const Row& row) {
  const crypto::SecretBytes token = open_secret(host, row);
  return std::string(token.view());
}

Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   const std::string& token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from) {
  return insert_sealed_token(host, database_id, scope, token, expires_at, rotated_from);
}

std::vector<std::string> initial_scopes() { return {"admin", "readwrite", "readonly"}; }

std::optional<std::string> new_expiry(Host& host) { return default_expiry(host); }

void rotate_out(Store& store, const std::string& credential_id, int64_t grace_seconds) {
  start_rotating(store, credential_id, seconds_from_now(grace_seconds));
}

Json issue_initial(Host& host, const std::string& database_id) {
  Json out = Json::array();
  const auto expires = default_expiry(host);
  // Every scope a role can map to exists from the start (permissions).
  for (const std::string& scope : initial_scopes()) {
    const crypto::SecretBytes token(crypto::generate_token());
    out.push_back(
        insert_sealed_token(host, database_id, scope, token.view(), expires, std::nullopt));
  }
  return out;
}

Json store_token(Host& host, const std::string& database_id, const std::string& scope,
                 const std::string& token) {
  const std::string now = now_iso();
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$3::timestamptz WHERE database_id = $1 AND scope = $2 AND status = 'active'",
          {database_id, scope, now});
  return insert_sealed_token(host, database_id, scope, token, default_expiry(host), std::nullopt);
}

void set_database_url(Host& host, const std::string& database_id, const std::string& url) {
  Store& store = host.store();
  auto db = query_one(store,
                      "SELECT id, driver, database_name, database_url "
                      "FROM envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  row_rules::require_database(*db);
  if (db->opt_text("database_url") == url) return;
  const std::string driver = db->text("driver");
  const Identity now_bound{db->text("database_name"), url};
  row_rules::require_database(database_id, driver, now_bound.name, now_bound.url);
  // Opened under the identity they were sealed for, sealed again for the
  // new one, under the same key, in the caller's transaction.
  struct Opened {
    std::string id, scope, kms_key_id;
    crypto::SecretBytes token;
  };
  std::vector<Opened> live;
  for (const Row& row : query(store,
                              std::string("SELECT ") + kSealedColumns +
                                  " FROM envdb.sys_database_credential WHERE database_id = $1 "
                                  "AND status <> 'revoked' ORDER BY id" +
                                  (postgres(store) ? " FOR UPDATE" : ""),
                              {database_id}))
    live.push_back({row.text("id"), row.text("scope"), row.text("kms_key_id"),
                    open_secret(host, row)});
  execute(store,
          "UPDATE envdb.sys_environment_database SET database_url = $2, "
          "updated_at = $3::timestamptz WHERE id = $1",
          {database_id, url, now_iso()});
  for (const Opened& c : live) {
    const std::string cipher =
        crypto::seal(host.keyring().key(c.kms_key_id), c.token.view(),
                     bound_aad(c.id, database_id, c.scope, now_bound),
                     crypto::kEnvelopeVersionBound);
    execute(store, "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
            {c.id, Blob{cipher}});
  }
}

ResealCount reseal_unbound(Host& host) {
  Store& store = host.store();
  Keyring& keyring = host.keyring();
  ResealCount out;
  std::map<std::string, int64_t> by_key;
  for (const Row& row :
       query(store,
             "SELECT c.id, c.database_id, c.scope, c.kms_key_id, c.token_cipher, d.driver, "
             "d.database_name, d.database_url FROM envdb.sys_database_credential c "
             "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
             "WHERE c.status <> 'revoked' ORDER BY c.id")) {
    const Blob* blob = std::get_if<Blob>(&row["token_cipher"]);
    if (!blob || crypto::envelope_version(blob->bytes) != crypto::kEnvelopeVersionUnbound)
      continue;
    const std::string kms_key_id = row.text("kms_key_id");
    if (!keyring.has(kms_key_id)) {
      ++out.left;
      continue;
    }
    const crypto::SecretBytes token = open_secret(host, row);
    const std::string cipher = crypto::seal(
        keyring.key(kms_key_id), token.view(),
        bound_aad(row.text("id"), row.text("database_id"), row.text("scope"),
                  {row.text("database_name"), row.opt_text("database_url")}),
        crypto::kEnvelopeVersionBound);
    execute(store, "UPDATE envdb.sys_database_credential SET token_cipher = $2 WHERE id = $1",
            {row.text("id"), Blob{cipher}});
    ++out.resealed;
    ++by_key[kms_key_id];
  }
  if (out.resealed > 0) {
    audit::Event e;
    e.action = "credential.reseal";
    e.subject_type = "credential";
    Json keys = Json::object();
    for (auto& [id, n] : by_key) keys[id] = n;
    e.detail = Json{{"credentials", out.resealed},
                    {"envelopeVersion", crypto::kEnvelopeVersionBound},
                    {"keys", keys},
                    {"leftUnbound", out.left}};
    audit::record(host, e);
  }
  return out;
}

int64_t revoke_all(Host& host, const std::string& database_id) {
  auto rows = query(host.store(),
                    "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
                    "$2::timestamptz WHERE database_id = $1 AND status <> 'revoked' RETURNING id",
                    {database_id, now_iso()});
  return static_cast<int64_t>(rows.size());
}

}  // namespace envdb::credentials
