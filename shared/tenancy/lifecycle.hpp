// The environment lifecycle state machine (docs/design.md#lifecycle):
//   provisioning -> active | failed | archived (cancel)
//   active <-> suspended
//   active | suspended -> archived
//   failed -> provisioning (retry) | archived
//   active | suspended -> maintenance -> the status it came from (copy, reset
//   and restore only: set_environment_status neither enters nor leaves it)
// Archived is final. Anything else is refused with invalid_transition.
#pragma once
#include "core/cpp_only.hpp"

#include <string>

namespace envdb::lifecycle {

bool is_status(const std::string& status);
bool allowed(const std::string& from, const std::string& to);
// Throws invalid_transition naming both states (and invalid_parameter for an
// unknown target status).
void require(const std::string& environment_id, const std::string& from, const std::string& to);

}  // namespace envdb::lifecycle
