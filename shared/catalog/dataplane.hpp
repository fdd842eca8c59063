// The data plane: the envdb system tables every environment database holds
// (docs/design.md#schema-initializer). Versioned migrations, each recorded with a
// checksum in sys_schema_migration, and an identity stamp in
// sys_environment_info that lets a router check it reached the database it
// meant to. No environment_id column anywhere else: the environment is the
// database.
//
// The tables are defined once, in catalog::data_plane(); migration 1 is
// generated from that definition for each dialect (Postgres: schema envdb,
// jsonb, timestamptz; SQLite: the main database). Later versions are further
// entries of migrations(), each with its SQL for both dialects. A migration
// that has shipped never changes: its checksum is recorded in every
// environment database, and a different text is reported as drift.
//
// initialize() runs on the environment database's own store, never on the
// control plane's. The SQL functions:
//   init_environment_schema(environment_id [, organization_id, database_name])
//     -> {environmentId, schemaVersion, applied: [versions]}      (kDataPlane)
//   environment_schema_version() -> integer or NULL                (kDataPlane)
//   upgrade_environment_schemas() -> [{environmentId, databaseName, path,
//     fromVersion, toVersion, applied, error}]     (SQLite control plane only)
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::dataplane {

struct Migration {
  int version;
  std::string description;
  std::string postgres_sql;  // DDL, envdb.-qualified names
  std::string sqlite_sql;    // DDL, unqualified names (the main database)
  const std::string& sql(Dialect dialect) const {
    return dialect == Dialect::postgres ? postgres_sql : sqlite_sql;
  }
};

// This build's migrations: in version order, without gaps, starting at 1.
const std::vector<Migration>& migrations();
int current_version();
// SHA-256 (lowercase hex) of the migration's SQL text for `dialect`: what
// sys_schema_migration records in a database of that dialect.
std::string checksum(const Migration& migration, Dialect dialect = Dialect::sqlite);

// Creates or upgrades the data-plane tables in `store`: applies every
// migration the database has not recorded, in order, inside one Atomic,
// records each with its checksum, and stamps sys_environment_info (inserted
// once; schema_version updated). Idempotent.
//
// Identity: organization_id and database_name may be unknown (nullopt). When
// not given, a stamp's values are kept; on a fresh database they are stored as
// NULL and may be recorded once by a later call that gives them. A given value
// that differs from the stamp's is schema_mismatch, and so is another
// environment_id. Also schema_mismatch: a recorded checksum that differs from
// the migration's (drift), a recorded version newer than the list knows, or
// recorded versions with a gap. Nothing is written when it fails.
//
// Returns {environmentId, schemaVersion, applied: [versions applied now]}.
Json initialize(Store& store, const std::string& environment_id,
                const std::optional<std::string>& organization_id,
                const std::optional<std::string>& database_name);
// The same with another migration list (tests add a version 2). internal
// when the list is empty, out of order or has a gap.
Json initialize(Store& store, const std::string& environment_id,
                const std::optional<std::string>& organization_id,
                const std::optional<std::string>& database_name,
                const std::vector<Migration>& list);

// The migrations alone, without an identity stamp: what a template database
// holds (dataplane_template). Returns the versions applied now.
Json migrate_unstamped(Store& store);

// The highest applied version, or nullopt when the database has none (also
// when it has no data-plane tables at all).
std::optional<int64_t> schema_version(Store& store);

// upgrade_environment_schemas() with a given migration list: every active
// sqlite-driver environment of the control plane in `host` (ordered by
// creation), its file (database_url "file:<path>") opened with
// host.open_database_file and initialized with the environment's identity.
// One entry per environment {environmentId, databaseName, path, fromVersion,
// toVersion, applied, error}; a failure (missing file, foreign stamp, drift,
// newer version) is the entry's error, and that file is left as it was.
// Each environment whose schema moved gets an audit event
// (environment.upgrade_schema) in the control plane.
Json upgrade_environments(Host& host, const std::vector<Migration>& list);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::dataplane
