#pragma once
#include "core/cpp_only.hpp"

namespace envdb {
inline constexpr const char* kVersion = "0.4.0";
// The control-plane catalog's version, recorded by init() / the install script.
inline constexpr int kCatalogVersion = 4;
}  // namespace envdb
