#include "catalog/events.hpp"

#include "core/errors.hpp"

namespace envdb::events {

namespace {

using T = api::Type;

constexpr int64_t kMaxLimit = 1000;

Value events_since(api::Call& c) {
  const int64_t cursor = c.opt_integer("cursor").value_or(-1);
  if (cursor < 0)
    fail(Code::invalid_parameter,
         "cursor must be a whole number of at least 0 (0: from the first event), got " +
             (c.given("cursor") ? std::to_string(cursor) : std::string("NULL")));
  const int64_t limit = c.opt_integer("max_events").value_or(100);
  if (limit < 1 || limit > kMaxLimit)
    fail(Code::invalid_parameter, "max_events must be between 1 and " + std::to_string(kMaxLimit) +
                                      ", got " + std::to_string(limit));
  Json list = Json::array();
  int64_t last = cursor;
  for (const Row& r : query(c.store,
                            "SELECT seq, id, occurred_at, action, organization_id, environment_id, "
                            "subject_type, subject_id FROM envdb.sys_audit_event WHERE seq > $1 "
                            "ORDER BY seq LIMIT $2",
                            {cursor, limit})) {
    last = r.integer("seq");
    const bool credential = r.opt_text("subject_type") == std::string("credential");
    list.push_back(
        Json{{"seq", last},
             {"id", r.text("id")},
             {"occurredAt", r.text("occurred_at")},
             {"action", r.text("action")},
             {"organizationId", json_text(r.opt_text("organization_id"))},
             {"environmentId", json_text(r.opt_text("environment_id"))},
             {"credentialId", credential ? json_text(r.opt_text("subject_id")) : Json(nullptr)}});
  }
  return api::json_result(Json{{"events", std::move(list)}, {"cursor", last}});
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"events_since",
       {{"cursor", T::integer, nullptr}, {"max_events", T::integer, "100"}},
       T::json,
       events_since,
       0,
       kAdmin | kRouter,
       "the audit events numbered after cursor, in commit order, at most max_events (1 to 1000): "
       "{events: [{seq, id, occurredAt, action, organizationId, environmentId, credentialId}], "
       "cursor}; never a secret"},
  };
}

}  // namespace envdb::events
