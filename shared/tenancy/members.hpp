// Members: a user's role in one environment (env_admin, env_maker, env_user,
// env_viewer), and the access checks answered from the role table in
// permissions.hpp.
//
// User ids come from auth systems (better-auth, OIDC subjects, e-mail-like
// names), so they follow a wider rule than envdb's ids:
// ^[A-Za-z0-9][A-Za-z0-9_.:@|+-]{0,255}$ (letters, digits and _ . : @ | + -,
// 1 to 256 characters, starting with a letter or digit).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/cpp_only.hpp"
#include "core/function.hpp"
#include "core/store.hpp"

namespace envdb::members {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// The user's role in the environment, or nullopt when the user is not a
// member. One indexed lookup; it does not check that the environment exists.
std::optional<std::string> role_of(Store& store, const std::string& environment_id,
                                   const std::string& user_id);

// env_admin -> admin, env_maker and env_user -> readwrite, env_viewer ->
// readonly; invalid_parameter for an unknown role.
std::string scope_for_role(const std::string& role);

bool is_valid_user_id(const std::string& user_id);
// Throws invalid_parameter naming `field` when the user id does not match.
void require_user_id(const std::string& field, const std::string& user_id);

}  // namespace envdb::members
