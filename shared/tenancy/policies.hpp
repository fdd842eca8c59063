// Policies that run themselves: a trial environment's end (suspended at its
// expires_at, archived after the grace), the storage decisions of usage.cpp,
// and credential deadlines, gathered in one sweep. The Postgres worker runs
// the sweep every pass; SQLite has no background process, so
// enforce_policies() is the explicit sweep there, and resolve_environment and
// get_environment observe an expired trial themselves.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"

namespace envdb::policies {

// The end of a trial created at `now_ms`: trial_seconds when it is not 0,
// else trial_days, as ISO text.
std::string trial_end(Host& host, int64_t now_ms);

// One sweep, in one transaction: credentials past their deadline revoked
// (credentials::expire_due), active trials past expires_at suspended, trials
// suspended for longer than the grace archived, the databases whose usage is
// due measured where this host can measure them (usage::measure_due), and
// every database's read-only decision brought up to date (usage::decide_all).
// Every step is audited. Returns what it did:
// {expiredCredentials, suspendedTrials, archivedTrials, measured, readOnly, writable}.
Json sweep(Host& host);

// SQLite: a trial of this environment past its end is suspended (or archived
// after the grace) now, when the store can be written; an error changes
// nothing and is not raised (a read must not fail for it). Postgres: nothing
// (the worker does it on time).
void observe(Host& host, const std::string& environment_id);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::policies
