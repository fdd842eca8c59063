// The JSON bounds (json_bounds): any bytes are scanned without recursion;
// what parse_input accepts is at most kMaxDepth levels deep (checked here
// without recursion) and serialises without trouble; what it refuses is
// invalid_parameter naming the field, and parse_stored refuses the same texts
// with schema_mismatch. The scan agrees with the parser: a value it lets
// through never turns out deeper.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/json_bounds.hpp"

namespace {

size_t depth_of(const envdb::Json& root) {
  size_t deepest = 0;
  std::vector<std::pair<const envdb::Json*, size_t>> work{{&root, 0}};
  while (!work.empty()) {
    auto [j, d] = work.back();
    work.pop_back();
    if (!j->is_structured()) continue;
    deepest = std::max(deepest, d + 1);
    for (const auto& child : *j) work.push_back({&child, d + 1});
  }
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace envdb;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool too_deep = json_bounds::first_excess(text, json_bounds::kMaxDepth).has_value();
  bool input_refused = false;
  try {
    Json j = json_bounds::parse_input(text, "metadata");
    if (too_deep) __builtin_trap();
    if (!j.is_discarded()) {
      if (depth_of(j) > json_bounds::kMaxDepth) __builtin_trap();
      (void)j.dump();
    }
  } catch (const Error& e) {
    if (e.code() != Code::invalid_parameter) __builtin_trap();
    if (std::string(e.what()).find("metadata") == std::string::npos) __builtin_trap();
    input_refused = true;
  }
  try {
    auto j = json_bounds::parse_stored(text, "metadata of row 'x'");
    if (input_refused) __builtin_trap();
    if (j) (void)j->dump();
  } catch (const Error& e) {
    if (e.code() != Code::schema_mismatch || !input_refused) __builtin_trap();
  }
  if (json_bounds::parse_quiet(text).has_value() && input_refused) __builtin_trap();
  return 0;
}
