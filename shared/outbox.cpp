#include "outbox.hpp"

namespace envdb::outbox {
std::vector<api::Function> functions() { return {}; }
}  // namespace envdb::outbox
