// Identifiers: generated UUIDv7 ids, database names, and the validation of
// caller-supplied ids and slugs.
#pragma once
#include "core/cpp_only.hpp"

#include <string>

namespace envdb {

std::string new_uuid_v7();  // 8-4-4-4-12 lowercase text form
// `env-` + 26 lowercase base32 characters of a UUID's 128 bits: a valid Turso
// database name, Postgres database name and file name.
std::string database_name_for(const std::string& uuid_text);
// Every name database_name_for makes starts with this.
constexpr const char* kDatabaseNamePrefix = "env-";

bool is_valid_id(const std::string& id);      // ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$
bool is_valid_slug(const std::string& slug);  // ^[a-z0-9][a-z0-9-]{0,62}$
// Throw invalid_parameter naming `field` when the value does not match.
void require_id(const std::string& field, const std::string& id);
void require_slug(const std::string& field, const std::string& slug);

}  // namespace envdb
