// outbox: the provisioning jobs that do work outside the transaction (create
// a Postgres or Turso database). A worker claims pending jobs (each claimed by
// exactly one caller), does the work and reports back: complete (URL and the
// tokens Turso minted) or fail (with a retry or for good).
#pragma once
#include "cpp_only.hpp"

#include <vector>

#include "api.hpp"

namespace envdb::outbox {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

Value claim_provisioning_jobs(api::Call& call);
Value complete_provisioning_job(api::Call& call);
Value fail_provisioning_job(api::Call& call);

}  // namespace envdb::outbox
