// Sealed-envelope decoding: any bytes either open (only the real envelope) or
// fail with decrypt_failed; nothing else may happen.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/errors.hpp"
#include "secrets/crypto.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace envdb;
  static const crypto::SecretBytes key(std::string(32, 'k'));
  static const std::string aad = crypto::credential_aad("cred", "db", "readwrite");
  const std::string envelope(reinterpret_cast<const char*>(data), size);
  try {
    crypto::open(key, envelope, aad);
  } catch (const Error& e) {
    if (e.code() != Code::decrypt_failed) __builtin_trap();
  }
  // What seals must open again.
  const std::string sealed = crypto::seal(key, envelope, aad);
  if (crypto::open(key, sealed, aad).view() != envelope) __builtin_trap();
  return 0;
}
