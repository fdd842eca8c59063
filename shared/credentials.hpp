// Credentials: sealed tokens per (database, scope), their whole life story
// (issue, rotate with an overlap window, revoke, expire, rewrap, reveal), and
// the keyring's SQL face (keyring_status, keyring_add, keyring_use).
//
// States: active -> rotating -> revoked, or active -> revoked. At most one
// credential per (database, scope) is `active` at any time (a partial unique
// index holds the rule); any number may be `rotating` until their expires_at.
//
// Sealing: token_cipher = crypto::seal(key named by kms_key_id, token,
// credential_aad(id, database_id, scope)). The associated data binds the
// ciphertext to its row, so a ciphertext copied onto another row never opens.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "api.hpp"
#include "cpp_only.hpp"
#include "host.hpp"
#include "json.hpp"
#include "store.hpp"

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

// Revokes every credential of a database that is not revoked yet (archiving).
int64_t revoke_all(Host& host, const std::string& database_id);

// Inserts one sealed credential row and returns its JSON. `token` is sealed
// under the keyring's active key with (id, database_id, scope) as associated
// data; it never reaches a table in plaintext.
Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   const std::string& token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from);

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
