#include "secrets/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/mman.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <memory>

#include "core/errors.hpp"

namespace envdb::crypto {

namespace {

const unsigned char* u8(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}
unsigned char* u8(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

void wipe_string(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// OpenSSL takes int lengths.
int int_len(std::string_view s) {
  if (s.size() > static_cast<size_t>(INT_MAX)) {
    fail(Code::internal, "input is too large for OpenSSL");
  }
  return static_cast<int>(s.size());
}

void fill_random(unsigned char* out, size_t n) {
  if (n > static_cast<size_t>(INT_MAX) || RAND_bytes(out, static_cast<int>(n)) != 1) {
    fail(Code::internal, "the OpenSSL random generator failed");
  }
}

// Fetched once: the implicit fetch behind EVP_aes_256_gcm() costs a provider
// lookup on every init. Never freed; it lives as long as the process.
const EVP_CIPHER* gcm_cipher() {
  static EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  if (cipher == nullptr) fail(Code::internal, "OpenSSL provides no AES-256-GCM");
  return cipher;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};

// One context per thread and direction, reinitialised per call: allocating
// and setting up a context dominates the cost of sealing a short token. Each
// remembers the key it was last given; a call under the same key only sets the
// nonce, which skips the AES key expansion and the GCM hash key (a resolve
// opens under one key; a rewrap opens under the old key and seals under the
// new one, one context each). The key schedule and the copy live until thread
// exit, where EVP_CIPHER_CTX_free and the destructor wipe them.
struct GcmContext {
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx;
  unsigned char key[kKeySize] = {};
  bool keyed = false;
  GcmContext() = default;
  GcmContext(const GcmContext&) = delete;
  GcmContext& operator=(const GcmContext&) = delete;
  ~GcmContext() { OPENSSL_cleanse(key, sizeof key); }
};

GcmContext& thread_ctx(bool encrypt) {
  thread_local GcmContext encrypting;
  thread_local GcmContext decrypting;
  GcmContext& c = encrypt ? encrypting : decrypting;
  if (!c.ctx) c.ctx.reset(EVP_CIPHER_CTX_new());
  if (!c.ctx) fail(Code::internal, "OpenSSL could not allocate a cipher context");
  return c;
}

EVP_CIPHER_CTX* gcm_init(const SecretBytes& key, std::string_view nonce, bool encrypt) {
  if (key.size() != kKeySize) fail(Code::internal, "AES-256-GCM key must be 32 bytes");
  if (nonce.size() != kNonceSize) fail(Code::internal, "AES-256-GCM nonce must be 12 bytes");
  GcmContext& c = thread_ctx(encrypt);
  EVP_CIPHER_CTX* ctx = c.ctx.get();
  const bool same_key = c.keyed && CRYPTO_memcmp(c.key, key.data(), kKeySize) == 0;
  // Passing the cipher again would rebuild the provider context, a third of the cost.
  const EVP_CIPHER* cipher = EVP_CIPHER_CTX_get0_cipher(ctx) ? nullptr : gcm_cipher();
  const unsigned char* k = same_key ? nullptr : key.data();
  // Forget the key first: a failed init leaves the context keyed with nothing known.
  c.keyed = false;
  int ok = encrypt ? EVP_EncryptInit_ex2(ctx, cipher, k, u8(nonce), nullptr)
                   : EVP_DecryptInit_ex2(ctx, cipher, k, u8(nonce), nullptr);
  if (ok != 1) fail(Code::internal, "AES-256-GCM initialisation failed");
  if (!same_key) std::memcpy(c.key, key.data(), kKeySize);
  c.keyed = true;
  return ctx;
}

// A fresh random nonce per seal, drawn from a per-thread pool that one
// RAND_bytes call fills for 255 nonces: the DRBG's per-call locking and
// bookkeeping cost more than the AES-GCM seal of a token. Nonces are public
// (each envelope carries its own), so holding the next ones in memory exposes
// nothing; each is handed out once and wiped. The pool must never outlive a
// fork (a Postgres backend is a fork of the postmaster; a forked child sealing
// from its parent's pool would repeat nonces under the same key): it lives in
// a page marked MADV_WIPEONFORK, which a child sees as zeros, so `live` is 0
// there and the child refills. Where the kernel lacks that, the pool is tied to
// getpid(), a system call per seal.
struct NoncePool {
  uint32_t live;  // 1 once filled by this process; a forked child reads 0
  uint32_t used;
  pid_t pid;  // only read without MADV_WIPEONFORK
  unsigned char bytes[kNonceSize * 255];
};
static_assert(sizeof(NoncePool) <= 4096, "the nonce pool fits in one page");

struct NoncePage {
  NoncePool* pool = nullptr;
  bool wiped_on_fork = false;
  NoncePage() {
    void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail(Code::internal, "could not map the nonce pool");
    pool = static_cast<NoncePool*>(p);
#ifdef MADV_WIPEONFORK
    wiped_on_fork = madvise(p, 4096, MADV_WIPEONFORK) == 0;
#endif
  }
  NoncePage(const NoncePage&) = delete;
  NoncePage& operator=(const NoncePage&) = delete;
  ~NoncePage() {
    OPENSSL_cleanse(pool, sizeof *pool);
    munmap(pool, 4096);
  }
};

void fill_nonce(unsigned char* out) {
  thread_local NoncePage page;
  NoncePool& pool = *page.pool;
  const bool ours = pool.live == 1 && (page.wiped_on_fork || pool.pid == getpid());
  if (!ours || pool.used + kNonceSize > sizeof pool.bytes) {
    pool.live = 0;
    fill_random(pool.bytes, sizeof pool.bytes);
    pool.used = 0;
    pool.pid = page.wiped_on_fork ? 0 : getpid();
    pool.live = 1;
  }
  std::memcpy(out, pool.bytes + pool.used, kNonceSize);
  OPENSSL_cleanse(pool.bytes + pool.used, kNonceSize);
  pool.used += kNonceSize;
}

// Fetched once, like the cipher; used for the URL digest of every bound
// credential's associated data.
const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  if (md == nullptr) fail(Code::internal, "OpenSSL provides no SHA-256");
  return md;
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

void sha256_into(std::string_view data, unsigned char* out32) {
  thread_local std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex2(ctx.get(), sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), out32, &len) != 1 || len != 32)
    fail(Code::internal, "SHA-256 of a database URL failed");
}

// Writes ciphertext then tag to out, which has room for plaintext.size() + kTagSize.
void gcm_encrypt_into(const SecretBytes& key, std::string_view nonce, std::string_view plaintext,
                      std::string_view aad, unsigned char* out) {
  EVP_CIPHER_CTX* ctx = gcm_init(key, nonce, true);
  int len = 0;
  int tail = 0;
  bool ok = EVP_EncryptUpdate(ctx, nullptr, &len, u8(aad), int_len(aad)) == 1 &&
            EVP_EncryptUpdate(ctx, out, &len, u8(plaintext), int_len(plaintext)) == 1 &&
            EVP_EncryptFinal_ex(ctx, out + len, &tail) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, out + plaintext.size()) == 1;
  if (!ok) fail(Code::internal, "AES-256-GCM encryption failed");
}

}  // namespace

