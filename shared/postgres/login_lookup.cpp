#include "postgres/login_lookup.hpp"

#include <optional>
#include <string>

#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/store.hpp"

namespace envdb::login_lookup {

namespace {

// pg_authid is readable by superusers only: the function runs as the owner of
// extension envdb_data, which the worker installs as the bootstrap superuser.
// The name must be this database's login pattern and the role a member of
// exactly one of its scope roles (D_admin, D_readwrite, D_readonly) and of
// nothing else, so a role that merely borrows the name pattern does not pass.
const char* const kLookup =
    "SELECT a.rolpassword AS verifier FROM pg_catalog.pg_authid a "
    "WHERE a.rolname = $1 "
    "AND pg_catalog.current_database() ~ '^[a-z0-9_-]{1,40}$' "
    "AND pg_catalog.starts_with(a.rolname, pg_catalog.current_database() || '_') "
    "AND pg_catalog.substr(a.rolname, pg_catalog.length(pg_catalog.current_database()) + 1) "
    "    ~ '^_[awr]_[a-z2-7]{26}$' "
    "AND a.rolcanlogin AND NOT a.rolsuper AND NOT a.rolcreaterole AND NOT a.rolcreatedb "
    "AND NOT a.rolreplication AND NOT a.rolbypassrls "
    "AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > pg_catalog.now()) "
    "AND pg_catalog.starts_with(a.rolpassword, 'SCRAM-SHA-256$') "
    "AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_auth_members m WHERE m.member = a.oid) = 1 "
    "AND EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r "
    "    ON r.oid = m.roleid WHERE m.member = a.oid AND r.rolname IN ("
    "      pg_catalog.current_database() || '_admin', pg_catalog.current_database() || "
    "'_readwrite', "
    "      pg_catalog.current_database() || '_readonly')) "
    "AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = 'sys_environment_info' "
    "    AND c.relnamespace = 'envdb'::pg_catalog.regnamespace)";

Value login_verifier(api::Call& c) {
  // 63 bytes: Postgres' longest identifier; a longer name is no role at all.
  const std::string login = c.text("login", 63);
  auto row = query_one(c.store, kLookup, {Value(login)});
  if (!row) return null_value();
  auto verifier = row->opt_text("verifier");
  return verifier ? Value(*verifier) : null_value();
}

}  // namespace

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"login_verifier",
       {{"login", Type::text, nullptr}},
       Type::text,
       login_verifier,
       kDataPlane | kPostgresOnly,
       kAuth,
       "the SCRAM-SHA-256 verifier of one of this environment database's live envdb logins, for "
       "a connection pooler's auth_query; NULL for any other role"},
  };
}

}  // namespace envdb::login_lookup
