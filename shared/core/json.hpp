// JSON in and out of envdb, with nlohmann-json (ordered, so responses read in
// the contract's key order).
#pragma once
#include "core/cpp_only.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/value.hpp"

namespace envdb {

using Json = nlohmann::ordered_json;

// A nullable text column as JSON (null or string).
inline Json json_text(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace envdb
