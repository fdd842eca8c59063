#include "jobs/queue.hpp"

#include "catalog/records.hpp"
#include "core/clock.hpp"
#include "core/ids.hpp"

namespace envdb::queue {

Row enqueue(Host& host, const NewJob& job) {
  const std::string id = new_uuid_v7();
  execute(host.store(),
          "INSERT INTO envdb.sys_provisioning_job (id, environment_id, database_id, kind, driver, "
          "status, attempts, payload, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, "
          "'pending', 0, $6::jsonb, $7::timestamptz, $7::timestamptz)",
          {id, job.environment_id, job.database_id ? Value(*job.database_id) : null_value(),
           job.kind, job.driver, job.payload.dump(), now_iso()});
  host.jobs_queued(job.driver);
  auto row = query_one(host.store(),
                       std::string("SELECT ") + records::kJobColumns +
                           " FROM envdb.sys_provisioning_job WHERE id = $1",
                       {id});
  return *row;
}

}  // namespace envdb::queue
