// The settings in sys_config: their keys, per-host defaults and validation,
// how the core reads them, and the SQL function config() that reads or sets
// one.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"

namespace envdb::settings {

// A setting's value: the stored one, else its default for this host.
std::string setting(Host& host, const std::string& key);
int64_t setting_seconds(Host& host, const std::string& key);
// A whole-number setting that is not seconds (trial_days, trial_max_extensions).
int64_t setting_number(Host& host, const std::string& key);
// sqlite_data_dir as an absolute, normalised path. A relative setting (the
// default, envdb_environments, is one) is resolved against the directory of
// the control database's file, so it does not depend on the working
// directory of whoever opened it; only a control database without a file (in
// memory, or a host that cannot tell) falls back to the working directory.
std::string sqlite_data_dir(Host& host);

// This module's rows of the SQL function table (config).
std::vector<api::Function> functions();

}  // namespace envdb::settings
