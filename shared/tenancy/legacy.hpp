// The v4 compatibility shim (deprecated, removed in 2.0): provision_tenant_database
// answers in the v4 shape, and migrate_legacy_tenant_databases turns the rows
// of a v4 sys_tenant_database table into organizations' default environments,
// databases and sealed credentials. The sys_tenant_database view itself lives
// in the catalog.
#pragma once
#include "core/cpp_only.hpp"
#include "core/function.hpp"

#include <vector>

namespace envdb::legacy {

// Registered through environments::functions().
std::vector<api::Function> functions();

Value provision_tenant_database(api::Call& call);
Value migrate_legacy_tenant_databases(api::Call& call);

}  // namespace envdb::legacy
