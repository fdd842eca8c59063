#include "tenancy/permissions.hpp"

#include <iterator>

#include "core/errors.hpp"

namespace envdb::permissions {

namespace {

// Permission bits, in the order of kPermissions.
enum : unsigned {
  kRead = 1u << 0,
  kWrite = 1u << 1,
  kDeploy = 1u << 2,
  kManageMembers = 1u << 3,
  kManageCredentials = 1u << 4,
  kManageEnvironment = 1u << 5,
};

const char* const kPermissions[] = {
    "read", "write", "deploy", "manage_members", "manage_credentials", "manage_environment"};

struct RoleRule {
  const char* role;
  const char* scope;
  unsigned grants;
};

// The table. Nothing else in envdb decides what a role may do.
const RoleRule kRoles[] = {
    {"env_admin", "admin",
     kRead | kWrite | kDeploy | kManageMembers | kManageCredentials | kManageEnvironment},
    {"env_maker", "readwrite", kRead | kWrite | kDeploy},
    {"env_user", "readwrite", kRead | kWrite},
    {"env_viewer", "readonly", kRead},
};

std::string listed(const std::vector<std::string>& words) {
  std::string out;
  for (auto& w : words) out += (out.empty() ? "" : ", ") + w;
  return out;
}

const RoleRule* find_role(const std::string& role) {
  for (auto& r : kRoles)
    if (role == r.role) return &r;
  return nullptr;
}

int permission_index(const std::string& permission) {
  for (size_t i = 0; i < sizeof kPermissions / sizeof kPermissions[0]; ++i)
    if (permission == kPermissions[i]) return static_cast<int>(i);
  return -1;
}

}  // namespace

const std::vector<std::string>& roles() {
  static const std::vector<std::string> all = [] {
    std::vector<std::string> v;
    for (auto& r : kRoles) v.push_back(r.role);
    return v;
  }();
  return all;
}

const std::vector<std::string>& permissions() {
  static const std::vector<std::string> all(std::begin(kPermissions), std::end(kPermissions));
  return all;
}

bool is_role(const std::string& role) { return find_role(role) != nullptr; }
bool is_permission(const std::string& permission) { return permission_index(permission) >= 0; }

void require_role(const std::string& field, const std::string& role) {
  if (!is_role(role))
    fail(Code::invalid_parameter,
         field + " " + quote_value(role) + " is not an environment role (" + listed(roles()) + ")");
}

void require_permission(const std::string& field, const std::string& permission) {
  if (!is_permission(permission))
    fail(Code::invalid_parameter, field + " " + quote_value(permission) + " is not a permission (" +
                                      listed(permissions()) + ")");
}

bool allows(const std::string& role, const std::string& permission) {
  require_role("role", role);
  require_permission("permission", permission);
  return (find_role(role)->grants >> permission_index(permission)) & 1u;
}

std::string scope_for_role(const std::string& role) {
  require_role("role", role);
  return find_role(role)->scope;
}

bool scope_covers(const std::string& granted, const std::string& requested) {
  // Most to least: the order of the scopes in kRoles.
  auto rank = [](const std::string& scope) {
    if (scope == "admin") return 3;
    if (scope == "readwrite") return 2;
    if (scope == "readonly") return 1;
    return 0;
  };
  return rank(requested) > 0 && rank(granted) >= rank(requested);
}

}  // namespace envdb::permissions
