// Cryptography for credentials, all of it OpenSSL 3 (EVP, RAND, HMAC, PBKDF2):
// random tokens, AES-256-GCM envelopes bound to their row, base64, and the
// SCRAM-SHA-256 verifiers Postgres stores for roles.
#pragma once
#include "core/cpp_only.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace envdb::crypto {

// Owns secret bytes (keys, plaintext tokens) and wipes them when they die or
// are overwritten. A vector, not a string, so that a move hands the buffer over
// instead of leaving a short-string copy behind. Move-only so that copies of a
// secret are always visible in the code.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(size_t size) : bytes_(size) {}  // zero-filled, to write into
  explicit SecretBytes(std::string_view bytes) : bytes_(bytes.begin(), bytes.end()) {}
  // Takes the bytes and wipes the caller's string.
  explicit SecretBytes(std::string&& bytes);
  SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {}
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes() { wipe(); }

  const unsigned char* data() const { return bytes_.data(); }
  unsigned char* data() { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  std::string_view view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()};
  }

 private:
  void wipe() noexcept;
  std::vector<unsigned char> bytes_;
};

// Throws internal when the random generator fails.
std::string random_bytes(size_t n);

std::string base64_encode(std::string_view bytes);     // standard alphabet, padded
std::string base64url_encode(std::string_view bytes);  // URL alphabet, no padding
// Standard alphabet, padding optional. nullopt for anything else, including
// whitespace and URL-alphabet characters.
std::optional<std::string> base64_decode(std::string_view text);

// A credential token: base64url of 32 random bytes, 43 characters.
std::string generate_token();

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;

// Raw AES-256-GCM. encrypt returns ciphertext ‖ tag. decrypt takes the same and
// throws decrypt_failed when the tag does not verify. A key that is not 32
// bytes or a nonce that is not 12 bytes is a programming error (internal).
std::string aes256gcm_encrypt(const SecretBytes& key, std::string_view nonce12,
                              std::string_view plaintext, std::string_view aad);
SecretBytes aes256gcm_decrypt(const SecretBytes& key, std::string_view nonce12,
                              std::string_view ciphertext_and_tag, std::string_view aad);

// Envelope stored as token_cipher: version ‖ random 12-byte nonce ‖
// ciphertext ‖ 16-byte tag. The version byte says which associated data the
// sealer used; open is told the version it expects and throws decrypt_failed
// for any other, a short envelope, a wrong key, a wrong aad or any tampering.
// Its messages never carry key, plaintext or ciphertext bytes.
//   0x01  credentials before 0.3.0 (credential_aad), and other sealed values
//         (a database host's password)
//   0x02  credentials from 0.3.0 on (bound_credential_aad: also the database's
//         name and URL)
constexpr unsigned char kEnvelopeVersion = 0x01;
constexpr unsigned char kEnvelopeVersionUnbound = 0x01;
constexpr unsigned char kEnvelopeVersionBound = 0x02;
constexpr size_t kEnvelopeOverhead = 1 + kNonceSize + kTagSize;
std::string seal(const SecretBytes& key, std::string_view plaintext, std::string_view aad,
                 unsigned char version = kEnvelopeVersion);
SecretBytes open(const SecretBytes& key, std::string_view envelope, std::string_view aad,
                 unsigned char version = kEnvelopeVersion);
// The version byte of an envelope, 0 when it is too short to be one.
unsigned char envelope_version(std::string_view envelope);

// Associated data binding a credential's ciphertext to its row: a label, then
// each field as a 4-byte big-endian length and its bytes, so no two different
// field triples encode the same. Envelope format 1.
std::string credential_aad(std::string_view credential_id, std::string_view database_id,
                           std::string_view scope);
// Envelope format 2: the same fields, then the database's name and a
// SHA-256 digest of its URL (an empty field for a NULL URL), under another
// label. A ciphertext then opens only while its database row keeps the name
// and URL it was sealed for: a planted URL or a moved row is decrypt_failed.
std::string bound_credential_aad(std::string_view credential_id, std::string_view database_id,
                                 std::string_view scope, std::string_view database_name,
                                 const std::optional<std::string>& database_url);
// Its last field, for a caller that binds many credentials of one database
// (rewrap_credentials): the URL's SHA-256, empty for a NULL URL.
std::string database_url_digest(const std::optional<std::string>& database_url);
std::string bound_credential_aad_with_digest(std::string_view credential_id,
                                             std::string_view database_id, std::string_view scope,
                                             std::string_view database_name,
                                             std::string_view url_digest);

// The verifier Postgres stores in pg_authid.rolpassword:
// SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>.
// The password is used as given, without SASLprep; that matches Postgres for
// ASCII passwords such as generated tokens.
std::string scram_sha256_verifier(std::string_view password, std::string_view salt,
                                  int iterations = 4096);

// Compares in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace envdb::crypto
