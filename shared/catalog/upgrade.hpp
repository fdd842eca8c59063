// The control-plane catalog's version in a SQLite database: upgrading an
// older catalog in place (init), and refusing calls on a missing, older or
// newer one. Postgres upgrades through generated ALTER EXTENSION scripts
// (pg_ext/upgrade_sql.cpp) instead.
#pragma once
#include "core/cpp_only.hpp"

#include <cstdint>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/store.hpp"

namespace envdb::catalog {

// SQLite: rebuilds the tables of an older catalog to the current definition,
// every row kept; refuses a catalog newer than this build. Returns the
// version found (0: none).
int64_t upgrade_sqlite_catalog(Host& host, Store& store);

// SQLite: whether a call of fn needs this database's control-plane catalog
// (everything but version, build_info, init, the per-connection keyring
// functions and the data-plane functions, which run in environment databases).
bool needs_catalog(const api::Function& fn);

// SQLite: refuses a call on a database whose control-plane catalog is missing
// (not_found) or was made by an earlier envdb (schema_mismatch, until
// envdb_init() upgrades it in place). A catalog version never goes down, so a
// host may remember per connection that this passed once.
void require_current_catalog(Store& store);

}  // namespace envdb::catalog
