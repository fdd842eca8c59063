// Catalog rows as the contract's JSON objects (camelCase keys, ISO
// timestamps), and the column lists that load them. One place, so every
// function that returns an environment returns the same shape.
#pragma once
#include "core/cpp_only.hpp"

#include <optional>
#include <string>

#include "core/json.hpp"
#include "core/store.hpp"

namespace envdb::records {

extern const char* const kOrganizationColumns;
extern const char* const kEnvironmentColumns;
extern const char* const kDatabaseColumns;
extern const char* const kCredentialColumns;  // everything but token_cipher
extern const char* const kMemberColumns;
extern const char* const kJobColumns;

Json organization_json(const Row& row);
Json environment_json(const Row& row);
Json database_json(const Row& row);
Json credential_json(const Row& row);
Json member_json(const Row& row);
Json job_json(const Row& row);

// Loads by id; not_found (naming `field` and the id) when absent. A database
// row is validated as it is read (row_rules::require_database:
// schema_mismatch for a database_name or database_url envdb never writes).
Row load_organization(Store& store, const std::string& field, const std::string& id);
Row load_environment(Store& store, const std::string& field, const std::string& id);
std::optional<Row> database_of_environment(Store& store, const std::string& environment_id);
Row load_database(Store& store, const std::string& field, const std::string& id);
Row load_credential(Store& store, const std::string& field, const std::string& id);

}  // namespace envdb::records
