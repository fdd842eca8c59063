// The one definition of every envdb table. Both dialects' DDL is generated
// from it: the SQLite host runs it from init(), the Postgres install script is
// generated from it at build time. There is no second copy of the schema.
#pragma once
#include "core/cpp_only.hpp"

#include <string>
#include <vector>

#include "core/store.hpp"

namespace envdb::catalog {

enum class Type { id, text, integer, boolean, timestamp, json, blob };
enum class Default { none, now, false_, true_, zero, empty_object };

struct Column {
  std::string name;
  Type type;
  bool not_null = false;
  Default fallback = Default::none;
  std::vector<std::string> one_of;  // enum values -> CHECK (name IN (...))
  std::string check_postgres;       // an extra rule, written once per dialect
  std::string check_sqlite;
  bool immutable = false;  // a trigger refuses any change after insert
  bool set_once = false;   // immutable once not NULL: NULL may become a value once
  bool secret = false;     // never granted to envdb_reader
};

struct ForeignKey {
  std::vector<std::string> columns;
  std::string table;
  std::vector<std::string> ref_columns;
};

struct Index {
  std::string name;
  std::vector<std::string> columns;
  bool unique = false;
  std::string where;  // partial index predicate (same text in both dialects)
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::vector<std::string> primary_key;
  std::vector<std::vector<std::string>> uniques;
  std::vector<ForeignKey> foreign_keys;
  std::vector<Index> indexes;
  bool append_only = false;  // audit: updates and deletes refused
  // An append-only table's one exception: an UPDATE of the rows matching
  // this condition on OLD that changes only `append_only_mutable` (the
  // coalesced reveal events' count). Empty: no exception.
  std::string append_only_update_when;
  std::string append_only_mutable;
  // A column numbered in commit order (the audit trail's event cursor): NULL
  // at insert, set once as the inserting transaction commits (Postgres: a
  // deferred trigger under a lock, from a sequence; SQLite: at insert, where
  // writers are serialized), and allowed as the append-only table's second
  // exception. Rows present when an upgrade adds the column are numbered in
  // the order of `numbered_order`.
  std::string numbered_column;
  std::string numbered_order;
  bool single_row = false;  // at most one row (an identity stamp)
  // Code word of the errors the rule triggers raise (immutable and set-once
  // columns, append-only, single row).
  Code rule_code = Code::invalid_parameter;
  // A data-plane table (lives in environment databases). In Postgres its rule
  // triggers call envdb.data_plane_guard(), which data_plane_ddl() defines,
  // because an environment database has no envdb.reject_change().
  bool data_plane = false;
};

const std::vector<Table>& control_plane();
const Table& table(const std::string& name);

// DDL for one table: table, indexes, and the triggers that enforce what a
// plain constraint cannot (immutability, append-only; in SQLite also foreign
// keys, which SQLite enforces only when a connection opts in).
std::string table_ddl(const Table& table, Dialect dialect);
std::string views_ddl(Dialect dialect);
// Everything, in dependency order. Postgres: for the install script (schema
// envdb, created by CREATE EXTENSION). SQLite: idempotent (IF NOT EXISTS).
std::string control_plane_ddl(Dialect dialect);

// The data-plane tables every environment database holds (docs/design.md#the-data-plane):
// sys_schema_migration, sys_environment_info, sys_package_installation.
// This is the schema of data-plane version 1, and migration 1 is generated
// from it (dataplane.cpp). Its checksum is recorded in every environment
// database, so a shipped definition never changes: a later version is a new
// migration (see dataplane::migrations()).
const std::vector<Table>& data_plane();
// The data-plane DDL for one dialect. Postgres: schema envdb (the schema of
// CREATE EXTENSION envdb_data), jsonb, timestamptz, and first the trigger
// function envdb.data_plane_guard(); SQLite: the main database, IF NOT EXISTS.
std::string data_plane_ddl(Dialect dialect);

// Qualified name as the core's SQL writes it: envdb.<table>.
inline std::string qualified(const std::string& name) { return "envdb." + name; }

}  // namespace envdb::catalog