SecretBytes::SecretBytes(std::string&& bytes) : bytes_(bytes.begin(), bytes.end()) {
  wipe_string(bytes);
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
  }
  return *this;
}

void SecretBytes::wipe() noexcept {
  OPENSSL_cleanse(bytes_.data(), bytes_.size());
  bytes_.clear();
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  fill_random(u8(out), n);
  return out;
}

std::string base64_encode(std::string_view bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX) / 4 * 3) {
    fail(Code::internal, "input is too large to base64-encode");
  }
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  // Also writes a NUL at out[out.size()], the terminator std::string keeps anyway.
  EVP_EncodeBlock(u8(out), u8(bytes), static_cast<int>(bytes.size()));
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string out = base64_encode(bytes);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  size_t pads = 0;
  while (pads < text.size() && text[text.size() - 1 - pads] == '=') ++pads;
  std::string_view body = text.substr(0, text.size() - pads);
  if (pads > 2 || body.size() % 4 == 1 || (pads > 0 && (body.size() + pads) % 4 != 0) ||
      body.size() > static_cast<size_t>(INT_MAX)) {
    return std::nullopt;
  }
  // EVP_DecodeBlock trims surrounding whitespace and end-of-data markers and
  // wants whole 4-character groups, so the alphabet is checked here instead.
  for (char c : body) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  size_t whole = body.size() / 4 * 4;
  size_t rest = body.size() - whole;
  std::string out(whole / 4 * 3 + (rest ? rest - 1 : 0), '\0');
  if (whole > 0 && EVP_DecodeBlock(u8(out), u8(body), static_cast<int>(whole)) < 0) {
    wipe_string(out);
    return std::nullopt;
  }
  if (rest > 0) {
    // 'A' is six zero bits, so padding the last group with it decodes the same.
    unsigned char group[4] = {'A', 'A', 'A', 'A'};
    unsigned char bytes[3] = {};
    std::memcpy(group, body.data() + whole, rest);
    int n = EVP_DecodeBlock(bytes, group, 4);
    std::memcpy(out.data() + whole / 4 * 3, bytes, rest - 1);
    OPENSSL_cleanse(group, sizeof group);
    OPENSSL_cleanse(bytes, sizeof bytes);
    if (n != 3) {
      wipe_string(out);
      return std::nullopt;
    }
  }
  return out;
}

