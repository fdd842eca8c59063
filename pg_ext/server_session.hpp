// The one owner of libpq in the Postgres host: a session on a registered
// database host (sys_database_host), used by check() (the server facts and
// their repairs) and by the database worker (jobs and convergence). Plain C++
// and libpq: no Postgres server header, no SPI, so it may run in any backend
// or background worker. (The worker reaches its own server through SPI, not
// libpq: worker_executor.cpp.)
#pragma once
#include <memory>
#include <string>

#include "core/errors.hpp"
#include "postgres/provisioner.hpp"

namespace envdb::pg {

// A failure worth trying again later (a busy slot, an unreachable server):
// the worker puts the job back to pending with backoff instead of failing it
// for good; check() reports it like any other error.
class Transient : public Error {
 public:
  using Error::Error;
};

// Who connects, as the server sees it (pg_stat_activity.application_name),
// and how long a connection attempt may take.
struct ConnectOptions {
  const char* application_name;
  int timeout_seconds;
};
inline constexpr ConnectOptions kCheckConnection{"envdb check", 5};
inline constexpr ConnectOptions kWorkerConnection{"envdb", 10};

// Connects to the host's maintenance database as its username (password
// opened by the caller; the session keeps its own wiped copy, so `server` may
// go before it). Transient (code internal) with libpq's first line when it
// cannot. The session's statements fail with Error (internal) naming the
// host and the server's primary message: never the statement, which may hold
// a verifier, nor the connection parameters.
std::unique_ptr<postgres::ServerSession> connect_registered_server(const postgres::Server& server,
                                                                   const ConnectOptions& options);

}  // namespace envdb::pg
