// Sealed credentials at rest: how a token is sealed into its row
// (AES-256-GCM under the active key, bound to its row and to its database's
// name and URL), opened, re-sealed when the database's URL changes or an old
// envelope is bound, and the credential rows other modules create (the first
// credentials of a database, a token a worker minted). The SQL functions over
// credentials are in credentials.hpp; every module that seals or opens a
// token comes here.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"
#include "secrets/crypto.hpp"

namespace envdb::vault {

// What a credential is bound to besides its own row (envelope format 2).
struct Identity {
  std::string name;
  std::optional<std::string> url;
};

// Longest token a caller may supply, in bytes.
constexpr size_t kMaxTokenBytes = 4096;

// Durations are capped so that a computed timestamp keeps a four-digit year:
// the ISO text form, and its ordering as text in SQLite, rely on it.
constexpr int64_t kMaxSeconds = 100LL * 366 * 86400;

// Now + seconds (capped at kMaxSeconds), as ISO text.
std::string expiry_in(int64_t seconds);

// Associated data of a format-2 envelope.
std::string bound_aad(const std::string& id, const std::string& database_id,
                      const std::string& scope, const Identity& identity);

// open_token's work, the token kept in wiped memory. With `aad`, also the
// associated data it opened under, for a caller that keeps the row (the
// resolve cache) and opens it again with open_sealed.
crypto::SecretBytes open_secret(Host& host, const Row& row, std::string* aad = nullptr);

// open_secret's last step, under associated data an earlier open_secret of the
// same row gave: the key is looked up in the keyring of the moment, the same
// errors as open_secret.
crypto::SecretBytes open_sealed(Host& host, const std::string& id, const std::string& kms_key_id,
                                const Value& token_cipher, std::string_view aad);

// One credential as rewrap_credentials reads it: the columns of
// sealed_row_names(), by position, without a Row.
struct SealedRow {
  std::string id;
  std::string database_id;
  std::string scope;
  std::string kms_key_id;
  Value token_cipher;
  std::string driver;
  Identity identity;
};

// What reseal_bound keeps from one row to the next: the database identity it
// last bound to, that identity's URL digest, and whether its row passed
// row_rules (a database's credentials are consecutive in id order).
struct ResealMemo {
  std::string database_id;
  std::string driver;
  Identity identity;
  std::string url_digest;
  bool known = false;
  bool checked = false;
};

// Opens `row`'s token and seals it again under `to`, in format 2, bound to its
// row and its database's name and URL as `row` carries them: open_secret's
// checks and errors (key_unavailable, decrypt_failed) without a query, the
// associated data computed once for both sides when the envelope is already
// format 2. As in open_secret, a format-2 envelope's database row must pass
// row_rules (schema_mismatch); `memo` saves checking it, and hashing its URL,
// again for the next row of the same database with the same name and URL.
std::string reseal_bound(Host& host, const SealedRow& row, const crypto::SecretBytes& to,
                         ResealMemo& memo);

// The credential becomes `rotating` until `until` (or its own earlier expiry:
// a rotation never lengthens a credential's life).
void start_rotating(Store& store, const std::string& credential_id, const std::string& until);

// Issues the first credentials (one per initial scope) of a new database with
// generated tokens (the sqlite and postgres drivers), each sealed bound to
// the database's name and URL as its row says now. Callers read them back
// with the rest of the environment.
void issue_initial(Host& host, const std::string& database_id);

// The scopes a new database gets credentials for (issue_initial; what a
// turso create_database job is asked to mint).
std::vector<std::string> initial_scopes();

// The expires_at a newly issued credential gets (credential_ttl_seconds), or
// nullopt for no expiry.
std::optional<std::string> new_expiry(Host& host);

// Makes a credential `rotating` until now + grace_seconds (never later than
// its own expires_at).
void rotate_out(Store& store, const std::string& credential_id, int64_t grace_seconds);

// Stores `token` as the active credential of `scope`, revoking any active one
// of that scope first (a turso job reporting back). Returns its JSON.
Json store_token(Host& host, const std::string& database_id, const std::string& scope,
                 const std::string& token);

// Sets a database's database_url (a completed job, a sqlite file in place)
// and, in the same transaction, re-seals every credential of it that is not
// revoked for the new URL under the key it is sealed under: the URL is part
// of what a token is bound to. key_unavailable when such a key is not
// loaded (nothing changes); schema_mismatch for a URL envdb never writes (a
// sqlite URL that is not file:<...>/<database_name>.db). Nothing happens
// when the URL is already that.
void set_database_url(Host& host, const std::string& database_id, const std::string& url);

// Re-seals, under their own keys, the credentials (not revoked) still in
// envelope format 1, binding them to their database's name and URL (the
// migration of 0.3.0; SQLite's init() runs it). Credentials under a key
// that is not loaded are left as they are and counted; they still open, and
// rewrap_credentials() re-seals them once the key is there. One audit event
// (credential.reseal) when anything moved.
struct ResealCount {
  int64_t resealed = 0;
  int64_t left = 0;
};
ResealCount reseal_unbound(Host& host);

// Inserts one sealed credential row and returns its JSON. `token` is sealed
// under the keyring's active key with (id, database_id, scope) as associated
// data; it never reaches a table in plaintext.
Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   std::string_view token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from);

bool is_scope(const std::string& scope);

// The columns open_token() reads; select them (table alias allowed) into the
// row you pass it.
extern const char* const kSealedColumns;  // "id, database_id, scope, kms_key_id, token_cipher"
// The names of a row open_secret reads without another query: kSealedColumns,
// then the database's driver, database_name and database_url (a caller that
// selects these under other names, the router, renames its row to them).
const std::vector<std::string>& sealed_row_names();

// Decrypts one credential row's token (the router's path and reveal's). The
// row must carry the columns of kSealedColumns. Does not look at status or
// expiry: callers decide whether the credential may be used.
// Throws key_unavailable ("credential <id> is sealed under key '<kms_key_id>',
// which is not loaded") and decrypt_failed (wrong key, tampered or moved
// ciphertext). Messages never carry key, token or ciphertext bytes.
std::string open_token(Host& host, const Row& row);

}  // namespace envdb::vault
