#include "catalog/audit.hpp"

#include "core/clock.hpp"
#include "core/ids.hpp"

namespace envdb::audit {

namespace {
Value opt(const std::optional<std::string>& v) { return v ? Value(*v) : null_value(); }
}  // namespace

void record(Host& host, const Event& e) {
  const auto actor = host.actor();
  execute(host.store(),
          "INSERT INTO envdb.sys_audit_event (id, occurred_at, actor, action, organization_id, "
          "environment_id, subject_type, subject_id, detail) "
          "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9::jsonb)",
          {new_uuid_v7(), now_iso(), opt(actor), e.action, opt(e.organization_id),
           opt(e.environment_id), opt(e.subject_type), opt(e.subject_id), e.detail.dump()});
}

}  // namespace envdb::audit
