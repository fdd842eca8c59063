#include "catalog/records.hpp"

#include "catalog/row_rules.hpp"
#include "core/errors.hpp"
#include "core/json_bounds.hpp"

namespace envdb::records {

const char* const kOrganizationColumns =
    "id, slug, name, metadata, created_at, updated_at, deprovisioned_at";
const char* const kEnvironmentColumns =
    "id, organization_id, slug, name, description, env_type, region, is_default, is_protected, "
    "status, dlp_policy_id, created_by, metadata, created_at, updated_at, archived_at, expires_at, "
    "trial_extensions";
const char* const kDatabaseColumns =
    "id, environment_id, database_name, database_url, driver, region, storage_limit_mb, "
    "provisioned_at, last_accessed_at, metadata, created_at, updated_at, dropped_at, usage_bytes, "
    "usage_measured_at, storage_read_only";
const char* const kCredentialColumns =
    "id, database_id, kms_key_id, scope, status, username, issued_at, expires_at, revoked_at, "
    "rotated_from";
const char* const kMemberColumns =
    "id, environment_id, organization_id, user_id, role, created_at, updated_at";
const char* const kJobColumns =
    "id, environment_id, database_id, kind, driver, status, attempts, last_error, worker, payload, "
    "created_at, updated_at, started_at, finished_at";

namespace {

Json text(const Row& r, const char* c) { return json_text(r.opt_text(c)); }

Json object(const Row& r, const char* c) {
  auto t = r.opt_text(c);
  if (!t) return Json::object();
  // Read back, it is input like any other: a planted value too deep to
  // serialise is refused here (schema_mismatch), never passed on.
  std::string what = c;
  for (const std::string& n : r.names())
    if (n == "id") what += " of row " + quote_value(r.text("id"));
  auto j = json_bounds::parse_stored(*t, what);
  return j ? *j : Json::object();
}

Json integer(const Row& r, const char* c) {
  return is_null(r[c]) ? Json(nullptr) : Json(r.integer(c));
}

Row load(Store& store, const std::string& columns, const std::string& table,
         const std::string& what, const std::string& field, const std::string& id) {
  auto row =
      query_one(store, "SELECT " + columns + " FROM envdb." + table + " WHERE id = $1", {id});
  if (!row) fail(Code::not_found, field + " " + quote_value(id) + " names no " + what);
  return std::move(*row);
}

}  // namespace

Json organization_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"slug", text(r, "slug")},
              {"name", text(r, "name")},
              {"metadata", object(r, "metadata")},
              {"createdAt", text(r, "created_at")},
              {"updatedAt", text(r, "updated_at")},
              {"deprovisionedAt", text(r, "deprovisioned_at")}};
}

Json environment_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"organizationId", text(r, "organization_id")},
              {"slug", text(r, "slug")},
              {"name", text(r, "name")},
              {"description", text(r, "description")},
              {"envType", text(r, "env_type")},
              {"region", text(r, "region")},
              {"isDefault", r.boolean("is_default")},
              {"isProtected", r.boolean("is_protected")},
              {"status", text(r, "status")},
              {"dlpPolicyId", text(r, "dlp_policy_id")},
              {"createdBy", text(r, "created_by")},
              {"metadata", object(r, "metadata")},
              {"createdAt", text(r, "created_at")},
              {"updatedAt", text(r, "updated_at")},
              {"archivedAt", text(r, "archived_at")},
              {"expiresAt", text(r, "expires_at")},
              {"trialExtensions", integer(r, "trial_extensions")}};
}

Json database_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"environmentId", text(r, "environment_id")},
              {"databaseName", text(r, "database_name")},
              {"databaseUrl", text(r, "database_url")},
              {"driver", text(r, "driver")},
              {"region", text(r, "region")},
              {"storageLimitMb", integer(r, "storage_limit_mb")},
              {"provisionedAt", text(r, "provisioned_at")},
              {"lastAccessedAt", text(r, "last_accessed_at")},
              {"metadata", object(r, "metadata")},
              {"createdAt", text(r, "created_at")},
              {"updatedAt", text(r, "updated_at")},
              {"droppedAt", text(r, "dropped_at")},
              {"usageBytes", integer(r, "usage_bytes")},
              {"usageMeasuredAt", text(r, "usage_measured_at")},
              {"storageReadOnly", r.boolean("storage_read_only")}};
}

Json credential_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"databaseId", text(r, "database_id")},
              {"kmsKeyId", text(r, "kms_key_id")},
              {"scope", text(r, "scope")},
              {"status", text(r, "status")},
              {"username", text(r, "username")},
              {"issuedAt", text(r, "issued_at")},
              {"expiresAt", text(r, "expires_at")},
              {"revokedAt", text(r, "revoked_at")},
              {"rotatedFrom", text(r, "rotated_from")}};
}

Json member_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"environmentId", text(r, "environment_id")},
              {"organizationId", text(r, "organization_id")},
              {"userId", text(r, "user_id")},
              {"role", text(r, "role")},
              {"createdAt", text(r, "created_at")},
              {"updatedAt", text(r, "updated_at")}};
}

Json job_json(const Row& r) {
  return Json{{"id", text(r, "id")},
              {"kind", text(r, "kind")},
              {"driver", text(r, "driver")},
              {"status", text(r, "status")},
              {"environmentId", text(r, "environment_id")},
              {"databaseId", text(r, "database_id")},
              {"attempts", integer(r, "attempts")},
              {"lastError", text(r, "last_error")},
              {"worker", text(r, "worker")},
              {"payload", object(r, "payload")},
              {"createdAt", text(r, "created_at")},
              {"updatedAt", text(r, "updated_at")},
              {"startedAt", text(r, "started_at")},
              {"finishedAt", text(r, "finished_at")}};
}

Row load_organization(Store& s, const std::string& field, const std::string& id) {
  return load(s, kOrganizationColumns, "sys_organization", "organization", field, id);
}
Row load_environment(Store& s, const std::string& field, const std::string& id) {
  return load(s, kEnvironmentColumns, "sys_environment", "environment", field, id);
}
Row load_database(Store& s, const std::string& field, const std::string& id) {
  Row row =
      load(s, kDatabaseColumns, "sys_environment_database", "environment database", field, id);
  row_rules::require_database(row);
  return row;
}
Row load_credential(Store& s, const std::string& field, const std::string& id) {
  return load(s, kCredentialColumns, "sys_database_credential", "credential", field, id);
}

std::optional<Row> database_of_environment(Store& s, const std::string& environment_id) {
  auto row = query_one(s,
                       std::string("SELECT ") + kDatabaseColumns +
                           " FROM envdb.sys_environment_database WHERE environment_id = $1",
                       {environment_id});
  if (row) row_rules::require_database(*row);
  return row;
}

}  // namespace envdb::records
