#include "catalog/schema.hpp"

#include <sstream>

#include "core/errors.hpp"

namespace envdb::catalog {

namespace {

using T = Type;
using D = Default;

const char* kSlugPg = "slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'";
const char* kSlugSqlite =
    "length(slug) BETWEEN 1 AND 63 AND slug GLOB '[a-z0-9]*' AND slug NOT GLOB '*[^a-z0-9-]*'";

Column col(std::string name, Type type, bool not_null = false, Default fallback = Default::none) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  c.not_null = not_null;
  c.fallback = fallback;
  return c;
}

Column enum_col(std::string name, std::vector<std::string> values, bool not_null = true) {
  Column c = col(std::move(name), T::text, not_null);
  c.one_of = std::move(values);
  return c;
}

Column slug_col() {
  Column c = col("slug", T::text, true);
  c.check_postgres = kSlugPg;
  c.check_sqlite = kSlugSqlite;
  return c;
}

std::vector<Table> build() {
  std::vector<Table> t;

  t.push_back({"sys_config",
               {col("key", T::text, true), col("value", T::text),
                col("updated_at", T::timestamp, true, D::now)},
               {"key"},
               {},
               {},
               {}});

  t.push_back({"sys_organization",
               {col("id", T::id, true), slug_col(), col("name", T::text, true),
                col("metadata", T::json, true, D::empty_object),
                col("created_at", T::timestamp, true, D::now),
                col("updated_at", T::timestamp, true, D::now),
                // When deprovision_organization ran; its slug is then the
                // tombstone deprovisioned-<id hex>, freeing the old one.
                col("deprovisioned_at", T::timestamp)},
               {"id"},
               {{"slug"}},
               {},
               {}});

  t.push_back({"sys_environment",
               {col("id", T::id, true), col("organization_id", T::id, true), slug_col(),
                col("name", T::text, true), col("description", T::text),
                enum_col("env_type", {"default", "sandbox", "development", "production", "trial"}),
                col("region", T::text, true), col("is_default", T::boolean, true, D::false_),
                col("is_protected", T::boolean, true, D::false_),
                enum_col("status", {"provisioning", "active", "suspended", "archived", "failed",
                                    "maintenance"}),
                col("dlp_policy_id", T::text), col("created_by", T::text),
                col("metadata", T::json, true, D::empty_object),
                col("created_at", T::timestamp, true, D::now),
                col("updated_at", T::timestamp, true, D::now),
                // When archive_environment ran (drop_environment_database's grace period).
                col("archived_at", T::timestamp)},
               {"id"},
               {{"organization_id", "slug"}, {"id", "organization_id"}},
               {{{"organization_id"}, "sys_organization", {"id"}}},
               {{"sys_environment_org_default_idx", {"organization_id", "is_default"}, false, ""},
                {"sys_environment_one_default_idx", {"organization_id"}, true, "is_default"}}});
  // A trial's end (trial_days / trial_seconds from its creation), and how
  // often extend_environment_trial moved it (policies.cpp).
  t.back().columns.push_back(col("expires_at", T::timestamp));
  t.back().columns.push_back(col("trial_extensions", T::integer, true, D::zero));

  // Postgres servers that hold postgres-driver databases, by region. The
  // password is sealed like a credential token (AES-256-GCM under a keyring
  // key, bound to the row) and never readable by envdb_reader.
  Column password_cipher = col("password_cipher", T::blob);
  password_cipher.secret = true;
  Column port = col("port", T::integer, true);
  port.check_postgres = port.check_sqlite = "port BETWEEN 1 AND 65535";
  // Operating a host (postgres/hosts.hpp): capacity is the most live databases
  // placement puts there (NULL: no limit); a drained host takes no new one;
  // health is the last successful contact and the last failure (the connection
  // test and the Postgres worker record them).
  Column capacity = col("capacity", T::integer);
  capacity.check_postgres = capacity.check_sqlite = "capacity IS NULL OR capacity >= 1";
  t.push_back({"sys_database_host",
               {col("id", T::id, true), col("name", T::text, true), col("region", T::text, true),
                col("host", T::text, true), port, col("dbname", T::text, true),
                col("username", T::text, true), password_cipher, col("kms_key_id", T::text),
                col("created_at", T::timestamp, true, D::now),
                col("updated_at", T::timestamp, true, D::now), capacity,
                col("drained", T::boolean, true, D::false_), col("last_contact_at", T::timestamp),
                col("last_error_at", T::timestamp), col("last_error", T::text)},
               {"id"},
               {{"name"}},
               {},
               {{"sys_database_host_region_idx", {"region"}, false, ""}}});

  // What database_name_for makes; a turso database may keep its v4 name
  // (migrate_legacy_tenant_databases). Names are never paths (row_rules).
  Column database_name = col("database_name", T::text, true);
  database_name.immutable = true;
  database_name.check_postgres =
      "database_name ~ '^env-[a-z2-7]{26}$' OR (driver = 'turso' AND database_name ~ "
      "'^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$')";
  database_name.check_sqlite =
      "(length(database_name) = 30 AND database_name GLOB 'env-*' AND substr(database_name, 5) "
      "NOT GLOB '*[^a-z2-7]*') OR (driver = 'turso' AND length(database_name) BETWEEN 1 AND 255 "
      "AND database_name GLOB '[A-Za-z0-9]*' AND database_name NOT GLOB '*[^A-Za-z0-9._-]*')";
  t.push_back({"sys_environment_database",
               {col("id", T::id, true), col("environment_id", T::id, true), database_name,
                col("database_url", T::text), enum_col("driver", {"turso", "postgres", "sqlite"}),
                col("region", T::text, true), col("storage_limit_mb", T::integer),
                col("last_accessed_at", T::timestamp), col("provisioned_at", T::timestamp),
                col("metadata", T::json, true, D::empty_object),
                col("created_at", T::timestamp, true, D::now),
                col("updated_at", T::timestamp, true, D::now),
                // postgres driver: the registered server it is placed on (NULL:
                // the server envdb runs on).
                col("host_id", T::id),
                // When drop_environment_database removed the database (sqlite)
                // or its drop_database job completed (postgres, turso).
                col("dropped_at", T::timestamp)},
               {"id"},
               {{"environment_id"}, {"database_name"}},
               {{{"environment_id"}, "sys_environment", {"id"}},
                {{"host_id"}, "sys_database_host", {"id"}}},
               {{"sys_environment_database_host_idx", {"host_id"}, false, ""}}});
  // The latest measured size (usage.cpp) and when it was taken;
  // storage_read_only: the core's decision that the database is at or over
  // storage_limit_mb; storage_read_only_applied: what the postgres server
  // carries out (the worker converges the two).
  for (const Column& c : {col("usage_bytes", T::integer), col("usage_measured_at", T::timestamp),
                          col("storage_read_only", T::boolean, true, D::false_),
                          col("storage_read_only_applied", T::boolean, true, D::false_)})
    t.back().columns.push_back(c);

  Column token_cipher = col("token_cipher", T::blob, true);
  token_cipher.secret = true;
  t.push_back(
      {"sys_database_credential",
       {col("id", T::id, true), col("database_id", T::id, true), token_cipher,
        col("kms_key_id", T::text, true), enum_col("scope", {"readwrite", "readonly", "admin"}),
        enum_col("status", {"active", "rotating", "revoked"}), col("username", T::text),
        col("issued_at", T::timestamp, true, D::now), col("expires_at", T::timestamp),
        col("revoked_at", T::timestamp), col("rotated_from", T::id)},
       {"id"},
       {},
       {{{"database_id"}, "sys_environment_database", {"id"}},
        {{"rotated_from"}, "sys_database_credential", {"id"}}},
       {{"sys_database_credential_db_status_idx", {"database_id", "status"}, false, ""},
        {"sys_database_credential_expires_idx", {"expires_at"}, false, ""},
        {"sys_database_credential_one_active_idx",
         {"database_id", "scope"},
         true,
         "status = 'active'"},
        // rewrap_credentials walks one key's credentials in id order.
        {"sys_database_credential_kms_key_idx", {"kms_key_id", "id"}, false, ""}}});

  t.push_back(
      {"sys_environment_member",
       {col("id", T::id, true), col("environment_id", T::id, true),
        col("organization_id", T::id, true), col("user_id", T::text, true),
        enum_col("role", {"env_admin", "env_maker", "env_user", "env_viewer"}),
        col("created_at", T::timestamp, true, D::now),
        col("updated_at", T::timestamp, true, D::now)},
       {"id"},
       {{"environment_id", "user_id"}},
       // The pair key makes organization_id equal to the environment's.
       {{{"environment_id", "organization_id"}, "sys_environment", {"id", "organization_id"}}},
       {{"sys_environment_member_user_idx", {"user_id"}, false, ""}}});

  t.push_back(
      {"sys_provisioning_job",
       {col("id", T::id, true), col("environment_id", T::id, true), col("database_id", T::id),
        enum_col("kind", {"create_database", "drop_database", "create_login", "disable_login",
                          // copies, resets and backups (tenancy/copy, tenancy/backups)
                          "copy_database", "reset_database", "backup_database", "restore_database",
                          "delete_backup",
                          // moves between database hosts (tenancy/move)
                          "move_database", "retire_database"}),
        enum_col("driver", {"turso", "postgres", "sqlite"}),
        enum_col("status", {"pending", "running", "done", "failed"}),
        col("attempts", T::integer, true, D::zero), col("last_error", T::text),
        col("worker", T::text), col("payload", T::json, true, D::empty_object),
        col("created_at", T::timestamp, true, D::now),
        col("updated_at", T::timestamp, true, D::now), col("started_at", T::timestamp),
        col("finished_at", T::timestamp)},
       {"id"},
       {},
       {{{"environment_id"}, "sys_environment", {"id"}},
        {{"database_id"}, "sys_environment_database", {"id"}}},
       {{"sys_provisioning_job_queue_idx", {"status", "driver", "created_at"}, false, ""},
        {"sys_provisioning_job_env_idx", {"environment_id"}, false, ""}}});

  // Metering: one row per database and UTC day, the day's latest and largest
  // measured size (usage.cpp, record).
  Column usage_day = col("day", T::text, true);
  usage_day.check_postgres = "day ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'";
  usage_day.check_sqlite =
      "length(day) = 10 AND day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'";
  t.push_back(
      {"sys_environment_usage",
       {col("id", T::id, true), col("database_id", T::id, true), col("environment_id", T::id, true),
        usage_day, col("bytes", T::integer, true), col("max_bytes", T::integer, true),
        col("samples", T::integer, true, D::zero), col("measured_at", T::timestamp, true, D::now)},
       {"id"},
       {{"database_id", "day"}},
       {{{"database_id"}, "sys_environment_database", {"id"}},
        {{"environment_id"}, "sys_environment", {"id"}}},
       {{"sys_environment_usage_env_idx", {"environment_id", "day"}, false, ""}}});
  // Backups of environment databases (tenancy/backups). Rows are kept after
  // a backup is deleted (status deleted) as its history. location: the file
  // (sqlite), or what the worker was told to make (postgres, turso).
  t.push_back(
      {"sys_environment_backup",
       {col("id", T::id, true), col("environment_id", T::id, true), col("database_id", T::id, true),
        col("label", T::text), col("location", T::text, true),
        enum_col("driver", {"turso", "postgres", "sqlite"}), col("size_bytes", T::integer),
        enum_col("status", {"pending", "ready", "failed", "deleting", "deleted"}),
        col("schema_version", T::integer), col("created_by", T::text),
        col("created_at", T::timestamp, true, D::now),
        col("updated_at", T::timestamp, true, D::now), col("completed_at", T::timestamp),
        col("deleted_at", T::timestamp)},
       {"id"},
       {},
       {{{"environment_id"}, "sys_environment", {"id"}},
        {{"database_id"}, "sys_environment_database", {"id"}}},
       {{"sys_environment_backup_env_idx", {"environment_id", "created_at"}, false, ""}}});

  Table audit{"sys_audit_event",
              {col("id", T::id, true), col("occurred_at", T::timestamp, true, D::now),
               col("actor", T::text), col("action", T::text, true), col("organization_id", T::id),
               col("environment_id", T::id), col("subject_type", T::text),
               col("subject_id", T::text), col("detail", T::json, true, D::empty_object),
               // The event cursor (events_since, NOTIFY envdb_events): commit order.
               col("seq", T::integer)},
              {"id"},
              {},
              {},
              {{"sys_audit_event_org_idx", {"organization_id", "occurred_at"}, false, ""},
               {"sys_audit_event_env_idx", {"environment_id", "occurred_at"}, false, ""},
               {"sys_audit_event_seq_idx", {"seq"}, true, ""}}};
  audit.append_only = true;
  audit.numbered_column = "seq";
  audit.numbered_order = "occurred_at, id";
  // Repeated reveals of one credential by one caller within a minute are
  // counted on one event (credentials.cpp, record_reveal).
  audit.append_only_update_when = "OLD.action = 'credential.reveal'";
  audit.append_only_mutable = "detail";
  t.push_back(audit);

  // The hostnames a router resolves (resolve_hostname): lower case, a DNS
  // name (the core validates; the CHECK is the backstop for raw SQL), one
  // environment each. A row goes when the hostname is removed or its
  // environment's database is dropped, so the name is free again.
  Column hostname = col("hostname", T::text, true);
  hostname.check_postgres =
      "length(hostname) <= 253 AND hostname ~ "
      "'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'";
  hostname.check_sqlite =
      "length(hostname) BETWEEN 1 AND 253 AND hostname NOT GLOB '*[^a-z0-9.-]*' AND hostname "
      "NOT GLOB '[.-]*' AND hostname NOT GLOB '*[.-]' AND hostname NOT GLOB '*..*' AND hostname "
      "NOT GLOB '*.-*' AND hostname NOT GLOB '*-.*'";
  t.push_back(
      {"sys_environment_hostname",
       {col("id", T::id, true), hostname, col("environment_id", T::id, true),
        col("organization_id", T::id, true), col("created_at", T::timestamp, true, D::now)},
       {"id"},
       {{"hostname"}},
       // The pair key makes organization_id equal to the environment's.
       {{{"environment_id", "organization_id"}, "sys_environment", {"id", "organization_id"}}},
       // resolve_hostname reads the environment id from the index alone.
       {{"sys_environment_hostname_env_idx", {"environment_id"}, false, ""},
        {"sys_environment_hostname_lookup_idx", {"hostname", "environment_id"}, false, ""}}});
  return t;
}

// Data-plane version 1. Never edit what has shipped (see catalog.hpp).
std::vector<Table> build_data_plane() {
  std::vector<Table> t;

  Table ledger{"sys_schema_migration",
               {col("version", T::integer, true), col("checksum", T::text, true),
                col("applied_at", T::timestamp, true, D::now)},
               {"version"},
               {},
               {},
               {}};
  ledger.data_plane = true;
  t.push_back(ledger);

  // The identity stamp: one row; the environment id never changes, the
  // organization id and database name may be recorded once when they were
  // not known at the first initialization.
  Column environment_id = col("environment_id", T::id, true);
  environment_id.immutable = true;
  Column organization_id = col("organization_id", T::id);
  organization_id.set_once = true;
  Column database_name = col("database_name", T::text);
  database_name.set_once = true;
  Table info{"sys_environment_info",
             {environment_id, organization_id, database_name,
              col("schema_version", T::integer, true),
              col("initialized_at", T::timestamp, true, D::now)},
             {"environment_id"},
             {},
             {},
             {}};
  info.single_row = true;
  info.rule_code = Code::schema_mismatch;
  info.data_plane = true;
  t.push_back(info);

  // The v4 package-installation columns without tenant_id: the environment
  // is the database.
  Table packages{
      "sys_package_installation",
      {col("id", T::id, true), col("package_id", T::text, true), col("version", T::text, true),
       enum_col("status", {"installing", "active", "disabled", "uninstalling", "failed"}),
       col("installed_at", T::timestamp), col("installed_by", T::text),
       col("config", T::json, true, D::empty_object), col("created_at", T::timestamp, true, D::now),
       col("updated_at", T::timestamp, true, D::now)},
      {"id"},
      {{"package_id"}},
      {},
      {}};
  packages.data_plane = true;
  t.push_back(packages);
  return t;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string type_name(Type type, Dialect d) {
  const bool pg = d == Dialect::postgres;
  switch (type) {
    case T::id:
    case T::text: return pg ? "text" : "TEXT";
    case T::integer: return pg ? "bigint" : "INTEGER";
    case T::boolean: return pg ? "boolean" : "INTEGER";
    case T::timestamp: return pg ? "timestamptz" : "TEXT";
    case T::json: return pg ? "jsonb" : "TEXT";
    case T::blob: return pg ? "bytea" : "BLOB";
  }
  return "text";
}

std::string default_sql(Default fallback, Dialect d) {
  const bool pg = d == Dialect::postgres;
  switch (fallback) {
    case D::none: return "";
    case D::now: return pg ? "now()" : "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";
    case D::false_: return pg ? "false" : "0";
    case D::true_: return pg ? "true" : "1";
    case D::zero: return "0";
    case D::empty_object: return pg ? "'{}'::jsonb" : "'{}'";
  }
  return "";
}

std::string column_sql(const Column& c, Dialect d) {
  std::string s = "  " + c.name + " " + type_name(c.type, d);
  if (c.not_null) s += " NOT NULL";
  std::string def = default_sql(c.fallback, d);
  if (!def.empty()) s += " DEFAULT " + def;
  if (!c.one_of.empty()) {
    std::vector<std::string> quoted;
    for (auto& v : c.one_of) quoted.push_back("'" + v + "'");
    s += " CHECK (" + c.name + " IN (" + join(quoted) + "))";
  }
  const std::string& extra = d == Dialect::postgres ? c.check_postgres : c.check_sqlite;
  if (!extra.empty()) s += " CHECK (" + extra + ")";
  if (d == Dialect::sqlite && c.type == T::boolean) s += " CHECK (" + c.name + " IN (0, 1))";
  if (d == Dialect::sqlite && c.type == T::json) s += " CHECK (json_valid(" + c.name + "))";
  return s;
}

// SQLite enforces declared foreign keys only under PRAGMA foreign_keys, a
// per-connection switch envdb must not flip for its users, so the generated
// triggers carry the rule instead.
std::string sqlite_fk_triggers(const Table& t, const ForeignKey& fk, size_t n) {
  std::ostringstream s;
  std::vector<std::string> match_new, match_old, not_null;
  for (size_t i = 0; i < fk.columns.size(); ++i) {
    match_new.push_back("p." + fk.ref_columns[i] + " = NEW." + fk.columns[i]);
    match_old.push_back("c." + fk.columns[i] + " = OLD." + fk.ref_columns[i]);
    not_null.push_back("NEW." + fk.columns[i] + " IS NOT NULL");
  }
  const std::string name = t.name + "_fk" + std::to_string(n);
  const std::string check = "SELECT RAISE(ABORT, 'not_found: " + t.name + "." +
                            join(fk.columns, ",") + " names no row of " + fk.table + "') WHERE " +
                            join(not_null, " AND ") + " AND NOT EXISTS (SELECT 1 FROM " + fk.table +
                            " p WHERE " + join(match_new, " AND ") + ");";
  s << "CREATE TRIGGER IF NOT EXISTS " << name << "_insert BEFORE INSERT ON " << t.name << " BEGIN "
    << check << " END;\n";
  s << "CREATE TRIGGER IF NOT EXISTS " << name << "_update BEFORE UPDATE OF " << join(fk.columns)
    << " ON " << t.name << " BEGIN " << check << " END;\n";
  s << "CREATE TRIGGER IF NOT EXISTS " << name << "_parent_delete BEFORE DELETE ON " << fk.table
    << " BEGIN SELECT RAISE(ABORT, 'conflict: a row of " << t.name << " still refers to this "
    << fk.table << " row') WHERE EXISTS (SELECT 1 FROM " << t.name << " c WHERE "
    << join(match_old, " AND ") << "); END;\n";
  return s.str();
}

// Postgres trigger call of a data-plane rule: what is checked ('single_row',
// 'row' or a column), the message, and the SQLSTATE of the table's code.
std::string data_plane_guard_call(const Table& t, const std::string& what,
                                  const std::string& message) {
  return "envdb.data_plane_guard('" + what + "', '" + message + "', '" +
         code_sqlstate(t.rule_code) + "')";
}

// Raises a data-plane rule's error; for 'single_row' only when the table
// already holds a row. Trigger functions cannot be called directly.
const char* const kDataPlaneGuardPg =
    "CREATE OR REPLACE FUNCTION envdb.data_plane_guard() RETURNS trigger\n"
    "  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$\n"
    "DECLARE\n"
    "  present boolean;\n"
    "BEGIN\n"
    "  IF TG_ARGV[0] = 'single_row' THEN\n"
    "    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.%I)', TG_TABLE_SCHEMA, TG_TABLE_NAME)\n"
    "      INTO present;\n"
    "    IF NOT present THEN\n"
    "      RETURN NEW;\n"
    "    END IF;\n"
    "  END IF;\n"
    "  RAISE EXCEPTION USING MESSAGE = TG_ARGV[1], ERRCODE = TG_ARGV[2];\n"
    "END\n"
    "$fn$;\n";

// The compact event every numbered row publishes (NOTIFY envdb_events): ids
// and the action, never a secret, far below NOTIFY's 8000 bytes. The same
// keys events_since returns (catalog/events).
const char* const kEventPayloadPg =
    "pg_catalog.json_build_object('seq', n, 'id', NEW.id, 'action', NEW.action, "
    "'organizationId', NEW.organization_id, 'environmentId', NEW.environment_id, "
    "'credentialId', CASE WHEN NEW.subject_type = 'credential' THEN NEW.subject_id END)::text";

// A numbered table, Postgres: the sequence, the numbering of rows an upgrade
// finds (before the table's triggers exist, in an install and in an upgrade
// alike), and the deferred trigger that numbers a row as its transaction
// commits. SHARE UPDATE EXCLUSIVE conflicts with itself only (and with
// VACUUM), and only the table's owner may take it: the transactions that
// number rows do so one at a time, each visible before the next takes a
// number, so a reader that has seen number N has seen every smaller one
// there will ever be. Restored rows keep their numbers.
std::string numbered_ddl_pg(const Table& t) {
  const std::string table = qualified(t.name), c = t.numbered_column;
  const std::string seq = qualified(t.name + "_" + c);
  const std::string fn = qualified(t.name + "_number") + "()";
  std::ostringstream s;
  s << "DO $number$\nBEGIN\n"
    << "  UPDATE " << table << " a SET " << c << " = n." << c << " FROM (SELECT id, "
    << "pg_catalog.row_number() OVER (ORDER BY " << t.numbered_order << ") AS " << c << " FROM "
    << table << " WHERE " << c << " IS NULL) n WHERE a.id = n.id;\n"
    << "  PERFORM pg_catalog.setval('" << seq << "', COALESCE((SELECT pg_catalog.max(" << c
    << ") FROM " << table << "), 0) + 1, false);\n"
    << "END\n$number$;\n"
    << "CREATE FUNCTION " << fn << " RETURNS trigger\n"
    << "  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$\n"
    << "DECLARE\n  n bigint;\nBEGIN\n"
    << "  IF NEW." << c << " IS NOT NULL THEN\n    RETURN NULL;\n  END IF;\n"
    << "  LOCK TABLE " << table << " IN SHARE UPDATE EXCLUSIVE MODE;\n"
    << "  n := pg_catalog.nextval('" << seq << "');\n"
    << "  UPDATE " << table << " SET " << c << " = n WHERE id = NEW.id;\n"
    << "  PERFORM pg_catalog.pg_notify('envdb_events', " << kEventPayloadPg << ");\n"
    << "  RETURN NULL;\nEND\n$fn$;\n"
    << "REVOKE ALL ON FUNCTION " << fn << " FROM PUBLIC;\n"
    << "CREATE CONSTRAINT TRIGGER " << t.name << "_numbered AFTER INSERT ON " << table
    << " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION " << fn << ";\n";
  return s.str();
}

// The tables the router's resolve rows are read from, and the one column
// among them that is the resolve's own bookkeeping (no row it keeps depends
// on another session's last_accessed_at). Role rules (membership) are checked
// outside the cache, and keys are opened per call, so neither is listed.
const std::vector<std::string>& resolve_tables() {
  static const std::vector<std::string> names = {"sys_environment", "sys_environment_database",
                                                 "sys_database_credential"};
  return names;
}
constexpr const char* kResolveBookkeeping = "last_accessed_at";

// Postgres: plain DML sends no relcache invalidation, so a statement-level
// trigger sends one (envdb.invalidate_resolve_cache, the library's C
// function) for every statement that changes a table of the resolve rows.
// Invalidations go out at commit and are WAL-logged, so every backend's
// resolve cache, on a hot standby too, is emptied by the change. ALWAYS:
// the trigger fires under session_replication_role = replica as well
// (logical replication, bulk loads).
std::string resolve_cache_trigger(const Table& t) {
  bool listed = false;
  for (const std::string& name : resolve_tables()) listed = listed || name == t.name;
  if (!listed) return "";
  std::vector<std::string> columns;
  for (const Column& c : t.columns)
    if (c.name != kResolveBookkeeping) columns.push_back(c.name);
  const std::string trig = t.name + "_resolve_cache";
  return "CREATE TRIGGER " + trig + " AFTER INSERT OR UPDATE OF " + join(columns) +
         " OR DELETE OR TRUNCATE ON envdb." + t.name +
         " FOR EACH STATEMENT EXECUTE FUNCTION envdb.invalidate_resolve_cache();\n" +
         "ALTER TABLE envdb." + t.name + " ENABLE ALWAYS TRIGGER " + trig + ";\n";
}

}  // namespace

const std::vector<Table>& control_plane() {
  static const std::vector<Table> tables = build();
  return tables;
}

const Table& table(const std::string& name) {
  for (auto& t : control_plane())
    if (t.name == name) return t;
  throw Error(Code::internal, "no catalog table " + name);
}

std::string table_ddl(const Table& t, Dialect d) {
  const bool pg = d == Dialect::postgres;
  const std::string name = pg ? qualified(t.name) : t.name;
  const std::string if_not = pg ? "" : "IF NOT EXISTS ";
  std::ostringstream s;
  if (pg && !t.numbered_column.empty())
    s << "CREATE SEQUENCE " << qualified(t.name + "_" + t.numbered_column) << ";\n";
  s << "CREATE TABLE " << if_not << name << " (\n";
  std::vector<std::string> parts;
  for (auto& c : t.columns) parts.push_back(column_sql(c, d));
  parts.push_back("  PRIMARY KEY (" + join(t.primary_key) + ")");
  for (auto& u : t.uniques) parts.push_back("  UNIQUE (" + join(u) + ")");
  for (auto& fk : t.foreign_keys)
    parts.push_back("  FOREIGN KEY (" + join(fk.columns) + ") REFERENCES " +
                    (pg ? qualified(fk.table) : fk.table) + " (" + join(fk.ref_columns) + ")");
  s << join(parts, ",\n") << "\n);\n";
  for (auto& ix : t.indexes) {
    s << "CREATE " << (ix.unique ? "UNIQUE " : "") << "INDEX " << if_not << ix.name << " ON "
      << name << " (" << join(ix.columns) << ")";
    if (!ix.where.empty()) s << " WHERE " << ix.where;
    s << ";\n";
  }
  if (pg && !t.numbered_column.empty()) s << numbered_ddl_pg(t);
  if (!t.data_plane && (t.single_row || t.rule_code != Code::invalid_parameter))
    throw Error(Code::internal,
                "catalog table " + t.name + ": single_row and rule_code are data-plane features");
  const std::string code = code_word(t.rule_code);
  for (auto& c : t.columns) {
    if (!c.immutable && !c.set_once) continue;
    const std::string trig = t.name + "_" + c.name + "_immutable";
    const std::string message = code + ": " + t.name + "." + c.name + " is immutable";
    if (pg) {
      s << "CREATE TRIGGER " << trig << " BEFORE UPDATE OF " << c.name << " ON " << name
        << " FOR EACH ROW WHEN (" << (c.set_once ? "OLD." + c.name + " IS NOT NULL AND " : "")
        << "OLD." << c.name << " IS DISTINCT FROM NEW." << c.name << ") EXECUTE FUNCTION ";
      if (t.data_plane)
        s << data_plane_guard_call(t, c.name, message) << ";\n";
      else
        s << "envdb.reject_change('" << c.name << "');\n";
    } else {
      s << "CREATE TRIGGER IF NOT EXISTS " << trig << " BEFORE UPDATE OF " << c.name << " ON "
        << name << " WHEN " << (c.set_once ? "OLD." + c.name + " IS NOT NULL AND " : "") << "OLD."
        << c.name << " IS NOT NEW." << c.name << " BEGIN SELECT RAISE(ABORT, '" << message
        << "'); END;\n";
    }
  }
  if (t.append_only && !t.append_only_update_when.empty()) {
    // Updates are refused unless OLD matches the exception and nothing but
    // the mutable column changes; deletes always.
    std::string allowed = "(" + t.append_only_update_when + ")";
    for (auto& c : t.columns)
      if (c.name != t.append_only_mutable)
        allowed +=
            " AND NEW." + c.name + (pg ? " IS NOT DISTINCT FROM " : " IS ") + "OLD." + c.name;
    if (!t.numbered_column.empty()) {
      // The second exception: the number set once, nothing else changed.
      std::string numbering = "OLD." + t.numbered_column + " IS NULL";
      for (auto& c : t.columns)
        if (c.name != t.numbered_column)
          numbering +=
              " AND NEW." + c.name + (pg ? " IS NOT DISTINCT FROM " : " IS ") + "OLD." + c.name;
      allowed = "(" + allowed + ") OR (" + numbering + ")";
    }
    const std::string trig = t.name + "_append_only";
    const std::string message = code + ": " + t.name + " is append-only";
    if (pg) {
      s << "CREATE TRIGGER " << trig << " BEFORE DELETE ON " << name
        << " FOR EACH ROW EXECUTE FUNCTION envdb.reject_change('row');\n"
        << "CREATE TRIGGER " << trig << "_update BEFORE UPDATE ON " << name
        << " FOR EACH ROW WHEN (NOT (" << allowed
        << ")) EXECUTE FUNCTION envdb.reject_change('row');\n";
    } else {
      s << "CREATE TRIGGER IF NOT EXISTS " << trig << "_UPDATE BEFORE UPDATE ON " << name
        << " WHEN NOT (" << allowed << ") BEGIN SELECT RAISE(ABORT, '" << message << "'); END;\n"
        << "CREATE TRIGGER IF NOT EXISTS " << trig << "_DELETE BEFORE DELETE ON " << name
        << " BEGIN SELECT RAISE(ABORT, '" << message << "'); END;\n";
    }
  } else if (t.append_only) {
    const std::string trig = t.name + "_append_only";
    const std::string message = code + ": " + t.name + " is append-only";
    if (pg) {
      s << "CREATE TRIGGER " << trig << " BEFORE UPDATE OR DELETE ON " << name
        << " FOR EACH ROW EXECUTE FUNCTION "
        << (t.data_plane ? data_plane_guard_call(t, "row", message)
                         : std::string("envdb.reject_change('row')"))
        << ";\n";
    } else {
      for (const char* op : {"UPDATE", "DELETE"})
        s << "CREATE TRIGGER IF NOT EXISTS " << trig << "_" << op << " BEFORE " << op << " ON "
          << name << " BEGIN SELECT RAISE(ABORT, '" << message << "'); END;\n";
    }
  }
  if (!pg && !t.numbered_column.empty()) {
    // SQLite serializes writers, so the next number at insert is commit order.
    const std::string& c = t.numbered_column;
    s << "CREATE TRIGGER IF NOT EXISTS " << t.name << "_numbered AFTER INSERT ON " << name
      << " WHEN NEW." << c << " IS NULL BEGIN UPDATE " << name << " SET " << c
      << " = (SELECT COALESCE(MAX(" << c << "), 0) + 1 FROM " << name
      << ") WHERE rowid = NEW.rowid; END;\n";
  }
  if (t.single_row) {
    const std::string trig = t.name + "_single_row";
    const std::string message = code + ": " + t.name + " holds exactly one row";
    if (pg) {
      s << "CREATE TRIGGER " << trig << " BEFORE INSERT ON " << name
        << " FOR EACH ROW EXECUTE FUNCTION " << data_plane_guard_call(t, "single_row", message)
        << ";\n";
    } else {
      s << "CREATE TRIGGER IF NOT EXISTS " << trig << " BEFORE INSERT ON " << name
        << " WHEN EXISTS (SELECT 1 FROM " << name << ") BEGIN SELECT RAISE(ABORT, '" << message
        << "'); END;\n";
    }
  }
  if (pg) s << resolve_cache_trigger(t);
  if (!pg)
    for (size_t i = 0; i < t.foreign_keys.size(); ++i)
      s << sqlite_fk_triggers(t, t.foreign_keys[i], i + 1);
  return s.str();
}

std::string views_ddl(Dialect d) {
  const bool pg = d == Dialect::postgres;
  const std::string p = pg ? "envdb." : "";
  std::ostringstream s;
  // v4 shape, one row per organization's default environment database. The
  // token never leaves through the shim.
  s << "CREATE VIEW " << (pg ? "" : "IF NOT EXISTS ") << p << "sys_tenant_database AS\n"
    << "SELECT d.id, e.organization_id, d.database_name, d.database_url,\n"
    << "       " << (pg ? "NULL::text" : "NULL") << " AS auth_token, e.status, d.region,\n"
    << "       COALESCE(e.metadata ->> 'plan', 'free') AS plan, d.storage_limit_mb,\n"
    << "       d.last_accessed_at, d.metadata, d.created_at, d.updated_at\n"
    << "  FROM " << p << "sys_environment e JOIN " << p
    << "sys_environment_database d ON d.environment_id = e.id\n"
    << " WHERE e.is_default" << (pg ? "" : " = 1") << ";\n";
  return s.str();
}

const std::vector<Table>& data_plane() {
  static const std::vector<Table> tables = build_data_plane();
  return tables;
}

std::string data_plane_ddl(Dialect d) {
  std::string out = d == Dialect::postgres ? kDataPlaneGuardPg : "";
  for (auto& t : data_plane()) out += table_ddl(t, d);
  return out;
}

std::string control_plane_ddl(Dialect d) {
  std::string out;
  for (auto& t : control_plane()) out += table_ddl(t, d);
  out += views_ddl(d);
  return out;
}

}  // namespace envdb::catalog
