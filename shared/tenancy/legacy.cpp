#include "tenancy/legacy.hpp"

#include <cmath>
#include <iterator>
#include <map>
#include <set>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "core/json_bounds.hpp"
#include "secrets/vault.hpp"
#include "tenancy/provision.hpp"

namespace envdb::legacy {

namespace {

using T = api::Type;

constexpr size_t kMaxDatabaseName = 255;
constexpr size_t kMaxUrl = 4096;

const char* const kDeprecation =
    "provision_tenant_database is deprecated and will be removed in 2.0; use "
    "provision_environment (or provision_organization) and get_environment instead";

// ---- the v4 shape ---------------------------------------------------------

Json object_column(const Row& r, const char* column) {
  auto text = r.opt_text(column);
  if (!text) return Json::object();
  auto j = json_bounds::parse_stored(*text, std::string(column) + " of environment " +
                                                quote_value(r.text("id")));
  return j && j->is_object() ? *j : Json::object();
}

Json v4_json(const Row& env, const Row& db) {
  const Json env_metadata = object_column(env, "metadata");
  Json plan = "free";
  if (env_metadata.contains("plan") && env_metadata["plan"].is_string())
    plan = env_metadata["plan"];
  const Json d = records::database_json(db);
  return Json{{"id", d["id"]},
              {"organizationId", env.text("organization_id")},
              {"databaseName", d["databaseName"]},
              {"databaseUrl", d["databaseUrl"]},
              {"authToken", nullptr},
              {"status", env.text("status")},
              {"region", d["region"]},
              {"plan", plan},
              {"storageLimitMb", d["storageLimitMb"]},
              {"lastAccessedAt", d["lastAccessedAt"]},
              {"metadata", d["metadata"]},
              {"createdAt", d["createdAt"]},
              {"updatedAt", d["updatedAt"]}};
}

// ---- reading a v4 table ---------------------------------------------------

const char* const kLegacyColumns[] = {
    "id",       "organization_id", "database_name", "database_url",     "auth_token",
    "status",   "region",          "plan",          "storage_limit_mb", "last_accessed_at",
    "metadata", "created_at",      "updated_at"};

bool identifier_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool identifier_char(char c) { return identifier_start(c) || (c >= '0' && c <= '9'); }

bool valid_identifier(const std::string& s) {
  if (s.empty() || !identifier_start(s[0])) return false;
  for (char c : s)
    if (!identifier_char(c)) return false;
  return true;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

std::string quote_identifier(const std::string& identifier) { return "\"" + identifier + "\""; }

// The v4 table, checked to exist as a table with the v4 columns. Returns the
// quoted name to select from (identifiers are validated before they are
// spliced into SQL).
std::string resolve_table(Host& host, const std::optional<std::string>& given) {
  Store& store = host.store();
  const bool pg = store.dialect() == Dialect::postgres;
  const std::string name = given ? *given
                                 : (pg ? "public.sys_tenant_database" : "sys_tenant_database_v4");
  const size_t dot = name.find('.');
  std::string schema = dot == std::string::npos ? "" : name.substr(0, dot);
  std::string table = dot == std::string::npos ? name : name.substr(dot + 1);
  if ((dot != std::string::npos && !valid_identifier(schema)) || !valid_identifier(table))
    fail(Code::invalid_parameter,
         "legacy_table " + quote_value(name) +
             " must be a table name, optionally schema-qualified (letters, digits and _)");

  std::vector<Row> columns;
  if (pg) {
    // Unquoted names fold to lower case in Postgres; functions run with
    // search_path = pg_catalog, so an unqualified name means public.
    schema = dot == std::string::npos ? "public" : lower(schema);
    table = lower(table);
    if (!query_one(store,
                   "SELECT 1 AS present FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                   "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 AND "
                   "c.relkind IN ('r', 'p')",
                   {schema, table}))
      fail(Code::not_found, "legacy_table " + quote_value(name) + " names no table");
    columns =
        query(store,
              "SELECT a.attname::text AS name FROM pg_catalog.pg_attribute a "
              "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
              "WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
              {schema, table});
  } else {
    if (schema.empty()) schema = "main";
    if (!query_one(store,
                   "SELECT 1 AS present FROM pragma_database_list WHERE name = $1 COLLATE NOCASE",
                   {schema}))
      fail(Code::not_found, "legacy_table " + quote_value(name) + " names no table (no schema " +
                                quote_value(schema) + ")");
    auto found = query_one(store,
                           "SELECT name FROM " + quote_identifier(schema) +
                               ".sqlite_master WHERE type = 'table' AND name = $1 COLLATE NOCASE",
                           {table});
    if (!found) fail(Code::not_found, "legacy_table " + quote_value(name) + " names no table");
    table = found->text("name");
    columns = query(store, "SELECT name FROM pragma_table_info($1, $2)", {table, schema});
  }
  std::set<std::string> present;
  for (auto& c : columns) present.insert(lower(c.text("name")));
  std::string missing;
  for (const char* c : kLegacyColumns)
    if (!present.count(c)) missing += (missing.empty() ? "" : ", ") + std::string(c);
  if (!missing.empty())
    fail(Code::invalid_parameter, "legacy_table " + quote_value(name) +
                                      " is not a v4 sys_tenant_database table: it lacks " +
                                      missing);
  return quote_identifier(schema) + "." + quote_identifier(table);
}

struct LegacyRow {
  std::string id;
  std::string organization_id;
  std::string database_name;
  std::optional<std::string> database_url;
  std::optional<std::string> auth_token;
  std::string status;
  std::optional<std::string> region;
  std::optional<std::string> plan;
  std::optional<int64_t> storage_limit_mb;
  std::optional<std::string> last_accessed_at;
  Json metadata = Json::object();
  std::string created_at;
  std::string updated_at;
};

std::optional<std::string> text_of(const Value& v) {
  if (auto s = std::get_if<std::string>(&v)) return *s;
  if (auto i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  if (auto d = std::get_if<double>(&v)) {
    if (std::floor(*d) == *d && std::fabs(*d) < 9e15)
      return std::to_string(static_cast<int64_t>(*d));
    return std::to_string(*d);
  }
  if (auto b = std::get_if<bool>(&v)) return std::string(*b ? "true" : "false");
  if (auto blob = std::get_if<Blob>(&v)) return blob->bytes;
  return std::nullopt;
}

// Legacy text that is empty counts as absent.
std::optional<std::string> present_text(const Value& v) {
  auto t = text_of(v);
  if (t && t->empty()) return std::nullopt;
  return t;
}

std::optional<std::string> timestamp_of(const Value& v) {
  auto t = text_of(v);
  if (!t) return std::nullopt;
  auto ms = ms_from_iso(*t);
  if (!ms) return std::nullopt;
  return iso_from_ms(*ms);
}

LegacyRow read_row(const Row& r, const std::string& now) {
  LegacyRow out;
  auto id = present_text(r["id"]);
  if (!id) fail(Code::invalid_parameter, "a legacy row has no id");
  out.id = *id;
  const std::string where = "legacy row " + quote_value(out.id);
  auto org = present_text(r["organization_id"]);
  if (!org) fail(Code::invalid_parameter, where + " has no organization_id");
  require_id(where + " organization_id", *org);
  out.organization_id = *org;
  auto name = present_text(r["database_name"]);
  // Turso's own names are lowercase letters, digits and '-'; anything that
  // could read as a path is refused (row_rules).
  if (!name || name->size() > kMaxDatabaseName || !row_rules::is_legacy_database_name(*name))
    fail(Code::invalid_parameter,
         where + " database_name " + quote_value(name.value_or("")) +
             " must be 1 to 255 letters, digits, '.', '_' or '-', starting with a letter or digit");
  out.database_name = *name;
  out.database_url = present_text(r["database_url"]);
  if (out.database_url && out.database_url->size() > kMaxUrl)
    fail(Code::invalid_parameter, where + " database_url is longer than 4096 bytes");
  out.auth_token = present_text(r["auth_token"]);
  if (out.auth_token && out.auth_token->size() > vault::kMaxTokenBytes)
    fail(Code::invalid_parameter, where + " auth_token is longer than 4096 bytes");
  out.status = present_text(r["status"]).value_or("");
  out.region = present_text(r["region"]);
  if (out.region) provision::require_region(where + " region", *out.region);
  out.plan = present_text(r["plan"]);
  const Value& limit = r["storage_limit_mb"];
  if (auto i = std::get_if<int64_t>(&limit)) {
    out.storage_limit_mb = *i;
  } else if (auto d = std::get_if<double>(&limit)) {
    out.storage_limit_mb = static_cast<int64_t>(*d);
  } else if (auto s = present_text(limit)) {
    bool digits = s->size() <= 15;
    for (char c : *s) digits = digits && c >= '0' && c <= '9';
    if (!digits)
      fail(Code::invalid_parameter,
           where + " storage_limit_mb " + quote_value(*s) + " is not a whole number");
    out.storage_limit_mb = std::stoll(*s);
  }
  if (out.storage_limit_mb && *out.storage_limit_mb <= 0) out.storage_limit_mb.reset();
  out.last_accessed_at = timestamp_of(r["last_accessed_at"]);
  if (auto m = present_text(r["metadata"])) {
    Json j = json_bounds::parse_input(*m, where + " metadata");
    if (j.is_object()) out.metadata = j;
  }
  out.created_at = timestamp_of(r["created_at"]).value_or(now);
  out.updated_at = timestamp_of(r["updated_at"]).value_or(now);
  return out;
}

// ---- planning (reads only) and applying ------------------------------------

struct Step {
  LegacyRow row;
  bool skip = false;
  bool create_organization = false;
  std::string organization_slug;
  std::string region;
};

// A slug from an organization id: lower case, anything else '-', at most 63,
// starting and ending with a letter or digit.
std::string slug_base(const std::string& organization_id) {
  std::string s;
  for (char c : lower(organization_id))
    s += ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) ? c : '-';
  size_t start = s.find_first_not_of('-');
  s = start == std::string::npos ? "" : s.substr(start);
  if (s.size() > 63) s.resize(63);
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "org" : s;
}

std::vector<Step> plan(Host& host, const std::vector<LegacyRow>& rows) {
  Store& store = host.store();
  const std::string default_region = settings::setting(host, "default_region");
  std::set<std::string> organizations_created, slugs_taken, database_names_taken;
  std::map<std::string, std::string> default_database;  // organization -> planned database name
  std::vector<Step> steps;

  auto slug_free = [&](const std::string& slug) {
    return !slugs_taken.count(slug) &&
           !query_one(store, "SELECT 1 AS present FROM envdb.sys_organization WHERE slug = $1",
                      {slug});
  };

  for (const LegacyRow& row : rows) {
    Step step{row};
    const std::string where = "legacy row " + quote_value(row.id);
    const std::string& org = row.organization_id;
    const bool org_planned = organizations_created.count(org) > 0;
    const bool org_exists =
        org_planned ||
        query_one(store, "SELECT 1 AS present FROM envdb.sys_organization WHERE id = $1", {org});

    std::optional<std::string> current_default;
    if (default_database.count(org)) {
      current_default = default_database[org];
    } else if (org_exists && !org_planned) {
      if (auto env = provision::default_environment(store, org)) {
        auto db = records::database_of_environment(store, env->text("id"));
        current_default = db ? db->text("database_name") : std::string();
      }
    }
    if (current_default) {
      if (*current_default == row.database_name) {
        step.skip = true;  // migrated before
        steps.push_back(std::move(step));
        continue;
      }
      fail(Code::conflict, where + ": organization " + quote_value(org) +
                               " already has a default environment whose database is " +
                               quote_value(*current_default) + ", not " +
                               quote_value(row.database_name));
    }
    if (org_exists && !org_planned && provision::environment_by_slug(store, org, "default"))
      fail(Code::conflict, where + ": organization " + quote_value(org) +
                               " has an environment with slug 'default' that is not its default");
    if (database_names_taken.count(row.database_name) ||
        query_one(
            store,
            "SELECT 1 AS present FROM envdb.sys_environment_database WHERE database_name = $1",
            {row.database_name}))
      fail(Code::conflict, where + ": database_name " + quote_value(row.database_name) +
                               " already belongs to another environment");

    if (!org_exists) {
      const std::string base = slug_base(org);
      std::string slug = base;
      for (int n = 2; !slug_free(slug); ++n) {
        const std::string suffix = "-" + std::to_string(n);
        std::string head = base.substr(0, 63 - suffix.size());
        while (!head.empty() && head.back() == '-') head.pop_back();
        slug = head + suffix;
      }
      step.create_organization = true;
      step.organization_slug = slug;
      slugs_taken.insert(slug);
      organizations_created.insert(org);
    }
    step.region = row.region.value_or(default_region);
    default_database[org] = row.database_name;
    database_names_taken.insert(row.database_name);
    steps.push_back(std::move(step));
  }
  return steps;
}

void apply(Host& host, const Step& step) {
  Store& store = host.store();
  const LegacyRow& row = step.row;
  const std::string now = now_iso();
  if (step.create_organization)
    execute(store,
            "INSERT INTO envdb.sys_organization (id, slug, name, metadata, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, $5::timestamptz)",
            {row.organization_id, step.organization_slug, row.organization_id,
             Json::object().dump(), now});

  Json env_metadata = Json::object();
  if (row.plan) env_metadata["plan"] = *row.plan;
  env_metadata["legacyId"] = row.id;
  const std::string environment_id = new_uuid_v7();
  const std::string status = row.status == "active" ? "active" : "suspended";
  execute(store,
          "INSERT INTO envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
          "is_default, is_protected, status, metadata, created_at, updated_at) VALUES ($1, $2, "
          "'default', 'Default', 'default', $3, $4, $5, $6, $7::jsonb, $8::timestamptz, "
          "$9::timestamptz)",
          {environment_id, row.organization_id, step.region, true, true, status,
           env_metadata.dump(), row.created_at, now});

  // The v4 database is real and already exists: its name and URL are kept.
  const std::string database_id = new_uuid_v7();
  execute(store,
          "INSERT INTO envdb.sys_environment_database (id, environment_id, database_name, "
          "database_url, driver, region, storage_limit_mb, last_accessed_at, provisioned_at, "
          "metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, 'turso', $5, $6::bigint, "
          "$7::timestamptz, $8::timestamptz, $9::jsonb, $8::timestamptz, $10::timestamptz)",
          {database_id, environment_id, row.database_name,
           row.database_url ? Value(*row.database_url) : null_value(), step.region,
           row.storage_limit_mb ? Value(*row.storage_limit_mb) : null_value(),
           row.last_accessed_at ? Value(*row.last_accessed_at) : null_value(), row.created_at,
           row.metadata.dump(), row.updated_at});
  if (row.auth_token) vault::store_token(host, database_id, "readwrite", *row.auth_token);

  audit::record(host, {"environment.migrate", row.organization_id, environment_id, "environment",
                       environment_id,
                       Json{{"legacyId", row.id},
                            {"databaseName", row.database_name},
                            {"status", status},
                            {"organizationCreated", step.create_organization},
                            {"credential", row.auth_token.has_value()}}});
}

}  // namespace

Value provision_tenant_database(api::Call& c) {
  const std::string organization_id = c.text("organization_id");
  require_id("organization_id", organization_id);
  const auto region = c.opt_text("region", 1024);
  if (region) provision::require_region("region", *region);
  c.host.warning(kDeprecation);

  Store& store = c.store;
  records::load_organization(store, "organization_id", organization_id);
  auto env = provision::default_environment(store, organization_id);
  if (!env) {
    if (provision::environment_by_slug(store, organization_id, "default"))
      fail(Code::conflict, "organization " + quote_value(organization_id) +
                               " has no default environment and its slug 'default' is taken; "
                               "use set_default_environment");
    provision::Spec spec;
    spec.organization_id = organization_id;
    spec.slug = "default";
    spec.name = "Default";
    spec.env_type = "default";
    spec.region = region ? *region : settings::setting(c.host, "default_region");
    spec.driver = settings::setting(c.host, "default_driver");
    spec.is_default = true;
    spec.is_protected = true;
    provision::require_key_for(c.host, spec.driver);
    Atomic tx(store);
    provision::Undo undo(c.host);
    Json made = provision::create_environment(c.host, spec, undo);
    const std::string environment_id = made["environment"]["id"].get<std::string>();
    audit::record(c.host, {"environment.provision", organization_id, environment_id, "environment",
                           environment_id,
                           Json{{"slug", "default"},
                                {"envType", "default"},
                                {"driver", spec.driver},
                                {"region", spec.region},
                                {"databaseName", made["database"]["databaseName"]},
                                {"via", "provision_tenant_database"}}});
    tx.done();
    undo.keep();
    env = provision::default_environment(store, organization_id);
  }
  auto db = records::database_of_environment(store, env->text("id"));
  if (!db)
    throw Error(Code::internal,
                "environment " + quote_value(env->text("id")) + " has no database row");
  return api::json_result(v4_json(*env, *db));
}

Value migrate_legacy_tenant_databases(api::Call& c) {
  const auto given = c.opt_text("legacy_table", 255);
  const bool dry_run = c.opt_boolean("dry_run").value_or(false);
  Host& host = c.host;
  const std::string table = resolve_table(host, given);
  std::string select = "SELECT ";
  for (size_t i = 0; i < std::size(kLegacyColumns); ++i)
    select += std::string(i ? ", " : "") + kLegacyColumns[i];
  select += " FROM " + table + " ORDER BY created_at, id";

  const std::string now = now_iso();
  std::vector<LegacyRow> rows;
  for (auto& r : query(c.store, select)) rows.push_back(read_row(r, now));
  // Everything is decided by reading; a dry run stops here, so it writes
  // nothing in either host (Postgres has no inner savepoints to roll back).
  const std::vector<Step> steps = plan(host, rows);

  int64_t organizations = 0, environments = 0, stored = 0, skipped = 0;
  for (auto& s : steps) {
    if (s.skip) {
      ++skipped;
      continue;
    }
    organizations += s.create_organization ? 1 : 0;
    ++environments;
    stored += s.row.auth_token ? 1 : 0;
  }
  if (stored > 0) (void)host.keyring().active_key();  // key_unavailable now, not halfway

  if (!dry_run && environments > 0) {
    Atomic tx(c.store);
    for (auto& s : steps)
      if (!s.skip) apply(host, s);
    audit::record(host,
                  {"legacy.migrate", std::nullopt, std::nullopt, "table", given.value_or(table),
                   Json{{"organizations", organizations},
                        {"environments", environments},
                        {"credentials", stored},
                        {"skipped", skipped}}});
    tx.done();
  }
  return api::json_result(Json{{"organizations", organizations},
                               {"environments", environments},
                               {"credentials", stored},
                               {"skipped", skipped},
                               {"dryRun", dry_run}});
}

std::vector<api::Function> functions() {
  return {
      {"provision_tenant_database",
       {{"organization_id", T::text, nullptr}, {"region", T::text, "NULL"}},
       T::json,
       provision_tenant_database,
       api::kWrites,
       api::kAdmin,
       "DEPRECATED (v4 shim, removed in 2.0): the organization's default environment database "
       "in the v4 shape (authToken always null), creating the default environment when the "
       "organization has none; raises a deprecation warning"},
      {"migrate_legacy_tenant_databases",
       {{"legacy_table", T::text, "NULL"}, {"dry_run", T::boolean, "false"}},
       T::json,
       migrate_legacy_tenant_databases,
       api::kWrites,
       api::kAdmin,
       "turn the rows of a v4 sys_tenant_database table (default: SQLite "
       "sys_tenant_database_v4, Postgres public.sys_tenant_database) into organizations' "
       "default environments, databases and sealed readwrite credentials; idempotent; dry_run "
       "reports without writing"},
  };
}

}  // namespace envdb::legacy
