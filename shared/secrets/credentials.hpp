// Credentials: sealed tokens per (database, scope), their whole life story
// (issue, rotate with an overlap window, revoke, expire, rewrap, reveal), and
// the keyring's SQL face (keyring_status, keyring_add, keyring_use).
//
// States: active -> rotating -> revoked, or active -> revoked. At most one
// credential per (database, scope) is `active` at any time (a partial unique
// index holds the rule); any number may be `rotating` until their expires_at.
//
// Sealing: token_cipher = crypto::seal(key named by kms_key_id, token,
// bound_credential_aad(id, database_id, scope, database_name, database_url),
// envelope format 2). The associated data binds the ciphertext to its row and
// to its database's identity, so a ciphertext copied onto another row, or a
// row whose database name or URL was changed behind envdb's back, never
// opens. Format 1 (before 0.3.0: id, database_id, scope) still opens until
// rewrap_credentials() or reseal_unbound() re-seals it.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "surface/api.hpp"
#include "core/cpp_only.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::credentials {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// Issues the first admin and readwrite credentials of a new database with
// generated tokens (the sqlite and postgres drivers). Returns their JSON, no
// secrets.
Json issue_initial(Host& host, const std::string& database_id);

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

// Revokes every credential of a database that is not revoked yet (archiving).
int64_t revoke_all(Host& host, const std::string& database_id);

// Inserts one sealed credential row and returns its JSON. `token` is sealed
// under the keyring's active key with (id, database_id, scope) as associated
// data; it never reaches a table in plaintext.
Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   const std::string& token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from);

// Revokes every active or rotating credential whose expires_at has passed,
// with a credential.expire audit event each (and, for a provisioned postgres
// database, a disable_login job). expire_credentials() and the Postgres
// background worker's every pass call it. Returns how many.
int64_t expire_due(Host& host);

bool is_scope(const std::string& scope);

// The columns open_token() reads; select them (table alias allowed) into the
// row you pass it.
extern const char* const kSealedColumns;  // "id, database_id, scope, kms_key_id, token_cipher"

// Decrypts one credential row's token (the router's path and reveal's). The
// row must carry the columns of kSealedColumns. Does not look at status or
// expiry: callers decide whether the credential may be used.
// Throws key_unavailable ("credential <id> is sealed under key '<kms_key_id>',
// which is not loaded") and decrypt_failed (wrong key, tampered or moved
// ciphertext). Messages never carry key, token or ciphertext bytes.
std::string open_token(Host& host, const Row& row);

// Longest token a caller may supply, in bytes.
constexpr size_t kMaxTokenBytes = 4096;
// Rows re-encrypted per batch by rewrap_credentials().
constexpr int64_t kRewrapBatch = 500;

}  // namespace envdb::credentials
