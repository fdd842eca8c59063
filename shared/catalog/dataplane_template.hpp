// A sqlite-driver environment database from a template image instead of DDL.
//
// The first sqlite-driver environment a process provisions builds the image
// in its own temporary file: the data-plane migrations run there (the same
// initializer as every other database, without an identity stamp), and the
// closed file's bytes are kept in memory with a fingerprint of its schema
// (every sqlite_master entry, the migration ledger, no stamp). Each later
// environment's temporary file is those bytes (created O_EXCL). Then, in one
// transaction on the file: the fingerprint is compared with the image's, the
// identity is stamped through dataplane::initialize() (which checks the
// ledger's versions and checksums as on any database), and the ledger's
// applied_at is set to the stamp's time, so the ledger says what this database
// holds and since when. Any failure there removes the file and drops the
// image, and the caller builds that database by DDL. Both the scratch file and
// each temporary file are opened through open_unpublished (journal in memory):
// the stamp's commit is the file's one sync.
//
// Nothing is read from a file the process did not just write itself, so no
// file in the data directory is ever trusted as a template, and no file other
// than the environment's own temporary one is written.
#pragma once
#include "core/cpp_only.hpp"

#include <memory>
#include <optional>
#include <string>

#include "core/host.hpp"

namespace envdb::dataplane_template {

// Writes a stamped environment database at `path`, which must not exist.
// False when it did not (the file is not there; the caller runs
// dataplane::initialize on a fresh file, which reports any real problem).
bool create(Host& host, const std::string& path, const std::string& environment_id,
            const std::optional<std::string>& organization_id,
            const std::optional<std::string>& database_name);

// Opens a database file that is not in place yet (a temporary name, renamed
// once complete) with its rollback journal in memory: no journal file, and
// one sync per commit instead of three plus the directory's.
std::unique_ptr<Store> open_unpublished(Host& host, const std::string& path);

// The schema of a SQLite environment database as text: sqlite_master's
// entries and the ledger's versions and checksums (tests compare the two
// paths with it).
std::string fingerprint(Store& store);

// Tests: forget the image, change the first byte of `text` in it (an image
// that no longer matches its fingerprint; false when not found or no image),
// and whether one is held.
void forget();
bool damage_for_test(const std::string& text);
bool held();

}  // namespace envdb::dataplane_template
