#include "core/errors.hpp"

#include <cstdio>

namespace envdb {

const char* code_word(Code code) noexcept {
  switch (code) {
    case Code::invalid_parameter: return "invalid_parameter";
    case Code::not_found: return "not_found";
    case Code::already_exists: return "already_exists";
    case Code::invalid_transition: return "invalid_transition";
    case Code::permission_denied: return "permission_denied";
    case Code::key_unavailable: return "key_unavailable";
    case Code::decrypt_failed: return "decrypt_failed";
    case Code::schema_mismatch: return "schema_mismatch";
    case Code::conflict: return "conflict";
    case Code::internal: return "internal";
  }
  return "internal";
}

const char* code_sqlstate(Code code) noexcept {
  switch (code) {
    case Code::invalid_parameter: return "22023";   // invalid_parameter_value
    case Code::not_found: return "P0002";           // no_data_found
    case Code::already_exists: return "23505";      // unique_violation
    case Code::invalid_transition: return "55000";  // object_not_in_prerequisite_state
    case Code::permission_denied: return "42501";   // insufficient_privilege
    case Code::key_unavailable: return "55000";
    case Code::decrypt_failed: return "22000";  // data_exception
    case Code::schema_mismatch: return "55000";
    case Code::conflict: return "55006";  // object_in_use
    case Code::internal: return "XX000";
  }
  return "XX000";
}

std::string quote_value(const std::string& value) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  size_t n = 0;
  for (unsigned char c : value) {
    if (n++ == kMax) {
      out += "...";
      break;
    }
    if (c == '\'') {
      out += "''";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += "'";
  return out;
}

}  // namespace envdb

namespace envdb {

void throw_host_error(Code fallback, const std::string& message, const std::string& sqlstate) {
  static const Code kAll[] = {Code::invalid_parameter, Code::not_found,
                              Code::already_exists,    Code::invalid_transition,
                              Code::permission_denied, Code::key_unavailable,
                              Code::decrypt_failed,    Code::schema_mismatch,
                              Code::conflict};
  for (Code c : kAll) {
    const std::string prefix = std::string(code_word(c)) + ": ";
    if (message.compare(0, prefix.size(), prefix) == 0)
      throw HostError(c, message.substr(prefix.size()), code_sqlstate(c));
  }
  throw HostError(fallback, message, sqlstate.empty() ? code_sqlstate(fallback) : sqlstate);
}

}  // namespace envdb
