// The SQL surface: one table of entry points, shared by both hosts, gathered
// from every module's functions(). The SQLite host registers `envdb_<name>`
// from it; the Postgres install script is generated from it; both hosts call
// a row's handler through one guard (api::invoke, core/function.hpp).
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <vector>

#include "core/function.hpp"

namespace envdb::api {

const std::vector<Function>& functions();
const Function* find(const std::string& name);
bool available_in(const Function& fn, const std::string& host);

}  // namespace envdb::api
