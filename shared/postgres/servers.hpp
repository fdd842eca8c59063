// What check() compares on the Postgres servers envdb manages: the state the
// catalog expects of a server (its environment databases, the scope roles and
// one login per credential) against the facts observed there (databases and
// roles named env-..., with LOGIN, VALID UNTIL and memberships). The host only
// gathers facts (one query, kFactsSql) and runs the repair statements; the
// judgement is here and unit-tested (test/unit/servers_test.cpp).
//
//   kind                   what                                            repair statements
//   server_unreachable     a registered host envdb cannot connect to        none (report)
//   database_missing       a provisioned database, not dropped, missing     none (report)
//   database_not_dropped   a dropped database that still exists             none (report)
//   database_unregistered  registered host: an env-... database no row of   none (report; never
//                          this catalog names                               drops data)
//   login_missing          a login that should work and does not exist      none here: check
//                                                                           queues a create_login
//                                                                           job
//   login_mismatch         a login (or scope role) whose LOGIN, VALID       NOLOGIN + its sessions
//                          UNTIL or memberships disagree with the catalog   ended, or LOGIN VALID
//                                                                           UNTIL; memberships
//                                                                           fixed
//   copy_leftover          "<name>_copy" or "<name>_old" beside a database   none (report)
//                          (postgres/copier) no job is working on
//   role_leftover          a role of a dropped database, a role of a        its sessions ended,
//   then
//                          database no credential or scope explains, or     DROP ROLE
//                          (registered host) a role of an unknown database
//
// A database with a job pending or running is skipped: the worker is about to
// change it. On the local server (which other control planes may share, each
// in its own database) only names of this catalog's databases are judged; a
// registered host is envdb's alone, so every env-... name on it is.
#pragma once
#include "core/cpp_only.hpp"

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/host.hpp"
#include "core/store.hpp"
#include "postgres/statements.hpp"

namespace envdb::servers {

// One query, answering one JSON text value:
// {"databases": [name...], "roles": [{"name", "login", "validUntil" (epoch ms or null),
//  "memberOf": [role...]}]}, for the names starting with "env-".
extern const char* const kFactsSql;

struct ObservedRole {
  bool login = false;
  std::optional<int64_t> valid_until_ms;  // nullopt: no limit (NULL or infinity)
  std::set<std::string> member_of;
};

struct Observed {
  std::set<std::string> databases;
  std::map<std::string, ObservedRole> roles;
};

// invalid_parameter when the text is not the shape kFactsSql answers.
Observed parse_facts(const std::string& json_text);

// Whether a credential's login must be able to log in is converge::login_live,
// the one rule the worker converges on too.

struct ExpectedLogin {
  std::string credential_id;
  std::string name;
  std::string scope_role;
  bool live = false;
  std::optional<int64_t> valid_until_ms;  // when live
};

struct ExpectedDatabase {
  std::string database_id, database_name, environment_id, organization_id;
  bool dropped = false;
  bool in_flight = false;  // a job of it is pending or running: not judged
  postgres::Roles roles;
  std::vector<ExpectedLogin> logins;
};

struct Expected {
  bool dedicated = false;  // a registered host: every env-... name on it is this catalog's
  std::vector<ExpectedDatabase> databases;
};

// What the catalog says of the postgres databases placed on `host_id`
// (nullopt: the local server) that were provisioned or dropped. For the local
// server only the databases `here` accepts are judged (their database_url
// names this server: a database an external worker put elsewhere is not).
Expected expected_for(
    Store& store, const std::optional<std::string>& host_id, int64_t now_ms,
    const std::function<bool(const std::string& database_name,
                             const std::optional<std::string>& database_url)>& here = nullptr);

// The database a postgres URL names (its last path segment, without a query),
// or "" when it names none.
std::string url_database(const std::string& database_url);

struct Finding {
  std::string kind;
  std::string table;  // sys_environment_database, sys_database_credential or sys_database_host
  std::string id;     // the row's id, or the role's name for role_leftover
  std::string detail;
  std::optional<std::string> database_id, environment_id, organization_id;
  std::string role;                     // the role concerned, if any
  std::vector<std::string> statements;  // the repair, run in order; empty: report only
  std::string action;                   // the repair in words, for the audit event
  std::string verify_sql;  // after the repair: a row means it did not take (a role still there)
};

// The differences between what a server should hold and what it holds, in a
// stable order (databases by name, then roles by name).
std::vector<Finding> compare(const Expected& expected, const Observed& observed,
                             const std::string& server_label);

// A registered host with its password opened (key_unavailable or
// decrypt_failed when it cannot be).
postgres::Server load_server(Host& host, const Row& host_row);

}  // namespace envdb::servers
