// Catalog rows are input too (docs/design.md#two-principles): a control file can be
// edited with plain SQL behind envdb's back, so what envdb derives from a
// row (a file path, a database name handed to a worker, the identity a
// credential is bound to) is validated again when the row is read back for
// action. A row that fails is refused with schema_mismatch naming the field,
// is never acted on, and check() reports it (kind invalid_row).
//
// sys_environment_database.database_name: `env-` + 26 characters a-z2-7 (what
// database_name_for makes; also a CHECK constraint in the catalog). A turso
// database may instead keep the name a v4 installation gave it
// (migrate_legacy_tenant_databases): 1 to 255 letters, digits, '.', '_', '-',
// starting with a letter or digit. Names are never paths.
//
// A sqlite database's file is always <sqlite_data_dir>/<database_name>.db,
// with sqlite_data_dir canonicalised (symlinks resolved). Its database_url is
// NULL or "file:" + that same file; a URL naming any other file, or a file
// that is a symlink (which could lead out of the directory), is refused.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/host.hpp"
#include "core/store.hpp"

namespace envdb::row_rules {

bool is_generated_database_name(const std::string& name);
bool is_legacy_database_name(const std::string& name);

// What is wrong with a database row's identity, without looking at the file
// system: the name's shape for its driver; for sqlite, a database_url that is
// not "file:" + an absolute path ending in /<database_name>.db. nullopt when
// nothing is.
std::optional<std::string> database_problem(const std::string& driver, const std::string& name,
                                            const std::optional<std::string>& url);

// schema_mismatch naming the database id and the field when database_problem
// finds something. `row` carries id, driver, database_name, database_url.
void require_database(const Row& row);
void require_database(const std::string& database_id, const std::string& driver,
                      const std::string& name, const std::optional<std::string>& url);

// The file of a sqlite-driver database: <canonical sqlite_data_dir>/<name>.db.
// schema_mismatch (naming database_name or database_url) when the name is not
// envdb's, when a database_url names another file, or when the file (or one
// of SQLite's -journal, -wal, -shm files beside it) is a symlink. The
// directory need not exist yet.
std::string sqlite_file(Host& host, const std::string& database_name,
                        const std::optional<std::string>& database_url);

}  // namespace envdb::row_rules