std::string generate_token() {
  SecretBytes raw(32);
  fill_random(raw.data(), raw.size());
  return base64url_encode(raw.view());
}

std::string aes256gcm_encrypt(const SecretBytes& key, std::string_view nonce12,
                              std::string_view plaintext, std::string_view aad) {
  std::string out(plaintext.size() + kTagSize, '\0');
  gcm_encrypt_into(key, nonce12, plaintext, aad, u8(out));
  return out;
}

SecretBytes aes256gcm_decrypt(const SecretBytes& key, std::string_view nonce12,
                              std::string_view ciphertext_and_tag, std::string_view aad) {
  if (ciphertext_and_tag.size() < kTagSize) {
    fail(Code::decrypt_failed, "ciphertext is shorter than the 16-byte GCM tag");
  }
  EVP_CIPHER_CTX* ctx = gcm_init(key, nonce12, false);
  std::string_view ciphertext = ciphertext_and_tag.substr(0, ciphertext_and_tag.size() - kTagSize);
  std::string_view tag = ciphertext_and_tag.substr(ciphertext.size());
  SecretBytes out(ciphertext.size());
  int len = 0;
  int tail = 0;
  bool ok = EVP_DecryptUpdate(ctx, nullptr, &len, u8(aad), int_len(aad)) == 1 &&
            EVP_DecryptUpdate(ctx, out.data(), &len, u8(ciphertext), int_len(ciphertext)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagSize,
                                const_cast<char*>(tag.data())) == 1 &&
            EVP_DecryptFinal_ex(ctx, out.data() + len, &tail) == 1;
  if (!ok) {
    fail(Code::decrypt_failed,
         "ciphertext does not authenticate: wrong key, wrong row or tampered bytes");
  }
  return out;
}

std::string seal(const SecretBytes& key, std::string_view plaintext, std::string_view aad,
                 unsigned char version) {
  std::string envelope(kEnvelopeOverhead + plaintext.size(), '\0');
  unsigned char* p = u8(envelope);
  p[0] = version;
  fill_nonce(p + 1);
  std::string_view nonce(envelope.data() + 1, kNonceSize);
  gcm_encrypt_into(key, nonce, plaintext, aad, p + 1 + kNonceSize);
  return envelope;
}

