// The queue of provisioning jobs (sys_provisioning_job): the one way work
// enters it. Claiming, completing and failing jobs is the outbox's
// (outbox.hpp), which sits above the drivers whose completions it applies;
// queueing sits below them, so every module that asks for work can call it.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::queue {

// One job to queue.
struct NewJob {
  std::string environment_id;
  std::optional<std::string> database_id;
  std::string kind;               // create_database | drop_database | create_login | disable_login
  std::string driver;             // postgres | turso
  Json payload = Json::object();  // never a secret
};

// The one way work enters the outbox: inserts the job as pending, tells the
// host (Host::jobs_queued, which wakes the Postgres worker on commit) and
// returns the row (records::kJobColumns). Runs inside the caller's
// transaction, so the job exists exactly when the change that asked for it
// commits. Every module that queues work calls this (provision, the postgres
// provisioner, environments, turso); it depends on nothing but the store.
Row enqueue(Host& host, const NewJob& job);

}  // namespace envdb::queue
