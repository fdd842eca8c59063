// Environment roles and what each may do: the one role -> permission table
// (docs/design.md#members-and-permissions), and the credential scope each role maps
// to. check_environment_access() and the router answer from here only.
//
//   role        scope      read write deploy manage_members manage_credentials manage_environment
//   env_admin   admin       x     x     x          x               x                  x
//   env_maker   readwrite   x     x     x
//   env_user    readwrite   x     x
//   env_viewer  readonly    x
#pragma once
#include <string>
#include <vector>

#include "core/cpp_only.hpp"

namespace envdb::permissions {

// Most to least privileged.
const std::vector<std::string>& roles();
// read, write, deploy, manage_members, manage_credentials, manage_environment.
const std::vector<std::string>& permissions();

bool is_role(const std::string& role);
bool is_permission(const std::string& permission);
// Throw invalid_parameter naming `field` and listing the accepted words.
void require_role(const std::string& field, const std::string& role);
void require_permission(const std::string& field, const std::string& permission);

// Whether `role` grants `permission`; invalid_parameter for an unknown word.
bool allows(const std::string& role, const std::string& permission);
// env_admin -> admin, env_maker and env_user -> readwrite, env_viewer ->
// readonly; invalid_parameter for an unknown role.
std::string scope_for_role(const std::string& role);
// Whether a credential of scope `granted` may stand in for `requested`:
// admin covers readwrite and readonly, readwrite covers readonly. Unknown
// words cover nothing.
bool scope_covers(const std::string& granted, const std::string& requested);

}  // namespace envdb::permissions
