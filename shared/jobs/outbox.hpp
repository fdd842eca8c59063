// outbox: the provisioning jobs that do work outside the transaction (create
// a Postgres or Turso database). A worker claims pending jobs (each claimed by
// exactly one caller), does the work and reports back: complete (URL and the
// tokens Turso minted) or fail (with a retry or for good).
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::outbox {

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

// The same three for a host's own worker, in C++ (no SQL function call, no
// JSON text to parse back). claim_jobs with `due_only` leaves a job that was
// reported failed with retry pending for 2^attempts seconds (at most
// kMaxBackoffSeconds) after that report (Postgres only: the background
// worker's claim). Each returns what its SQL function returns.
Json claim_jobs(Host& host, const std::string& driver, int64_t max_jobs,
                const std::optional<std::string>& worker, bool due_only);
Json complete_job(Host& host, const std::string& job_id,
                  const std::optional<std::string>& database_url, const Json& tokens);
Json fail_job(Host& host, const std::string& job_id, const std::string& error, bool retry);

constexpr int64_t kMaxBackoffSeconds = 60;

Value claim_provisioning_jobs(api::Call& call);
Value complete_provisioning_job(api::Call& call);
Value fail_provisioning_job(api::Call& call);

}  // namespace envdb::outbox