SecretBytes open(const SecretBytes& key, std::string_view envelope, std::string_view aad,
                 unsigned char version) {
  if (envelope.size() < kEnvelopeOverhead) {
    fail(Code::decrypt_failed, "envelope is " + std::to_string(envelope.size()) +
                                   " bytes, shorter than the " + std::to_string(kEnvelopeOverhead) +
                                   "-byte minimum");
  }
  if (static_cast<unsigned char>(envelope[0]) != version) {
    fail(Code::decrypt_failed, "envelope has an unknown format version");
  }
  return aes256gcm_decrypt(key, envelope.substr(1, kNonceSize), envelope.substr(1 + kNonceSize),
                           aad);
}

unsigned char envelope_version(std::string_view envelope) {
  return envelope.size() < kEnvelopeOverhead ? 0 : static_cast<unsigned char>(envelope[0]);
}

namespace {
void append_field(std::string& out, std::string_view field) {
  if (field.size() > UINT32_MAX) fail(Code::invalid_parameter, "credential field is too long");
  auto n = static_cast<uint32_t>(field.size());
  const char length[4] = {static_cast<char>((n >> 24) & 0xff), static_cast<char>((n >> 16) & 0xff),
                          static_cast<char>((n >> 8) & 0xff), static_cast<char>(n & 0xff)};
  out.append(length, sizeof length);
  out += field;
}
}  // namespace

std::string credential_aad(std::string_view credential_id, std::string_view database_id,
                           std::string_view scope) {
  std::string out = "envdb-credential-v1";
  out.reserve(out.size() + 12 + credential_id.size() + database_id.size() + scope.size());
  for (std::string_view field : {credential_id, database_id, scope}) append_field(out, field);
  return out;
}

std::string database_url_digest(const std::optional<std::string>& database_url) {
  std::string digest;
  if (database_url) {
    digest.assign(32, '\0');
    sha256_into(*database_url, u8(digest));
  }
  return digest;
}

std::string bound_credential_aad_with_digest(std::string_view credential_id,
                                             std::string_view database_id, std::string_view scope,
                                             std::string_view database_name,
                                             std::string_view url_digest) {
  std::string out = "envdb-credential-v2";
  out.reserve(out.size() + 20 + credential_id.size() + database_id.size() + scope.size() +
              database_name.size() + url_digest.size());
  for (std::string_view field : {credential_id, database_id, scope, database_name, url_digest})
    append_field(out, field);
  return out;
}

std::string bound_credential_aad(std::string_view credential_id, std::string_view database_id,
                                 std::string_view scope, std::string_view database_name,
                                 const std::optional<std::string>& database_url) {
  return bound_credential_aad_with_digest(credential_id, database_id, scope, database_name,
                                          database_url_digest(database_url));
}

std::string scram_sha256_verifier(std::string_view password, std::string_view salt,
                                  int iterations) {
  if (iterations < 1) fail(Code::invalid_parameter, "SCRAM iterations must be at least 1");
  constexpr size_t kLen = 32;  // SHA-256
  SecretBytes salted(kLen);
  SecretBytes client_key(kLen);
  std::string stored_key(kLen, '\0');
  std::string server_key(kLen, '\0');
  unsigned int len = 0;
  bool ok = PKCS5_PBKDF2_HMAC(password.data(), int_len(password), u8(salt), int_len(salt),
                              iterations, EVP_sha256(), kLen, salted.data()) == 1 &&
            HMAC(EVP_sha256(), salted.data(), kLen, u8("Client Key"), 10, client_key.data(),
                 &len) != nullptr &&
            EVP_Digest(client_key.data(), kLen, u8(stored_key), &len, EVP_sha256(), nullptr) == 1 &&
            HMAC(EVP_sha256(), salted.data(), kLen, u8("Server Key"), 10, u8(server_key), &len) !=
                nullptr;
  if (!ok) fail(Code::internal, "SCRAM-SHA-256 verifier computation failed");
  return "SCRAM-SHA-256$" + std::to_string(iterations) + ":" + base64_encode(salt) + "$" +
         base64_encode(stored_key) + ":" + base64_encode(server_key);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace envdb::crypto
