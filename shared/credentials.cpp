#include "credentials.hpp"

namespace envdb::credentials {
std::vector<api::Function> functions() { return {}; }
}  // namespace envdb::credentials
