// Derives an extension upgrade script (envdb--<old>--<new>.sql) from two
// install scripts: the frozen one of the old version (pg_ext/sql/) and the one
// generated for this version. Both are parsed into the same set of named
// objects (tables and their columns and constraints, indexes, triggers, views,
// functions, grants, policies, pg_extension_config_dump entries, comments) and
// compared; the script creates what is new, alters what changed and drops what
// is gone. A change it cannot express (a dropped or retyped column, a new
// column placed before an old one, a changed primary key, a statement it does
// not understand) is an error naming it: the build stops rather than ship an
// upgrade that leaves a different catalog than a fresh install.
#pragma once

#include <string>

namespace envdb::pg_upgrade {

std::string upgrade_script(const std::string& extension, const std::string& from_version,
                           const std::string& to_version, const std::string& old_script,
                           const std::string& new_script);

}  // namespace envdb::pg_upgrade
