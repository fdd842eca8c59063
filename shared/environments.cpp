#include "environments.hpp"

namespace envdb::environments {
std::vector<api::Function> functions() { return {}; }
}  // namespace envdb::environments
