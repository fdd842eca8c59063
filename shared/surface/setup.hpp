// Setup: the SQL functions version, build_info and init (create or upgrade
// the catalog in a SQLite database, then bind pre-0.3.0 credentials).
#pragma once
#include "core/cpp_only.hpp"

#include <vector>

#include "core/function.hpp"

namespace envdb::setup {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::setup
