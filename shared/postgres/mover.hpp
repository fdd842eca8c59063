// mover: the postgres driver's move of an environment database to another
// server (move_environment, job kind move_database), and the drop of the copy
// it left behind once the drop grace has passed (job kind retire_database).
//
// A move, on the two servers of the job:
//   1. target: the scope roles, then any leftover of an earlier attempt
//      dropped, then an empty database of the same name owned by D_owner;
//   2. source: every login of the database made NOLOGIN and every session on
//      it ended (the environment is in maintenance, so nothing writes there);
//   3. the content streamed: the server's own pg_dump (custom format,
//      --no-owner) into pg_restore (--no-owner, --exit-on-error,
//      --single-transaction) on the target, as the hosts' registered users;
//      their passwords reach the two programs only as PGPASSWORD in the
//      program's own environment, never on a command line or in a message;
//   4. target, one transaction (hand_over_moved_sql): what the restoring user
//      now owns in the environment's schemas goes to D_admin (as it is on the
//      source: admin logins run as D_admin), and it fails, so the move does,
//      if any role other than the database's own, envdb's purpose roles and
//      the restoring user owns or is granted anything there;
//   5. target: the database grants, and every live credential's login with a
//      verifier of its own token (the same password as on the source).
// The catalog switch (host and URL) is the job's completion (tenancy/move).
// Every step converges when run again; a failure drops the target database.
#pragma once
#include "core/cpp_only.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "postgres/statements.hpp"

namespace envdb::postgres {

// How the pg_dump / pg_restore programs reach a server: a TCP host or a
// socket directory, a port, a user and the password when there is one.
struct Endpoint {
  std::string host;
  int64_t port = 5432;
  std::string user;
  std::optional<crypto::SecretBytes> password;
};

// A registered host's endpoint (its address, username and opened password).
Endpoint endpoint_of(const Server& server);

// libpq's conninfo for `endpoint` and `dbname` (values quoted); never a
// password.
std::string conninfo(const Endpoint& endpoint, const std::string& dbname);

// Streams database `dbname` from `source` into the (existing, empty) database
// of the same name on `target`: bindir/pg_dump | bindir/pg_restore. `pause`
// is called between polls of the two programs (the host waits a little and
// answers its interrupts there; an exception from it stops both programs).
// A failure says which program failed with the last line it wrote.
void stream_database(const std::string& bindir, const Endpoint& source, const Endpoint& target,
                     const std::string& dbname, const std::function<void()>& pause);

// The script of step 4 (one DO block; run inside the target database).
std::string hand_over_moved_sql(const std::string& database_name);

struct MovePlan {
  std::string database_name;
  std::vector<Login> logins;  // live ones with their verifiers
  bool restrict_connect = false;
};

// Steps 1 to 5. `stream` carries out step 3 (the host runs the programs).
// Returns the database's URL on the target.
std::string carry_out_move(const MovePlan& plan, ServerSession& source, ServerSession& target,
                           const std::function<void()>& stream,
                           const std::function<void(const std::string&)>& progress);

}  // namespace envdb::postgres
