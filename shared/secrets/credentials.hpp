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
#include "core/cpp_only.hpp"

#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"

namespace envdb::credentials {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// Revokes every credential of a database that is not revoked yet (archiving).
int64_t revoke_all(Host& host, const std::string& database_id);

// Revokes every active or rotating credential whose expires_at has passed,
// with a credential.expire audit event each (and, for a provisioned postgres
// database, a disable_login job). expire_credentials() and the Postgres
// background worker's every pass call it. Returns how many.
int64_t expire_due(Host& host);

// Rows re-encrypted per batch by rewrap_credentials().
constexpr int64_t kRewrapBatch = 500;

}  // namespace envdb::credentials
