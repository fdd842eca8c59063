// Setup: version, build facts, the catalog (init) and settings (config).
#pragma once
#include "cpp_only.hpp"

#include <optional>
#include <string>

#include "api.hpp"

namespace envdb::setup {

Value version(api::Call& call);
Value build_info(api::Call& call);
Value init(api::Call& call);
Value config(api::Call& call);

// A setting's value: the stored one, else its default for this host.
std::string setting(Host& host, const std::string& key);
int64_t setting_seconds(Host& host, const std::string& key);

}  // namespace envdb::setup
