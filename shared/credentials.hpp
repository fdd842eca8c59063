// credentials: see the module map in docs/architecture.md.
#pragma once
#include "cpp_only.hpp"

#include <vector>

#include "api.hpp"

namespace envdb::credentials {
// This module's rows of the SQL function table.
std::vector<api::Function> functions();
}  // namespace envdb::credentials
