// Setup: version, build facts, the catalog (init) and settings (config).
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "surface/api.hpp"

namespace envdb::setup {

Value version(api::Call& call);
Value build_info(api::Call& call);
Value init(api::Call& call);
Value config(api::Call& call);

// SQLite: whether a call of fn needs this database's control-plane catalog
// (everything but version, build_info, init, the per-connection keyring
// functions and the data-plane functions, which run in environment databases).
bool needs_catalog(const api::Function& fn);

// SQLite: refuses a call on a database whose control-plane catalog is missing
// (not_found) or was made by an earlier envdb (schema_mismatch, until
// envdb_init() upgrades it in place). A catalog version never goes down, so a
// host may remember per connection that this passed once.
void require_current_catalog(Store& store);

// A setting's value: the stored one, else its default for this host.
std::string setting(Host& host, const std::string& key);
int64_t setting_seconds(Host& host, const std::string& key);
// sqlite_data_dir as an absolute, normalised path. A relative setting (the
// default, envdb_environments, is one) is resolved against the directory of
// the control database's file, so it does not depend on the working
// directory of whoever opened it; only a control database without a file (in
// memory, or a host that cannot tell) falls back to the working directory.
std::string sqlite_data_dir(Host& host);

}  // namespace envdb::setup
