// The audit trail: every state-changing call appends one event.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/host.hpp"
#include "core/json.hpp"

namespace envdb::audit {

struct Event {
  std::string action;  // e.g. "environment.provision", "credential.rotate"
  std::optional<std::string> organization_id;
  std::optional<std::string> environment_id;
  std::optional<std::string> subject_type;  // "organization" | "environment" | "credential" | ...
  std::optional<std::string> subject_id;
  Json detail = Json::object();  // never a secret
};

void record(Host& host, const Event& event);

}  // namespace envdb::audit
