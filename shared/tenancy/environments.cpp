#include "tenancy/environments.hpp"

#include <chrono>
#include <utility>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/row_rules.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "jobs/turso.hpp"
#include "secrets/vault.hpp"
#include "tenancy/copy.hpp"
#include "tenancy/isolation.hpp"
#include "tenancy/legacy.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/provision.hpp"
#include "tenancy/teardown.hpp"

namespace envdb::environments {

namespace {

using T = api::Type;

class Stopwatch {
 public:
  int64_t ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

std::string driver_arg(api::Call& c) {
  auto given = c.opt_text("driver", 64);
  std::string driver = given ? *given : settings::setting(c.host, "default_driver");
  provision::require_driver("driver", driver);
  return driver;
}

std::string region_arg(api::Call& c) {
  auto given = c.opt_text("region", 1024);
  std::string region = given ? *given : settings::setting(c.host, "default_region");
  provision::require_region("region", region);
  return region;
}

std::string environment_id_arg(api::Call& c) {
  std::string id = c.text("environment_id");
  require_id("environment_id", id);
  return id;
}

Json environment_now(Store& store, const std::string& id) {
  return records::environment_json(records::load_environment(store, "environment_id", id));
}

// Archiving: never the default environment, a protected one only with force;
// the rest is teardown::archive (also deprovision_organization's).
Json archive(Host& host, const Row& env, bool force, const std::optional<std::string>& reason) {
  Store& store = host.store();
  const std::string id = env.text("id");
  lifecycle::require(id, env.text("status"), "archived");
  if (env.boolean("is_default"))
    fail(Code::conflict, "environment_id " + quote_value(id) +
                             " is its organization's default environment, which is never "
                             "archived; make another environment the default first");
  if (env.boolean("is_protected") && !force)
    fail(Code::conflict,
         "environment_id " + quote_value(id) + " is protected; archive it with force => true");
  Atomic tx(store);
  Json detail{{"force", force}};
  if (reason) detail["reason"] = *reason;
  const int64_t revoked =
      teardown::archive(host, env, detail, "cancelled: the environment was archived");
  tx.done();
  return Json{{"environment", environment_now(store, id)}, {"revokedCredentials", revoked}};
}

// The environment's create_database job in the queue: the one still there,
// else the last failed one pending again, else a new one.
std::optional<Row> create_job_for_retry(Host& host, const std::string& id, const Row& db,
                                        const std::string& now) {
  Store& store = host.store();
  const std::string columns = std::string("SELECT ") + records::kJobColumns +
                              " FROM envdb.sys_provisioning_job WHERE environment_id = $1 AND "
                              "kind = 'create_database' AND status ";
  if (auto job =
          query_one(store,
                    columns + "IN ('pending', 'running') ORDER BY created_at DESC, id DESC LIMIT 1",
                    {id}))
    return job;
  auto failed =
      query_one(store, columns + "= 'failed' ORDER BY created_at DESC, id DESC LIMIT 1", {id});
  if (!failed)
    return provision::queue_create_job(host, records::load_environment(store, "environment_id", id),
                                       db);
  // The same job again; attempts keep counting.
  execute(store,
          "UPDATE envdb.sys_provisioning_job SET status = 'pending', worker = NULL, "
          "started_at = NULL, finished_at = NULL, updated_at = $2::timestamptz WHERE id = $1",
          {failed->text("id"), now});
  host.jobs_queued(db.text("driver"));
  return query_one(store,
                   std::string("SELECT ") + records::kJobColumns +
                       " FROM envdb.sys_provisioning_job WHERE id = $1",
                   {failed->text("id")});
}

// failed -> provisioning, and the work again: the sqlite file now, or the
// create_database job back in the queue.
Json retry(Host& host, const Row& env, const std::optional<std::string>& reason) {
  Store& store = host.store();
  const std::string id = env.text("id");
  lifecycle::require(id, env.text("status"), "provisioning");
  auto db = records::database_of_environment(store, id);
  if (!db) throw Error(Code::internal, "environment " + quote_value(id) + " has no database row");
  const std::string database_id = db->text("id");
  const std::string driver = db->text("driver");
  // The file a retry would write: refused before anything when the row
  // points outside sqlite_data_dir.
  if (driver == "sqlite")
    (void)row_rules::sqlite_file(host, db->text("database_name"), db->opt_text("database_url"));
  const bool has_active_credentials =
      query_one(store,
                "SELECT 1 AS present FROM envdb.sys_database_credential WHERE database_id = $1 AND "
                "status = 'active' LIMIT 1",
                {database_id})
          .has_value();
  const bool issue = driver != "turso" && !has_active_credentials;
  if (issue) provision::require_key_for(host, driver);

  Atomic tx(store);
  provision::Undo undo(host);
  const std::string now = now_iso();
  execute(store,
          "UPDATE envdb.sys_environment SET status = 'provisioning', updated_at = $2::timestamptz "
          "WHERE id = $1",
          {id, now});
  if (issue) vault::issue_initial(host, database_id);
  std::optional<Row> job;
  if (driver == "sqlite") {
    const std::string path = provision::create_sqlite_file(host, id, env.text("organization_id"),
                                                           db->text("database_name"), true, undo);
    provision::activate(host, id, "provisioning", database_id, "file:" + path);
  } else {
    job = create_job_for_retry(host, id, *db, now);
  }
  Json detail{{"driver", driver}, {"jobId", job ? Json(job->text("id")) : Json(nullptr)}};
  if (reason) detail["reason"] = *reason;
  audit::record(host,
                {"environment.retry", env.text("organization_id"), id, "environment", id, detail});
  tx.done();
  undo.keep();
  return Json{{"environment", environment_now(store, id)}, {"job", provision::job_brief(job)}};
}

// provision_environment with if_not_exists finding the slug taken.
Value existing_environment(Store& store, const provision::Spec& spec, const Row& existing,
                           const Stopwatch& clock) {
  Json out = provision::environment_bundle(store, existing.text("id"));
  out["durationMs"] = clock.ms();
  out["warnings"] =
      Json::array({"environment " + quote_value(spec.slug) + " already exists in organization " +
                   quote_value(spec.organization_id) + " (status " + existing.text("status") +
                   "); returned as it is, nothing was changed"});
  return api::json_result(out);
}

// provision_organization with if_not_exists finding the slug taken: the
// organization is returned as it is when it matches (the same id, when an id
// was given), with its default environment.
Value existing_organization(Store& store, const std::string& slug,
                            const std::optional<std::string>& given_id, const Row& taken,
                            const Stopwatch& clock) {
  const std::string id = taken.text("id");
  if (given_id && *given_id != id)
    fail(Code::already_exists, "slug " + quote_value(slug) + " is already used by organization " +
                                   quote_value(id) + ", not by the given id " +
                                   quote_value(*given_id));
  auto current = provision::default_environment(store, id);
  return api::json_result(Json{
      {"organization", records::organization_json(records::load_organization(store, "id", id))},
      {"defaultEnvironment",
       current ? provision::environment_bundle(store, current->text("id")) : Json(nullptr)},
      {"durationMs", clock.ms()},
      {"warnings", Json::array({"organization " + quote_value(slug) + " already exists (id " +
                                quote_value(id) + "); returned as it is, nothing was changed"})}});
}

// provision_environment's arguments, checked, as the environment to create.
provision::Spec environment_spec(api::Call& c) {
  provision::Spec spec;
  spec.organization_id = c.text("organization_id");
  require_id("organization_id", spec.organization_id);
  spec.slug = c.text("slug");
  require_slug("slug", spec.slug);
  spec.name = c.opt_text("name").value_or(spec.slug);
  provision::require_name("name", spec.name);
  spec.env_type = c.opt_text("env_type", 64).value_or("development");
  if (!provision::is_env_type(spec.env_type))
    fail(Code::invalid_parameter,
         "env_type " + quote_value(spec.env_type) +
             " is not an environment type (sandbox, development, production, trial)");
  if (spec.env_type == "default")
    fail(Code::invalid_parameter,
         "env_type 'default' is reserved for the environment provision_organization creates");
  spec.region = region_arg(c);
  spec.driver = driver_arg(c);
  spec.is_default = c.opt_boolean("is_default").value_or(false);
  spec.is_protected = c.opt_boolean("is_protected").value_or(spec.env_type == "production");
  spec.description = c.opt_text("description", provision::kMaxDescription);
  spec.storage_limit_mb = c.opt_integer("storage_limit_mb");
  if (spec.storage_limit_mb && *spec.storage_limit_mb <= 0)
    fail(Code::invalid_parameter,
         "storage_limit_mb " + std::to_string(*spec.storage_limit_mb) + " must be greater than 0");
  spec.created_by = c.opt_text("created_by", provision::kMaxCreatedBy);
  spec.metadata = c.opt_object("metadata").value_or(Json::object());
  // A new environment as a copy (tenancy/copy): of the source's driver
  // unless one is named.
  const auto copy_from = c.opt_text("copy_from");
  const auto copy_mode = c.opt_text("copy_mode", 64);
  if (copy_mode && !copy_from)
    fail(Code::invalid_parameter, "copy_mode " + quote_value(*copy_mode) +
                                      " was given without copy_from, the environment to copy");
  if (copy_from) {
    require_id("copy_from", *copy_from);
    if (!c.given("driver"))
      if (auto db = records::database_of_environment(c.store, *copy_from))
        spec.driver = db->text("driver");
    spec.copy_from = copy::copy_from_source(c.store, *copy_from, copy_mode.value_or("full"),
                                            spec.organization_id, spec.driver);
  }
  return spec;
}

void require_open_organization(Store& store, const std::string& organization_id) {
  Row org = records::load_organization(store, "organization_id", organization_id);
  if (auto at = org.opt_text("deprovisioned_at"))
    fail(Code::invalid_transition, "organization_id " + quote_value(organization_id) +
                                       " was deprovisioned at " + *at +
                                       "; it takes no new environments");
}

// The live environment holding the spec's slug, if any. An archived
// environment does not hold its slug (nor is it ever what if_not_exists
// returns): it is set in `released`, keeps its row and history under
// archived-<id hex>, and the slug names the new environment.
std::optional<Row> slug_holder(Store& store, const provision::Spec& spec,
                               std::optional<Row>& released) {
  auto existing = provision::environment_by_slug(store, spec.organization_id, spec.slug);
  if (existing && existing->text("status") == "archived") {
    released = std::exchange(existing, std::nullopt);
  }
  return existing;
}

void require_no_default(Store& store, const std::string& organization_id) {
  if (auto current = provision::default_environment(store, organization_id))
    fail(Code::conflict,
         "organization " + quote_value(organization_id) + " already has a default environment " +
             quote_value(current->text("id")) + "; use set_default_environment to move the flag");
}

void audit_provisioned(Host& host, const provision::Spec& spec, const Json& created) {
  const std::string environment_id = created["environment"]["id"].get<std::string>();
  audit::record(host, {"environment.provision", spec.organization_id, environment_id, "environment",
                       environment_id,
                       Json{{"slug", spec.slug},
                            {"envType", spec.env_type},
                            {"driver", spec.driver},
                            {"region", spec.region},
                            {"databaseName", created["database"]["databaseName"]},
                            {"status", created["environment"]["status"]}}});
}

// The checked environment written in one transaction: the archived slug
// holder renamed, the environment created and audited.
Value create_checked_environment(Host& host, const provision::Spec& spec,
                                 const std::optional<Row>& released, bool if_not_exists,
                                 const Stopwatch& clock) {
  Store& store = host.store();
  std::optional<Json> created;
  provision::Undo undo(host);
  Atomic tx(store);
  if (released) teardown::release_slug(host, *released);
  try {
    created = provision::create_environment(host, spec, undo);
  } catch (const Error& e) {
    // A concurrent call took the slug after the check above.
    if (!if_not_exists || e.code() != Code::already_exists) throw;
    auto taken = provision::environment_by_slug(store, spec.organization_id, spec.slug);
    if (!taken || taken->text("status") == "archived") throw;
    return existing_environment(store, spec, *taken, clock);
  }
  Json& out = *created;
  audit_provisioned(host, spec, out);
  if (!spec.copy_from.is_null()) {
    const std::string id = out["environment"]["id"].get<std::string>();
    audit::record(host, {"environment.copy", spec.organization_id, id, "environment", id,
                         Json{{"sourceEnvironmentId", spec.copy_from["sourceEnvironmentId"]},
                              {"mode", spec.copy_from["mode"]},
                              {"driver", spec.driver},
                              {"newEnvironment", true}}});
    // sqlite: the new file is replaced by the copy now, the last step.
    if (spec.driver == "sqlite") copy::copy_into_new(host, spec.copy_from, id);
  }
  tx.done();
  undo.keep();
  out["durationMs"] = clock.ms();
  out["warnings"] = Json::array();
  return api::json_result(out);
}

// The database of an archived environment, not dropped and not being dropped.
Row database_to_drop(Store& store, const Row& env) {
  const std::string id = env.text("id");
  if (env.text("status") != "archived")
    fail(Code::invalid_transition, "environment_id " + quote_value(id) + " is " +
                                       env.text("status") +
                                       "; only an archived environment's database can be dropped "
                                       "(archive_environment first)");
  auto db = records::database_of_environment(store, id);
  if (!db) fail(Code::not_found, "environment_id " + quote_value(id) + " has no database");
  if (auto dropped = db->opt_text("dropped_at"))
    fail(Code::invalid_transition, "the database of environment_id " + quote_value(id) +
                                       " was already dropped at " + *dropped);
  if (auto job = query_one(store,
                           "SELECT id, status FROM envdb.sys_provisioning_job WHERE database_id = "
                           "$1 AND kind = 'drop_database' AND status IN ('pending', 'running') "
                           "ORDER BY created_at, id LIMIT 1",
                           {db->text("id")}))
    fail(Code::invalid_transition,
         "the database of environment_id " + quote_value(id) + " is already being dropped (job " +
             quote_value(job->text("id")) + " is " + job->text("status") + ")");
  return std::move(*db);
}

// drop_grace_seconds have passed since the archive, or force skips them (never
// for a protected environment); returns when the environment was archived.
std::string require_grace_passed(Host& host, const Row& env, bool force) {
  const std::string id = env.text("id");
  if (force && (env.boolean("is_protected") || env.boolean("is_default")))
    fail(Code::conflict, "environment_id " + quote_value(id) +
                             " is protected; force cannot skip drop_grace_seconds for it");
  const int64_t grace = settings::setting_seconds(host, "drop_grace_seconds");
  // An environment archived before archived_at existed: its last update is
  // the archive (an archived environment changes no more).
  std::string archived_at = env.opt_text("archived_at").value_or(env.text("updated_at"));
  if (!force && grace > 0) {
    const int64_t since = ms_from_iso(archived_at).value_or(0);
    const int64_t allowed = since + grace * 1000;
    if (now_ms() < allowed)
      fail(Code::invalid_transition,
           "environment_id " + quote_value(id) + " was archived at " + archived_at +
               "; its database can be dropped from " + iso_from_ms(allowed) +
               " (drop_grace_seconds = " + std::to_string(grace) + "), or now with force => true");
  }
  return archived_at;
}

[[noreturn]] void fail_slug_taken(const std::string& slug, const Row& taken) {
  fail(Code::already_exists, "slug " + quote_value(slug) + " is already used by organization " +
                                 quote_value(taken.text("id")));
}

// The organization row. The checks before it read before anything is
// locked: a concurrent call may take the slug or id in between. ON CONFLICT
// turns that race into the same answer instead of a unique-violation message
// from the host: the organization now holding the slug is returned, a taken
// id fails.
std::optional<Row> insert_organization(Store& store, const std::string& id, const std::string& slug,
                                       const std::string& name, const Json& metadata) {
  const std::string now = now_iso();
  if (!query(store,
             "INSERT INTO envdb.sys_organization (id, slug, name, metadata, created_at, "
             "updated_at) VALUES ($1, $2, $3, $4::jsonb, $5::timestamptz, $5::timestamptz) "
             "ON CONFLICT DO NOTHING RETURNING id",
             {id, slug, name, metadata.dump(), now})
           .empty())
    return std::nullopt;
  if (auto taken =
          query_one(store, "SELECT id FROM envdb.sys_organization WHERE slug = $1", {slug}))
    return taken;
  fail(Code::already_exists, "id " + quote_value(id) + " already names an organization");
}

// The default environment every organization is created with.
provision::Spec default_environment_spec(const std::string& organization_id,
                                         const std::string& region, const std::string& driver,
                                         const std::optional<std::string>& created_by) {
  provision::Spec spec;
  spec.organization_id = organization_id;
  spec.slug = "default";
  spec.name = "Default";
  spec.env_type = "default";
  spec.region = region;
  spec.driver = driver;
  spec.is_default = true;
  spec.is_protected = true;
  spec.created_by = created_by;
  return spec;
}

}  // namespace

Value provision_organization(api::Call& c) {
  Stopwatch clock;
  const std::string slug = c.text("slug");
  require_slug("slug", slug);
  const std::string name = c.text("name");
  provision::require_name("name", name);
  std::string id = new_uuid_v7();
  const auto given_id = c.opt_text("id");
  if (given_id) {
    require_id("id", *given_id);
    id = *given_id;
  }
  const std::string region = region_arg(c);
  const std::string driver = driver_arg(c);
  const auto created_by = c.opt_text("created_by", provision::kMaxCreatedBy);
  const Json metadata = c.opt_object("metadata").value_or(Json::object());
  const bool if_not_exists = c.opt_boolean("if_not_exists").value_or(false);

  Store& store = c.store;
  if (auto taken =
          query_one(store, "SELECT id FROM envdb.sys_organization WHERE slug = $1", {slug})) {
    if (if_not_exists) return existing_organization(store, slug, given_id, *taken, clock);
    fail_slug_taken(slug, *taken);
  }
  if (query_one(store, "SELECT 1 AS present FROM envdb.sys_organization WHERE id = $1", {id}))
    fail(Code::already_exists, "id " + quote_value(id) + " already names an organization");
  provision::require_key_for(c.host, driver);

  Atomic tx(store);
  provision::Undo undo(c.host);
  if (auto taken = insert_organization(store, id, slug, name, metadata)) {
    if (if_not_exists) return existing_organization(store, slug, given_id, *taken, clock);
    fail_slug_taken(slug, *taken);
  }
  Json environment =
      provision::create_environment(c.host,
                                    default_environment_spec(id, region, driver, created_by), undo);
  const std::string environment_id = environment["environment"]["id"].get<std::string>();
  audit::record(c.host, {"organization.provision", id, environment_id, "organization", id,
                         Json{{"slug", slug},
                              {"driver", driver},
                              {"region", region},
                              {"defaultEnvironmentId", environment_id},
                              {"databaseName", environment["database"]["databaseName"]}}});
  tx.done();
  undo.keep();
  return api::json_result(Json{{"organization", records::organization_json(
                                                    records::load_organization(store, "id", id))},
                               {"defaultEnvironment", environment},
                               {"durationMs", clock.ms()},
                               {"warnings", Json::array()}});
}

Value provision_environment(api::Call& c) {
  Stopwatch clock;
  const provision::Spec spec = environment_spec(c);
  const bool if_not_exists = c.opt_boolean("if_not_exists").value_or(false);

  Store& store = c.store;
  require_open_organization(store, spec.organization_id);
  std::optional<Row> released;
  if (auto existing = slug_holder(store, spec, released)) {
    if (!if_not_exists)
      fail(Code::already_exists, "slug " + quote_value(spec.slug) +
                                     " already names an environment of organization " +
                                     quote_value(spec.organization_id));
    return existing_environment(store, spec, *existing, clock);
  }
  if (spec.is_default) require_no_default(store, spec.organization_id);
  provision::require_key_for(c.host, spec.driver);
  return create_checked_environment(c.host, spec, released, if_not_exists, clock);
}

Value get_environment(api::Call& c) {
  const std::string id = environment_id_arg(c);
  isolation::require_visible_environment(c.host, c.store, id);
  Row env = records::load_environment(c.store, "environment_id", id);
  auto db = records::database_of_environment(c.store, id);
  return api::json_result(
      Json{{"environment", records::environment_json(env)},
           {"database", db ? records::database_json(*db) : Json(nullptr)},
           {"credentials",
            db ? provision::credentials_of(c.store, db->text("id"), false) : Json::array()}});
}

Value set_environment_status(api::Call& c) {
  const std::string id = environment_id_arg(c);
  const std::string status = c.text("status", 64);
  const auto reason = c.opt_text("reason", provision::kMaxReason);
  Store& store = c.store;
  Row env = records::load_environment(store, "environment_id", id);
  const std::string from = env.text("status");
  // One rule per target, wherever the request comes from.
  if (status == "archived")
    return api::json_result(
        Json{{"environment", archive(c.host, env, false, reason)["environment"]}});
  if (status == "provisioning")
    return api::json_result(Json{{"environment", retry(c.host, env, reason)["environment"]}});
  // Maintenance belongs to the copy, reset or restore that holds the
  // environment: its job's end gives the status back (tenancy/copy).
  if (status == "maintenance" || from == "maintenance")
    fail(Code::invalid_transition,
         "environment " + quote_value(id) + " cannot go from " + from + " to " + status +
             ": maintenance is entered and left only by copy_environment, reset_environment and "
             "restore_environment");
  lifecycle::require(id, from, status);
  if (status == "active") {
    auto db = records::database_of_environment(store, id);
    if (!db || is_null((*db)["provisioned_at"]))
      fail(Code::conflict, "environment_id " + quote_value(id) +
                               " cannot become active: its database is not provisioned yet");
  }
  Atomic tx(store);
  if (status == "failed")
    provision::cancel_pending_jobs(store, id, "cancelled: the environment was marked failed");
  execute(
      store,
      "UPDATE envdb.sys_environment SET status = $2, updated_at = $3::timestamptz WHERE id = $1",
      {id, status, now_iso()});
  // turso: a suspension invalidates the database's tokens, a resumption
  // mints the live ones again.
  if (status == "suspended" || (status == "active" && from == "suspended"))
    if (auto db = records::database_of_environment(store, id))
      turso::queue(c.host, db->text("id"), status == "suspended" ? "suspend" : "resume", {});
  Json detail{{"from", from}, {"to", status}};
  if (reason) detail["reason"] = *reason;
  audit::record(c.host,
                {"environment.status", env.text("organization_id"), id, "environment", id, detail});
  tx.done();
  return api::json_result(Json{{"environment", environment_now(store, id)}});
}

Value archive_environment(api::Call& c) {
  const std::string id = environment_id_arg(c);
  const bool force = c.opt_boolean("force").value_or(false);
  Row env = records::load_environment(c.store, "environment_id", id);
  return api::json_result(archive(c.host, env, force, std::nullopt));
}

// The database of an archived environment goes for good (docs/design.md#lifecycle:
// archiving keeps it; dropping is this separate, explicit step after
// drop_grace_seconds). sqlite: the file goes now, then the registry records
// it, so a failure in between leaves "not dropped" and a second call
// converges; postgres and turso: a drop_database job, whose completion
// records it (outbox::complete_provisioning_job).
Value drop_environment_database(api::Call& c) {
  const std::string id = environment_id_arg(c);
  const bool force = c.opt_boolean("force").value_or(false);
  Host& host = c.host;
  Store& store = c.store;
  Row env = records::load_environment(store, "environment_id", id);
  const Row db = database_to_drop(store, env);
  const std::string database_id = db.text("id");
  const std::string archived_at = require_grace_passed(host, env, force);
  const std::optional<std::string> job_id =
      teardown::drop_database(host, env, db, force, archived_at);
  Json job = nullptr;
  if (job_id)
    job = records::job_json(*query_one(store,
                                       std::string("SELECT ") + records::kJobColumns +
                                           " FROM envdb.sys_provisioning_job WHERE id = $1",
                                       {*job_id}));
  return api::json_result(
      Json{{"environment", environment_now(store, id)},
           {"database",
            records::database_json(records::load_database(store, "database_id", database_id))},
           {"job", job}});
}

Value set_default_environment(api::Call& c) {
  const std::string id = environment_id_arg(c);
  Store& store = c.store;
  Row env = records::load_environment(store, "environment_id", id);
  const std::string organization_id = env.text("organization_id");
  if (env.text("status") != "active")
    fail(Code::conflict, "environment_id " + quote_value(id) + " is " + env.text("status") +
                             "; only an active environment can be the default");
  auto previous = provision::default_environment(store, organization_id);
  const Json previous_id = previous ? Json(previous->text("id")) : Json(nullptr);
  if (previous && previous->text("id") == id)
    return api::json_result(
        Json{{"environment", records::environment_json(env)}, {"previousDefaultId", previous_id}});

  Atomic tx(store);
  const std::string now = now_iso();
  // Clear first: at most one default per organization holds at every step.
  execute(store,
          "UPDATE envdb.sys_environment SET is_default = $2, updated_at = $3::timestamptz "
          "WHERE organization_id = $1 AND is_default",
          {organization_id, false, now});
  execute(store,
          "UPDATE envdb.sys_environment SET is_default = $2, updated_at = $3::timestamptz "
          "WHERE id = $1",
          {id, true, now});
  audit::record(c.host, {"environment.set_default", organization_id, id, "environment", id,
                         Json{{"previousDefaultId", previous_id}}});
  tx.done();
  return api::json_result(
      Json{{"environment", environment_now(store, id)}, {"previousDefaultId", previous_id}});
}

Value retry_environment(api::Call& c) {
  const std::string id = environment_id_arg(c);
  Row env = records::load_environment(c.store, "environment_id", id);
  return api::json_result(retry(c.host, env, std::nullopt));
}

std::vector<api::Function> functions() {
  using api::kAdmin;
  using api::kReader;
  using api::kRequestForm;
  using api::kRouter;
  using api::kWrites;
  std::vector<api::Function> rows = {
      {"provision_organization",
       {{"slug", T::text, nullptr},
        {"name", T::text, nullptr},
        {"id", T::text, "NULL"},
        {"region", T::text, "NULL"},
        {"driver", T::text, "NULL"},
        {"created_by", T::text, "NULL"},
        {"metadata", T::json, "NULL"},
        {"if_not_exists", T::boolean, "false"}},
       T::json,
       provision_organization,
       kWrites | kRequestForm,
       kAdmin,
       "create an organization and its default environment (database and first credentials) in "
       "one call; id defaults to a UUIDv7, region and driver to the default_region and "
       "default_driver settings. The sqlite driver writes the database file under "
       "sqlite_data_dir (a relative path is resolved against the directory of the control "
       "database's file). if_not_exists returns the organization that has the slug (when an id "
       "is given, only if it is that one) instead of already_exists"},
      {"provision_environment",
       {{"organization_id", T::text, nullptr},
        {"slug", T::text, nullptr},
        {"name", T::text, "NULL"},
        {"env_type", T::text, "NULL"},
        {"region", T::text, "NULL"},
        {"driver", T::text, "NULL"},
        {"is_default", T::boolean, "false"},
        {"is_protected", T::boolean, "NULL"},
        {"description", T::text, "NULL"},
        {"storage_limit_mb", T::integer, "NULL"},
        {"created_by", T::text, "NULL"},
        {"metadata", T::json, "NULL"},
        {"if_not_exists", T::boolean, "false"},
        {"copy_from", T::text, "NULL"},
        {"copy_mode", T::text, "NULL"}},
       T::json,
       provision_environment,
       kWrites | kRequestForm,
       kAdmin,
       "create an environment with its database row and credentials; sqlite: the database file "
       "is created under sqlite_data_dir (a relative path is resolved against the directory of "
       "the control database's file) and the environment is active on return; postgres and "
       "turso: it stays provisioning and a create_database job is queued. An archived "
       "environment does not hold its slug: it is renamed archived-<id hex> and the slug names "
       "the new environment; if_not_exists never returns an archived environment. copy_from (an "
       "environment of the same organization) and copy_mode (full, the default, or schema) "
       "make the new database a copy of it, as copy_environment does (postgres and turso: the "
       "create_database job's payload.copyFrom)"},
      {"get_environment",
       {{"environment_id", T::text, nullptr}},
       T::json,
       get_environment,
       0,
       kAdmin | kRouter | kReader,
       "an environment, its database and all its credentials (no secrets); envdb_reader: only "
       "inside the active organization"},
      {"set_environment_status",
       {{"environment_id", T::text, nullptr},
        {"status", T::text, nullptr},
        {"reason", T::text, "NULL"}},
       T::json,
       set_environment_status,
       kWrites,
       kAdmin,
       "move an environment through the lifecycle state machine; archived follows "
       "archive_environment's rules (without force), provisioning is retry_environment"},
      {"drop_environment_database",
       {{"environment_id", T::text, nullptr}, {"force", T::boolean, "false"}},
       T::json,
       drop_environment_database,
       kWrites,
       kAdmin,
       "drop an archived environment's database for good, once drop_grace_seconds have passed "
       "since the archive (force skips the wait, never for a protected environment); sqlite: "
       "the file is deleted now; postgres and turso: a drop_database job is queued and its "
       "completion records the drop"},
      {"archive_environment",
       {{"environment_id", T::text, nullptr}, {"force", T::boolean, "false"}},
       T::json,
       archive_environment,
       kWrites,
       kAdmin,
       "archive an environment for good and revoke its credentials; never the default one, a "
       "protected one only with force"},
      {"set_default_environment",
       {{"environment_id", T::text, nullptr}},
       T::json,
       set_default_environment,
       kWrites,
       kAdmin,
       "make an active environment its organization's default (the flag moves atomically)"},
      {"retry_environment",
       {{"environment_id", T::text, nullptr}},
       T::json,
       retry_environment,
       kWrites,
       kAdmin,
       "provision a failed environment again: the sqlite file now, or its create_database job "
       "back in the queue"},
  };
  for (auto& f : legacy::functions()) rows.push_back(std::move(f));
  return rows;
}

}  // namespace envdb::environments
