// The login lookup a connection pooler's auth_query calls inside a Postgres
// environment database (docs/guides/pgbouncer.md), so the pooler's auth_user
// needs neither superuser nor a copy of every password:
//   login_verifier(login) -> the SCRAM-SHA-256 verifier of `login`, or NULL
//     (kDataPlane, Postgres only, executable by envdb_auth alone)
// Only a login envdb made for this very database answers: named
// "<database>_<a|w|r>_<26 base32>", allowed to log in and not expired, a
// member of exactly one of this database's scope roles, with no superuser,
// CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS attribute. Any other role
// (a superuser, another environment's login, an unrelated role, a revoked or
// expired login) is NULL, so the pooler refuses it without telling it apart.
#pragma once
#include "core/cpp_only.hpp"
#include "core/function.hpp"

#include <vector>

namespace envdb::login_lookup {

std::vector<api::Function> functions();

}  // namespace envdb::login_lookup
