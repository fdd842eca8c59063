// Sealing and opening a credential token with envdb::crypto against the plain
// raw-EVP way (a fresh context per call), on the sizes the router sees: a
// 43-byte token and 60 bytes of associated data.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <string>

#include "secrets/crypto.hpp"

namespace {

using envdb::crypto::SecretBytes;

struct Fixture {
  SecretBytes key{envdb::crypto::random_bytes(32)};
  std::string token = envdb::crypto::generate_token();
  std::string aad = std::string(60, 'a');
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

unsigned char* u8(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }
const unsigned char* u8(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// Same layout as envdb::crypto::seal: version ‖ nonce ‖ ciphertext ‖ tag.
bool raw_seal(const Fixture& f, std::string& out) {
  out.assign(1 + 12 + f.token.size() + 16, '\0');
  unsigned char* p = u8(out);
  p[0] = 1;
  if (RAND_bytes(p + 1, 12) != 1) return false;
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  bool ok = ctx != nullptr &&
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, f.key.data(), p + 1) == 1 &&
            EVP_EncryptUpdate(ctx, nullptr, &len, u8(f.aad), static_cast<int>(f.aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx, p + 13, &len, u8(f.token), static_cast<int>(f.token.size())) ==
                1 &&
            EVP_EncryptFinal_ex(ctx, p + 13 + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + 13 + f.token.size()) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

bool raw_open(const Fixture& f, const std::string& envelope, std::string& out) {
  const unsigned char* p = u8(envelope);
  size_t n = envelope.size() - 29;
  out.assign(n, '\0');
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  bool ok = ctx != nullptr && p[0] == 1 &&
            EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, f.key.data(), p + 1) == 1 &&
            EVP_DecryptUpdate(ctx, nullptr, &len, u8(f.aad), static_cast<int>(f.aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx, u8(out), &len, p + 13, static_cast<int>(n)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16,
                                const_cast<unsigned char*>(p + 13 + n)) == 1 &&
            EVP_DecryptFinal_ex(ctx, u8(out) + len, &len) == 1;
  EVP_CIPHER_CTX_free(ctx);
  return ok;
}

void BM_RawEvpSeal(benchmark::State& state) {
  const Fixture& f = fixture();
  std::string out;
  if (!raw_seal(f, out)) state.SkipWithError("raw seal failed");
  for (auto _ : state) {
    benchmark::DoNotOptimize(raw_seal(f, out));
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_RawEvpSeal);

void BM_EnvdbSeal(benchmark::State& state) {
  const Fixture& f = fixture();
  for (auto _ : state) {
    std::string out = envdb::crypto::seal(f.key, f.token, f.aad);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EnvdbSeal);

void BM_RawEvpOpen(benchmark::State& state) {
  const Fixture& f = fixture();
  const std::string envelope = envdb::crypto::seal(f.key, f.token, f.aad);
  std::string out;
  if (!raw_open(f, envelope, out) || out != f.token) state.SkipWithError("raw open failed");
  for (auto _ : state) {
    benchmark::DoNotOptimize(raw_open(f, envelope, out));
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_RawEvpOpen);

void BM_EnvdbOpen(benchmark::State& state) {
  const Fixture& f = fixture();
  const std::string envelope = envdb::crypto::seal(f.key, f.token, f.aad);
  for (auto _ : state) {
    SecretBytes out = envdb::crypto::open(f.key, envelope, f.aad);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_EnvdbOpen);

}  // namespace
