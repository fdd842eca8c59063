// JSON requests through the real entry path (api::invoke_request) against an
// in-memory catalog: any request either succeeds or fails with an envdb::Error
// carrying a contract code word, and never leaves a half-made change.
#include <cstddef>
#include <cstdint>
#include <string>

#include "../unit/test_host.hpp"
#include "secrets/crypto.hpp"
#include "surface/api.hpp"

namespace {
envdb::test::MemoryHost& host() {
  static envdb::test::MemoryHost* h = [] {
    auto* made = new envdb::test::MemoryHost();
    made->call("init");
    made->keyring().add("k1", envdb::crypto::SecretBytes(std::string(32, 'k')));
    made->call("config", {std::string("default_driver"), std::string("turso")});
    return made;
  }();
  return *h;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace envdb;
  if (size < 1) return 0;
  static const char* const kTargets[] = {"provision_organization", "provision_environment",
                                         "issue_credential", "rotate_credential"};
  const api::Function* fn = api::find(kTargets[data[0] % 4]);
  const std::string request(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    api::invoke_request(host(), *fn, request);
  } catch (const HostError& e) {
    __builtin_trap();  // the core must validate before the database has to refuse
  } catch (const Error& e) {
    if (e.code() == Code::internal) __builtin_trap();
  }
  return 0;
}
