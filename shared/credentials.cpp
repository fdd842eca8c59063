#include "credentials.hpp"

#include "clock.hpp"
#include "crypto.hpp"
#include "errors.hpp"
#include "ids.hpp"
#include "records.hpp"
#include "setup.hpp"

namespace envdb::credentials {

namespace {

std::optional<std::string> default_expiry(Host& host) {
  const int64_t ttl = setup::setting_seconds(host, "credential_ttl_seconds");
  if (ttl <= 0) return std::nullopt;
  return iso_from_ms(now_ms() + ttl * 1000);
}

Value opt(const std::optional<std::string>& v) { return v ? Value(*v) : null_value(); }

}  // namespace

std::vector<api::Function> functions() { return {}; }

bool is_scope(const std::string& scope) {
  return scope == "readwrite" || scope == "readonly" || scope == "admin";
}

Json insert_sealed(Host& host, const std::string& database_id, const std::string& scope,
                   const std::string& token, const std::optional<std::string>& expires_at,
                   const std::optional<std::string>& rotated_from) {
  Keyring& keyring = host.keyring();
  const crypto::SecretBytes& key = keyring.active_key();
  const std::string id = new_uuid_v7();
  const std::string cipher =
      crypto::seal(key, token, crypto::credential_aad(id, database_id, scope));
  const std::string now = now_iso();
  execute(host.store(),
          "INSERT INTO envdb.sys_database_credential (id, database_id, token_cipher, kms_key_id, "
          "scope, status, issued_at, expires_at, rotated_from) "
          "VALUES ($1, $2, $3, $4, $5, 'active', $6::timestamptz, $7::timestamptz, $8)",
          {id, database_id, Blob{cipher}, keyring.active_id(), scope, now, opt(expires_at),
           opt(rotated_from)});
  return records::credential_json(records::load_credential(host.store(), "credential_id", id));
}

Json issue_initial(Host& host, const std::string& database_id) {
  Json out = Json::array();
  const auto expires = default_expiry(host);
  for (const char* scope : {"admin", "readwrite"})
    out.push_back(insert_sealed(host, database_id, scope, crypto::generate_token(), expires,
                                std::nullopt));
  return out;
}

Json store_token(Host& host, const std::string& database_id, const std::string& scope,
                 const std::string& token) {
  const std::string now = now_iso();
  execute(host.store(),
          "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
          "$3::timestamptz WHERE database_id = $1 AND scope = $2 AND status = 'active'",
          {database_id, scope, now});
  return insert_sealed(host, database_id, scope, token, default_expiry(host), std::nullopt);
}

int64_t revoke_all(Host& host, const std::string& database_id) {
  auto rows = query(host.store(),
                    "UPDATE envdb.sys_database_credential SET status = 'revoked', revoked_at = "
                    "$2::timestamptz WHERE database_id = $1 AND status <> 'revoked' RETURNING id",
                    {database_id, now_iso()});
  return static_cast<int64_t>(rows.size());
}

}  // namespace envdb::credentials
