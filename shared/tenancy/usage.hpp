// Storage usage and limits. Each environment database's size is measured
// (sqlite: its file plus its -wal file; postgres: pg_database_size on its
// server; turso: reported by the external worker), the latest figure kept on
// its row and the day's in sys_environment_usage (metering). A database at or
// over its storage_limit_mb is decided read-only here, in the core, and
// writable again once under; the decision is audited. The engines carry it
// out where they can: Postgres through the worker, which withdraws (and
// restores) the write privileges of the readwrite and admin scope roles until
// what the server carries matches the decision (storage_read_only_applied);
// SQLite through resolve_environment's maxPageCount, which the router applies
// with PRAGMA max_page_count.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>
#include <vector>

#include "core/function.hpp"
#include "core/host.hpp"
#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::usage {

constexpr int64_t kMegabyte = 1048576;
// The page size of the sqlite driver's files (SQLite's default; envdb never
// changes it), which maxPageCount counts in.
constexpr int64_t kSqlitePageSize = 4096;

// resolve_environment's maxPageCount: the sqlite driver's limit in pages;
// nullopt for another driver or no limit.
std::optional<int64_t> max_page_count(const std::string& driver,
                                      const std::optional<int64_t>& storage_limit_mb);

// One measurement of a database: the latest figure on its row, the day's row
// of sys_environment_usage, and the read-only decision again.
void record(Host& host, const std::string& database_id, int64_t bytes);

// Measures every database whose measurement is due (usage_interval_seconds
// since the last; 0: never on schedule) that this host can measure itself:
// sqlite files in SQLite, databases of the local server in Postgres. Returns
// how many it measured.
int64_t measure_due(Host& host);

// Every database's decision brought up to date with its limit and latest
// usage: {readOnly: [database ids that became read-only], writable: [...]}.
Json decide_all(Host& host);

// The Postgres worker's part.
struct Hosted {
  std::string database_id;
  std::string database_name;
  std::optional<std::string> host_id;  // nullopt: the local server
  bool read_only = false;              // write_access_pending: what to apply
};
// postgres databases on registered hosts whose measurement is due.
std::vector<Hosted> due_on_hosts(Host& host);
// The size of a database, run on its server (one row, or none when it does
// not exist).
std::string size_sql(const std::string& database_name);
// postgres databases whose server does not yet carry the decision.
std::vector<Hosted> write_access_pending(Store& store);
// Run inside the database: the write privileges of the readwrite and admin
// scope roles withdrawn (read_only) or granted back. Idempotent.
std::string write_access_sql(const std::string& database_name, bool read_only);
// The server now carries `read_only` for this database.
void mark_applied(Store& store, const std::string& database_id, bool read_only);

// This module's rows of the SQL function table.
std::vector<api::Function> functions();

}  // namespace envdb::usage
