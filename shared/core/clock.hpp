// Time as the contract shows it: ISO-8601 UTC with milliseconds.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>
#include <optional>
#include <string>

namespace envdb {

int64_t now_ms();
std::string iso_from_ms(int64_t unix_ms);  // 2026-01-02T03:04:05.678Z
// Accepts the ISO forms both hosts produce (`T` or space, optional fraction,
// `Z` or `+00`/`+00:00` offsets). nullopt when it is not a timestamp.
std::optional<int64_t> ms_from_iso(const std::string& text);
inline std::string now_iso() { return iso_from_ms(now_ms()); }

}  // namespace envdb
