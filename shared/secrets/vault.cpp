#include "secrets/vault.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "postgres/statements.hpp"

namespace envdb::vault {

const char* const kSealedColumns = "id, database_id, scope, kms_key_id, token_cipher";

const std::vector<std::string>& sealed_row_names() {
  // kSealedColumns, then the database's identity open_secret binds to.
  static const std::vector<std::string> names = {
      "id",           "database_id", "scope",         "kms_key_id",
      "token_cipher", "driver",      "database_name", "database_url"};
  return names;
}

std::string expiry_in(int64_t seconds) {
  return iso_from_ms(now_ms() + std::min(seconds, kMaxSeconds) * 1000);
}

std::optional<std::string> new_expiry(Host& host) {
  const int64_t ttl = settings::setting_seconds(host, "credential_ttl_seconds");
  if (ttl <= 0) return std::nullopt;
  return expiry_in(ttl);
}

namespace {

// The sentence of an error, without its code word.
std::string sentence_of(const Error& e) {
  const std::string what = e.what();
  const std::string prefix = std::string(code_word(e.code())) + ": ";
  return what.compare(0, prefix.size(), prefix) == 0 ? what.substr(prefix.size()) : what;
}

// A database's row as it says now, validated (row_rules): not_found, or
// schema_mismatch for a name or URL envdb never writes. The one read of a
// database's identity for sealing and opening.
Row database_row(Store& store, const std::string& database_id) {
  auto db = query_one(store,
                      "SELECT id, driver, database_name, database_url "
                      "FROM envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db)
    fail(Code::not_found,
         "database_id " + quote_value(database_id) + " names no environment database");
  row_rules::require_database(*db);
  return *db;
}

Identity database_identity(Store& store, const std::string& database_id) {
  const Row db = database_row(store, database_id);
  return {db.text("database_name"), db.opt_text("database_url")};
}

bool has_column(const Row& row, const char* name) {
  for (const std::string& n : row.names())
    if (n == name) return true;
  return false;
}

}  // namespace

std::string bound_aad(const std::string& id, const std::string& database_id,
                      const std::string& scope, const Identity& identity) {
  return crypto::bound_credential_aad(id, database_id, scope, identity.name, identity.url);
}

namespace {

// The envelope of a token_cipher value.
std::string_view envelope_of(const std::string& id, const Value& cipher) {
  if (auto blob = std::get_if<Blob>(&cipher)) return blob->bytes;
  if (auto text = std::get_if<std::string>(&cipher))
    return *text;  // a hand-edited row; crypto::open will judge it
  fail(Code::decrypt_failed, "credential " + id + " has no ciphertext");
}

const crypto::SecretBytes& key_of(Keyring& keyring, const std::string& id,
                                  const std::string& kms_key_id) {
  if (!keyring.has(kms_key_id))
    fail(Code::key_unavailable, "credential " + id + " is sealed under key " +
                                    quote_value(kms_key_id) + ", which is not loaded");
  return keyring.key(kms_key_id);
}

crypto::SecretBytes open_envelope(const crypto::SecretBytes& key, const std::string& id,
                                  const std::string& kms_key_id, std::string_view envelope,
                                  std::string_view aad) {
  try {
    return crypto::open(key, envelope, aad,
                        crypto::envelope_version(envelope) == crypto::kEnvelopeVersionUnbound
                            ? crypto::kEnvelopeVersionUnbound
                            : crypto::kEnvelopeVersionBound);
  } catch (const Error& e) {
    if (e.code() != Code::decrypt_failed) throw;
    fail(Code::decrypt_failed, "credential " + id + " does not open under key " +
                                   quote_value(kms_key_id) + ": " + sentence_of(e));
  }
}

}  // namespace

crypto::SecretBytes open_secret(Host& host, const Row& row, std::string* aad) {
  const std::string id = row.text("id");
  const std::string kms_key_id = row.text("kms_key_id");
  const crypto::SecretBytes& key = key_of(host.keyring(), id, kms_key_id);
  const std::string_view envelope = envelope_of(id, row["token_cipher"]);
  const std::string database_id = row.text("database_id");
  const std::string scope = row.text("scope");
  // Format 1 (before 0.3.0) opens under its own associated data until it is
  // re-sealed; anything else is judged as format 2, bound to the database's
  // name and URL as the row says now (taken from `row` when it carries them,
  // the router's case; else read).
  std::string associated;
  if (crypto::envelope_version(envelope) == crypto::kEnvelopeVersionUnbound) {
    associated = crypto::credential_aad(id, database_id, scope);
  } else {
    Identity identity;
    if (has_column(row, "database_name") && has_column(row, "driver")) {
      identity = {row.text("database_name"), row.opt_text("database_url")};
      row_rules::require_database(database_id, row.text("driver"), identity.name, identity.url);
    } else {
      identity = database_identity(host.store(), database_id);
    }
    associated = bound_aad(id, database_id, scope, identity);
  }
  crypto::SecretBytes token = open_envelope(key, id, kms_key_id, envelope, associated);
  if (aad) *aad = std::move(associated);
  return token;
}

std::string reseal_bound(Host& host, const SealedRow& row, const crypto::SecretBytes& to,
                         ResealMemo& memo) {
  const crypto::SecretBytes& from = key_of(host.keyring(), row.id, row.kms_key_id);
  const std::string_view envelope = envelope_of(row.id, row.token_cipher);
  const bool unbound = crypto::envelope_version(envelope) == crypto::kEnvelopeVersionUnbound;
  if (!memo.known || memo.database_id != row.database_id || memo.driver != row.driver ||
      memo.identity.name != row.identity.name || memo.identity.url != row.identity.url) {
    memo.known = false;
    memo.checked = false;
    memo.url_digest = crypto::database_url_digest(row.identity.url);
    memo.database_id = row.database_id;
    memo.driver = row.driver;
    memo.identity = row.identity;
    memo.known = true;
  }
  if (!unbound && !memo.checked) {
    row_rules::require_database(row.database_id, row.driver, row.identity.name, row.identity.url);
    memo.checked = true;
  }
  const std::string bound = crypto::bound_credential_aad_with_digest(row.id, row.database_id,
                                                                     row.scope, row.identity.name,
                                                                     memo.url_digest);
  const crypto::SecretBytes token =
      open_envelope(from, row.id, row.kms_key_id, envelope,
                    unbound ? crypto::credential_aad(row.id, row.database_id, row.scope) : bound);
  return crypto::seal(to, token.view(), bound, crypto::kEnvelopeVersionBound);
}

crypto::SecretBytes open_sealed(Host& host, const std::string& id, const std::string& kms_key_id,
                                const Value& token_cipher, std::string_view aad) {
  const crypto::SecretBytes& key = key_of(host.keyring(), id, kms_key_id);
  return open_envelope(key, id, kms_key_id, envelope_of(id, token_cipher), aad);
}

namespace {

// insert_sealed for the database row `db` (database_row's), returning the
// new credential's id.
std::string insert_sealed_for(Host& host, const Row& db, const std::string& scope,
                              std::string_view token, const std::optional<std::string>& expires_at,
                              const std::optional<std::string>& rotated_from) {
  Keyring& keyring = host.keyring();
  const crypto::SecretBytes& key = keyring.active_key();
  std::string id = new_uuid_v7();
  const std::string database_id = db.text("id");
  const std::string cipher =
      crypto::seal(key, token,
                   bound_aad(id, database_id, scope,
                             {db.text("database_name"), db.opt_text("database_url")}),
                   crypto::kEnvelopeVersionBound);
  const std::string now = now_iso();
  // A postgres database's credential is a login role of that name.
  std::optional<std::string> username;
  if (db.text("driver") == "postgres")
    username = postgres::login_name(db.text("database_name"), scope, id);
  execute(host.store(),
          "INSERT INTO envdb.sys_database_credential (id, database_id, token_cipher, kms_key_id, "
          "scope, status, username, issued_at, expires_at, rotated_from) "
          "VALUES ($1, $2, $3, $4, $5, 'active', $6, $7::timestamptz, $8::timestamptz, $9)",
          {id, database_id, Blob{cipher}, keyring.active_id(), scope, optional_value(username), now,
           optional_value(expires_at), optional_value(rotated_from)});
  return id;
}

}  // namespace

Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   std::string_view token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from) {
  const std::string id = insert_sealed_for(host, database_row(host.store(), database_id), scope,
                                           token, expires_at, rotated_from);
  return records::credential_json(records::load_credential(host.store(), "credential_id", id));
}

bool is_scope(const std::string& scope) {
  return scope == "readwrite" || scope == "readonly" || scope == "admin";
}

std::string open_token(Host& host, const Row& row) {
  const crypto::SecretBytes token = open_secret(host, row);
  return std::string(token.view());
}

std::vector<std::string> initial_scopes() { return {"admin", "readwrite", "readonly"}; }

void start_rotating(Store& store, const std::string& credential_id, const std::string& until) {
  execute(store,
          "UPDATE envdb.sys_database_credential SET status = 'rotating', expires_at = CASE WHEN "
          "expires_at IS NOT NULL AND expires_at < $2::timestamptz THEN expires_at ELSE "
          "$2::timestamptz END WHERE id = $1",
          {credential_id, until});
}

void rotate_out(Store& store, const std::string& credential_id, int64_t grace_seconds) {
  start_rotating(store, credential_id, expiry_in(grace_seconds));
}

void issue_initial(Host& host, const std::string& database_id) {
  const auto expires = new_expiry(host);
  const Row db = database_row(host.store(), database_id);  // once for all three
  // Every scope a role can map to exists from the start (permissions).
  for (const std::string& scope : initial_scopes()) {
    const crypto::SecretBytes token(crypto::generate_token());
    (void)insert_sealed_for(host, db, scope, token.view(), expires, std::nullopt);
  }
}

Json store_token(Host& host, const std::string& database_id, const std::string& scope,
                 const std::string& token) {
  const std::string now = now_iso();
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$3::timestamptz WHERE database_id = $1 AND scope = $2 AND status = 'active'",
          {database_id, scope, now});
  return insert_sealed(host, database_id, scope, token, new_expiry(host), std::nullopt);
}

