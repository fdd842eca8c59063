#include "tenancy/lifecycle.hpp"

#include "core/errors.hpp"

namespace envdb::lifecycle {

namespace {
struct Edge {
  const char* from;
  const char* to;
};
const Edge kEdges[] = {
    {"provisioning", "active"}, {"provisioning", "failed"}, {"provisioning", "archived"},
    {"active", "suspended"},    {"suspended", "active"},    {"active", "archived"},
    {"suspended", "archived"},  {"failed", "provisioning"}, {"failed", "archived"},
    // A copy, reset or restore holds its target (tenancy/copy) and gives it
    // back the status it had.
    {"active", "maintenance"},  {"suspended", "maintenance"}, {"maintenance", "active"},
    {"maintenance", "suspended"},
};
}  // namespace

bool is_status(const std::string& s) {
  return s == "provisioning" || s == "active" || s == "suspended" || s == "archived" ||
         s == "failed" || s == "maintenance";
}

bool allowed(const std::string& from, const std::string& to) {
  for (const Edge& e : kEdges)
    if (from == e.from && to == e.to) return true;
  return false;
}

void require(const std::string& environment_id, const std::string& from, const std::string& to) {
  if (!is_status(to))
    fail(Code::invalid_parameter,
         "status " + quote_value(to) +
             " is not an environment status (provisioning, active, suspended, archived, failed, "
             "maintenance)");
  if (!allowed(from, to))
    fail(Code::invalid_transition,
         "environment " + quote_value(environment_id) + " cannot go from " + from + " to " + to);
}

}  // namespace envdb::lifecycle
