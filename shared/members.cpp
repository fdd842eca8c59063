#include "members.hpp"

namespace envdb::members {
std::vector<api::Function> functions() { return {}; }
}  // namespace envdb::members
