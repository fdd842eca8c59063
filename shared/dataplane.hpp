// The data plane: the envdb system tables every environment database holds
// (DESIGN "Schema initializer"). Versioned migrations, each recorded with a
// checksum in sys_schema_migration, and an identity stamp in
// sys_environment_info that lets a router check it reached the database it
// meant to. No environment_id column anywhere else: the environment is the
// database.
//
// This runs on the environment database's own store, never on the control
// plane's. The table definitions live in one place (the migration list in
// dataplane.cpp), written in SQLite form for now; a Postgres variant is a
// second text per migration.
#pragma once
#include "cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "json.hpp"
#include "store.hpp"

namespace envdb::dataplane {

struct Migration {
  int version;
  const char* description;
  const char* sqlite_sql;  // DDL, unqualified names, idempotent (IF NOT EXISTS)
};

// In version order, without gaps, starting at 1.
const std::vector<Migration>& migrations();
int current_version();
// SHA-256 (hex) of the migration's SQL text: what sys_schema_migration records.
std::string checksum(const Migration& migration);

// Creates or upgrades the data-plane tables in `store`, records each applied
// migration with its checksum, and stamps sys_environment_info. Idempotent.
// schema_mismatch when the database is stamped for another environment (or
// organization or database name), when a recorded checksum differs from this
// build's, or when the database is at a version this build does not know.
// Returns {environmentId, schemaVersion, applied: [versions applied now]}.
Json initialize(Store& store, const std::string& environment_id,
                const std::string& organization_id, const std::string& database_name);

// The highest applied version, or nullopt when the database has none.
std::optional<int64_t> schema_version(Store& store);

}  // namespace envdb::dataplane
