// The postgres driver's statements: what envdb creates on a Postgres server
// for an environment database, as names and statement text, and the session
// interface a host implements to run them. Nothing here talks to a server.
//
// On the server, per environment database D (database_name, "env-<26>"):
//   D_owner      NOLOGIN, owns the database (no login is ever a member of it,
//                so no credential can drop or rename the database)
//   D_admin      NOLOGIN, owns schema public and what is created in it; DDL
//   D_readwrite  NOLOGIN, reads and writes every table of public, including
//                future ones (ALTER DEFAULT PRIVILEGES FOR ROLE D_admin)
//   D_readonly   NOLOGIN, reads every table of public
//   D_<s>_<c>    one LOGIN role per credential (s: a, w, r for the scope; c:
//                the credential id in base32), member of its scope role, whose
//                sessions run as the scope role (ALTER ROLE ... SET role), so
//                tables an admin login creates belong to D_admin. VALID UNTIL
//                is the credential's expires_at; the password is a
//                SCRAM-SHA-256 verifier of the token, computed here.
// CONNECT on D is revoked from PUBLIC and granted to the three scope roles.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "secrets/crypto.hpp"

namespace envdb::postgres {

// "name" with embedded quotes doubled: always quoted, so any name is safe
// (Postgres' quote_identifier quotes only when needed; the result is the same
// identifier).
std::string quote_identifier(std::string_view name);
// 'text' with embedded quotes doubled; E'...' with backslashes doubled when
// the text has a backslash (Postgres' quote_literal).
std::string quote_literal(std::string_view text);
// $tag$body$tag$ with a tag that does not occur in body.
std::string dollar_quote(std::string_view body);

struct Roles {
  std::string owner, admin, readwrite, readonly;
  const std::string& of_scope(const std::string& scope) const;
};
// invalid_parameter when database_name is not 1 to 40 bytes of [a-z0-9_-]
// (every name envdb generates is "env-" and 26 base32 characters).
Roles roles_for(const std::string& database_name);
// "<database_name>_<a|w|r>_<credential id in base32>", at most 63 bytes.
std::string login_name(const std::string& database_name, const std::string& scope,
                       const std::string& credential_id);

// postgresql://host:port/dbname (an IPv6 address in brackets).
std::string database_url(const std::string& host, int64_t port, const std::string& dbname);

// One credential as a server login.
struct Login {
  std::string credential_id;
  std::string scope;
  std::string name;                        // login_name(...)
  bool live = false;                       // active or rotating and not expired
  std::optional<std::string> valid_until;  // ISO; nullopt: no expiry
  std::string verifier;                    // SCRAM verifier; empty when not live
};

// Statements, each meant to run on its own (autocommit). Idempotent: running
// them again after a partial run converges on the same state. script() joins
// several into one string, which ServerSession::exec runs as one transaction
// (one commit and WAL flush instead of one per statement).
//   ensure_roles_sql: the four NOLOGIN roles, created when missing.
std::vector<std::string> ensure_roles_sql(const Roles& roles);
//   The statements as one script ("a;\nb;\n"), for one exec.
std::string script(const std::vector<std::string>& statements);
//   The owner of a database, or no row: SELECT owner FROM pg_database ...
std::string database_owner_sql(const std::string& database_name);
//   conflict when the database exists and is not this environment's (another
//   owner). True when it must be created.
bool must_create_database(const std::string& database_name,
                          const std::optional<std::string>& current_owner, const Roles& roles);
std::string create_database_sql(const std::string& database_name, const Roles& roles);
std::vector<std::string> database_grants_sql(const std::string& database_name, const Roles& roles);
//   A live login: created (with its verifier) when missing, else made LOGIN
//   with its VALID UNTIL; member of its scope role; sessions run as it.
std::string ensure_login_sql(const Login& login, const Roles& roles);
//   A login that must not log in any more: NOLOGIN when it exists.
std::string disable_login_sql(const std::string& login);
//   A live login that exists: LOGIN with its VALID UNTIL ('infinity' when
//   none); the password is left as it is.
std::string enable_login_sql(const std::string& login,
                             const std::optional<std::string>& valid_until);
//   Ends every session of a login (returns one row per signalled backend).
std::string terminate_sessions_sql(const std::string& login);
//   Inside the new database, one transaction: schema ownership and grants,
//   default privileges, CREATE EXTENSION envdb_data and
//   init_environment_schema with the environment's identity.
std::string in_database_sql(const Roles& roles, const std::string& environment_id,
                            const std::string& organization_id, const std::string& database_name);
//   DROP DATABASE ... WITH (FORCE), then the scope roles and every login.
std::vector<std::string> drop_database_sql(const std::string& database_name, const Roles& roles,
                                           const std::vector<std::string>& logins);

//   On the maintenance database: every other database PUBLIC may connect to
//   gets CONNECT granted to each existing role that is not an environment
//   role, then revoked from PUBLIC (restrict_server_connect).
std::string restrict_connect_sql(const std::string& database_name);
//   The other connectable databases of the server, as a JSON array of names.
std::string other_databases_sql(const std::string& database_name);
//   Run inside each of those: DROP OWNED BY every role whose name starts with
//   "<database_name>_" (nothing when there is none).
std::string drop_owned_sql(const std::string& database_name);
//   Drops every role left whose name starts with "<database_name>_".
std::string drop_leftover_roles_sql(const std::string& database_name);

// A registered database server (sys_database_host), with its password
// opened (never logged, never returned by a SQL function).
struct Server {
  std::string id;  // empty: the server envdb runs on
  std::string name;
  std::string host;
  int64_t port = 5432;
  std::string dbname;  // maintenance database
  std::string username;
  std::optional<crypto::SecretBytes> password;
};

// A connection to the Postgres server of a job, as the host provides it
// (pg_ext/worker.cpp: the local server from a background worker, or libpq).
// Every call runs on its own, outside any transaction of the caller; a
// failure throws envdb::Error with the server's message.
class ServerSession {
 public:
  virtual ~ServerSession() = default;
  // One statement (or a DO block) in its own transaction.
  virtual void exec(const std::string& sql) = 0;
  // The first column of the first row, or nullopt when there is no row.
  virtual std::optional<std::string> query_value(const std::string& sql) = 0;
  // A statement that cannot run inside a transaction block (CREATE DATABASE).
  virtual void exec_top_level(const std::string& sql) = 0;
  // A script run inside `database_name`, in one transaction.
  virtual void exec_in_database(const std::string& database_name, const std::string& sql) = 0;
  // postgresql://host:port/ of this server, for the database URL.
  virtual std::string url(const std::string& database_name) = 0;
  // exec_top_level of a CREATE DATABASE ... TEMPLATE `template_db` while
  // another session of the server runs copier.hpp's clear_template_sql every
  // 50 ms until the statement ends: a session of the template that connected
  // after its sessions were ended, before the statement locked it, would
  // otherwise make the statement wait 5 s and fail. The default runs the
  // statement alone.
  virtual void create_from_template(const std::string& sql, const std::string& template_db) {
    (void)template_db;
    exec_top_level(sql);
  }
};

// The database a postgres:// or postgresql:// URL names when it points at
// this server (no host, localhost, a loopback address or a socket directory,
// and no port or this server's port); nullopt otherwise. Without a path the
// database is `fallback`.
std::optional<std::string> local_database(const std::string& url, const std::string& fallback,
                                          const std::string& server_port);

}  // namespace envdb::postgres
