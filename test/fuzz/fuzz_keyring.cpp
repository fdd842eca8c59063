// Keyring files: parse or refuse with invalid_parameter, and never echo a line.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/errors.hpp"
#include "secrets/keyring.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace envdb;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    Keyring k = Keyring::parse(text, "fuzz");
    for (const auto& id : k.ids())
      if (k.key(id).size() != 32) __builtin_trap();
  } catch (const Error& e) {
    if (e.code() != Code::invalid_parameter) __builtin_trap();
  }
  return 0;
}