void set_database_url(Host& host, const std::string& database_id, const std::string& url) {
  Store& store = host.store();
  const Row db = database_row(store, database_id);
  if (db.opt_text("database_url") == url) return;
  const std::string driver = db.text("driver");
  const Identity now_bound{db.text("database_name"), url};
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
                                  (is_postgres(store) ? " FOR UPDATE" : ""),
                              {database_id}))
    live.push_back(
        {row.text("id"), row.text("scope"), row.text("kms_key_id"), open_secret(host, row)});
  execute(store,
          "UPDATE envdb.sys_environment_database SET database_url = $2, "
          "updated_at = $3::timestamptz WHERE id = $1",
          {database_id, url, now_iso()});
  for (const Opened& c : live) {
    const std::string cipher = crypto::seal(host.keyring().key(c.kms_key_id), c.token.view(),
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
    if (!blob || crypto::envelope_version(blob->bytes) != crypto::kEnvelopeVersionUnbound) continue;
    const std::string kms_key_id = row.text("kms_key_id");
    if (!keyring.has(kms_key_id)) {
      ++out.left;
      continue;
    }
    const crypto::SecretBytes token = open_secret(host, row);
    const std::string cipher =
        crypto::seal(keyring.key(kms_key_id), token.view(),
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

}  // namespace envdb::vault
