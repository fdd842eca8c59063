// The postgres driver's background workers (see worker.cpp and
// docs/architecture.md "The postgres driver").
#pragma once

#include <memory>

#include "core/host.hpp"

namespace envdb::pg {

// A Host over SPI for the current transaction (envdb_pg.cpp).
std::unique_ptr<Host> make_host();

namespace worker {

// From _PG_init while shared_preload_libraries loads envdb: the shared
// memory and the launcher. Without the preload nothing runs in the
// background and postgres jobs wait for an external worker.
void register_preloaded();
// From _PG_init in every process: the commit hook that wakes the launcher.
void register_commit_hook();
// The current transaction queued a postgres job: wake the workers after it
// commits (nothing happens when it aborts).
void note_job_queued();

}  // namespace worker

}  // namespace envdb::pg
