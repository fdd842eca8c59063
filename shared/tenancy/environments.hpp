// environments: organizations and their environments: provisioning, status
// changes through the lifecycle state machine, archiving, the default flag
// and retries. The v4 shim (legacy.hpp) registers through this module too.
#pragma once
#include "core/cpp_only.hpp"
#include "core/function.hpp"

#include <optional>
#include <string>
#include <vector>

namespace envdb::environments {

// This module's rows of the SQL function table (including the v4 shim's).
std::vector<api::Function> functions();

Value provision_organization(api::Call& call);
Value provision_environment(api::Call& call);
Value get_environment(api::Call& call);
// get_environment's answer for an environment the caller may see:
// {environment, database, credentials} (no secrets).
Value environment_record(Store& store, const std::string& environment_id);
Value set_environment_status(api::Call& call);
Value archive_environment(api::Call& call);
Value drop_environment_database(api::Call& call);
Value set_default_environment(api::Call& call);
Value retry_environment(api::Call& call);

}  // namespace envdb::environments
