#include "catalog/audit.hpp"

#include "core/clock.hpp"
#include "core/ids.hpp"

namespace envdb::audit {

void record(Host& host, const Event& e) {
  const auto actor = host.actor();
  execute(host.store(),
          "INSERT INTO envdb.sys_audit_event (id, occurred_at, actor, action, organization_id, "
          "environment_id, subject_type, subject_id, detail) "
          "VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7, $8, $9::jsonb)",
          {new_uuid_v7(), now_iso(), optional_value(actor), e.action,
           optional_value(e.organization_id), optional_value(e.environment_id),
           optional_value(e.subject_type), optional_value(e.subject_id), e.detail.dump()});
}

}  // namespace envdb::audit
