// A sqlite-driver environment database from a template image instead of DDL.
//
// The first sqlite-driver environment a process provisions builds the image:
// the data-plane migrations run on a scratch file in the data directory (the
// same initializer as every other database, without an identity stamp), and
// the closed file's bytes are kept in memory with a fingerprint of its schema
// (every sqlite_master entry and the migration ledger). Each later environment
// is those bytes written to its temporary file, then the identity stamped
// through dataplane::initialize() (which checks the ledger's versions and
// checksums as it would on any database) and the ledger's applied_at set to
// the stamp's time: the ledger says what this database holds and since when.
// Before that commit the copy's fingerprint is compared with the image's; a
// mismatch drops the image, and the caller builds this database by DDL.
//
// Nothing is read from a file the process did not just write itself, so no
// file in the data directory is trusted as a template.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/host.hpp"

namespace envdb::dataplane_template {

// Writes a stamped environment database at `path` (which must not exist) in
// `directory`. False when no image could be used (the caller runs
// dataplane::initialize on a fresh file); errors of the stamp itself throw.
bool create(Host& host, const std::string& directory, const std::string& path,
            const std::string& environment_id, const std::optional<std::string>& organization_id,
            const std::optional<std::string>& database_name);

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
