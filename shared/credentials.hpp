// Credentials: sealed tokens per (database, scope), their whole life story
// (issue, rotate with an overlap window, revoke, expire, rewrap, reveal).
#pragma once
#include "cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "api.hpp"
#include "host.hpp"
#include "json.hpp"

namespace envdb::credentials {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// Issues the first admin and readwrite credentials of a new database with
// generated tokens (the sqlite and postgres drivers). Returns their JSON, no
// secrets.
Json issue_initial(Host& host, const std::string& database_id);

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

}  // namespace envdb::credentials
