// A SQL value as it crosses the store port and the host boundary.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace envdb {

struct Blob {
  std::string bytes;
  bool operator==(const Blob& o) const { return bytes == o.bytes; }
};

// monostate is SQL NULL. Timestamps travel as ISO-8601 UTC text, JSON as text.
using Value = std::variant<std::monostate, int64_t, double, std::string, Blob, bool>;

inline bool is_null(const Value& v) { return std::holds_alternative<std::monostate>(v); }
inline Value null_value() { return std::monostate{}; }
// A nullable text column's value: the text, or NULL.
inline Value optional_value(const std::optional<std::string>& v) {
  return v ? Value(*v) : null_value();
}

}  // namespace envdb
