// Ids, slugs, timestamps and the SQL translation: total functions that must
// agree with their own rules on any input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "sql_translate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace envdb;
  const std::string s(reinterpret_cast<const char*>(data), size);
  if (is_valid_slug(s) && (s.empty() || s.size() > 63 || s[0] == '-')) __builtin_trap();
  if (is_valid_id(s) && (s.empty() || s.size() > 128)) __builtin_trap();
  try {
    require_slug("slug", s);
  } catch (const Error& e) {
    if (e.code() != Code::invalid_parameter || is_valid_slug(s)) __builtin_trap();
  }
  if (auto ms = ms_from_iso(s)) {
    // A timestamp that parses prints in the canonical form, which parses back to itself.
    const std::string canonical = iso_from_ms(*ms);
    if (ms_from_iso(canonical) != *ms) __builtin_trap();
  }
  const std::string translated = sqlite::translate_sql(s);
  if (translated.size() > s.size()) __builtin_trap();
  (void)quote_value(s);
  return 0;
}
