// converge: what the logins of every postgres-driver database must look like
// on their server, computed from the catalog at the moment a worker acts, and
// the difference between that and what a server reports, as idempotent steps.
//
// The rule (one place): a credential's login may log in while the credential
// is `active`, or `rotating`, and its expires_at (if any) is still ahead, and
// its environment is `active` (or `provisioning`, so the login works the
// moment the environment becomes active). Otherwise the login is NOLOGIN and
// has no session. A live login has VALID UNTIL = expires_at ('infinity' when
// none). Nothing here talks to a server: the host's worker runs the
// statements (pg_ext/worker.cpp) and calls back for what needs a secret.
#pragma once
#include "core/cpp_only.hpp"

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/store.hpp"
#include "postgres/statements.hpp"

namespace envdb::converge {

// Whether the login of a credential may log in at `now_ms`.
bool login_live(const std::string& credential_status, const std::optional<std::string>& expires_at,
                const std::string& environment_status, int64_t now_ms);

// One credential's login as the catalog wants it now.
struct Desired {
  std::string credential_id;
  std::string database_id;
  std::string database_name;
  std::string scope;
  std::string name;  // postgres::login_name
  bool live = false;
  std::optional<std::string> valid_until;  // ISO; nullopt: no expiry
  // The database exists on its server (provisioned), so a live login that is
  // missing is created; before that, the create_database job creates them.
  bool may_create = false;
};

// The logins of one server (nullopt: the server envdb runs on).
struct ServerPlan {
  std::optional<std::string> host_id;
  std::vector<Desired> logins;
};

// Every credential of every postgres-driver database that is not dropped,
// grouped by server; only those of `database_id` when given. `creating`: the
// caller is that database's create_database job, which has just made the
// database, so its live logins may be created.
std::vector<ServerPlan> desired(Store& store, const std::optional<std::string>& database_id,
                                bool creating, int64_t now_ms);

// What a server reports about one login.
struct Actual {
  bool can_login = false;
  std::optional<int64_t> valid_until_ms;  // nullopt: no expiry ('infinity' or NULL)
  int64_t sessions = 0;
};

// One statement returning one row of one column: a JSON object mapping each
// existing login of `logins` to {"login", "until" (ms or null), "sessions"}.
std::string actual_sql(const std::vector<Desired>& logins);
// Parses that JSON (NULL or empty: no login exists). invalid_parameter when
// the text is not that shape.
std::map<std::string, Actual> parse_actual(const std::optional<std::string>& json);

enum class Step {
  create,        // live, missing: CREATE ROLE with its verifier (needs the token)
  enable,        // live, exists: LOGIN and VALID UNTIL as the catalog says
  disable,       // not live, can log in: NOLOGIN, then its sessions ended
  end_sessions,  // not live, NOLOGIN already, sessions still open
};
struct Action {
  Step step;
  Desired login;
};
// The steps that bring `actual` to `desired`; empty when they agree.
std::vector<Action> plan(const std::vector<Desired>& desired,
                         const std::map<std::string, Actual>& actual);

// A login to create, with its verifier, when its credential is still live
// now (re-read from the catalog; nullopt otherwise). Opens the token.
std::optional<postgres::Login> login_to_create(Host& host, const std::string& credential_id);

// Converges one server: reads its logins, plans, runs the steps. A create
// step asks `make_login` (a control-plane transaction around
// login_to_create). Returns the steps run.
using LoginMaker = std::function<std::optional<postgres::Login>(const Desired&)>;
std::vector<Action> apply(postgres::ServerSession& server, const ServerPlan& plan_of_server,
                          const LoginMaker& make_login);

}  // namespace envdb::converge
