#include "tenancy/teardown.hpp"

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/function.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "jobs/turso.hpp"
#include "postgres/provisioner.hpp"
#include "secrets/credentials.hpp"
#include "tenancy/backups.hpp"
#include "tenancy/provision.hpp"

namespace envdb::teardown {

namespace {

using T = api::Type;

std::string hex_of_id(const std::string& id) {
  std::string out;
  for (char ch : id)
    if (ch != '-') out += ch;
  return out;
}

std::optional<Row> drop_under_way(Store& store, const std::string& database_id) {
  return query_one(store,
                   "SELECT id, status FROM envdb.sys_provisioning_job WHERE database_id = $1 AND "
                   "kind = 'drop_database' AND status IN ('pending', 'running') "
                   "ORDER BY created_at, id LIMIT 1",
                   {database_id});
}

Json job_json(Store& store, const std::optional<std::string>& job_id) {
  if (!job_id) return nullptr;
  return records::job_json(*query_one(store,
                                      std::string("SELECT ") + records::kJobColumns +
                                          " FROM envdb.sys_provisioning_job WHERE id = $1",
                                      {*job_id}));
}

}  // namespace

std::string archived_slug(const std::string& environment_id) {
  return "archived-" + hex_of_id(environment_id);
}

std::string deprovisioned_slug(const std::string& organization_id) {
  return "deprovisioned-" + hex_of_id(organization_id);
}

void mark_dropped(Store& store, const std::string& database_id, const std::string& now) {
  execute(store,
          "UPDATE envdb.sys_environment_database SET dropped_at = $2::timestamptz, "
          "updated_at = $2::timestamptz WHERE id = $1 AND dropped_at IS NULL",
          {database_id, now});
}

std::optional<std::string> drop_database(Host& host, const Row& env, const Row& db, bool force,
                                         const std::string& archived_at) {
  Store& store = host.store();
  const std::string id = env.text("id");
  const std::string database_id = db.text("id");
  const std::string driver = db.text("driver");
  const std::string database_name = db.text("database_name");
  std::optional<std::string> job_id;
  if (driver == "sqlite") {
    // The file first: the registry says "dropped" only once it is gone.
    const std::string path =
        provision::sqlite_database_path(host, database_name, db.opt_text("database_url"));
    provision::delete_database_file(path);
  }
  Atomic tx(store);
  const std::string now = now_iso();
  // Archiving kept the backups; the drop takes them too.
  backups::drop_all(host, id);
  if (driver == "sqlite") {
    mark_dropped(store, database_id, now);
  } else {
    const Row job = driver == "turso"
                        ? turso::queue_drop(host, env, db)
                        : queue::enqueue(host, {id, database_id, "drop_database", driver,
                                                Json{{"databaseName", database_name},
                                                     {"region", db.text("region")}}});
    job_id = job.text("id");
  }
  audit::record(host, {"environment.drop_database", env.text("organization_id"), id,
                       "environment_database", database_id,
                       Json{{"driver", driver},
                            {"databaseName", database_name},
                            {"force", force},
                            {"archivedAt", archived_at},
                            {"jobId", job_id ? Json(*job_id) : Json(nullptr)}}});
  tx.done();
  return job_id;
}

int64_t archive(Host& host, const Row& env, Json detail, const std::string& cancel_reason) {
  Store& store = host.store();
  const std::string id = env.text("id");
  auto db = records::database_of_environment(store, id);
  provision::cancel_pending_jobs(store, id, cancel_reason);
  std::vector<std::string> live;  // the credentials archiving revokes
  if (db)
    for (const Row& r : query(store,
                              "SELECT id FROM envdb.sys_database_credential WHERE database_id = "
                              "$1 AND status <> 'revoked' ORDER BY id",
                              {db->text("id")}))
      live.push_back(r.text("id"));
  const int64_t revoked = db ? credentials::revoke_all(host, db->text("id")) : 0;
  // postgres: every login of the database loses LOGIN and its sessions;
  // turso: every token of the database is invalidated.
  if (db) postgres::queue_job(host, db->text("id"), "disable_login", std::nullopt);
  if (db) turso::queue(host, db->text("id"), "archive", live);
  execute(store,
          "UPDATE envdb.sys_environment SET status = 'archived', updated_at = $2::timestamptz, "
          "archived_at = $2::timestamptz WHERE id = $1",
          {id, now_iso()});
  Json full{{"from", env.text("status")}};
  for (auto& [k, v] : detail.items()) full[k] = v;
  full["revokedCredentials"] = revoked;
  audit::record(host,
                {"environment.archive", env.text("organization_id"), id, "environment", id, full});
  return revoked;
}

void release_slug(Host& host, const Row& env) {
  const std::string id = env.text("id");
  const std::string tombstone = archived_slug(id);
  Atomic tx(host.store());
  execute(host.store(),
          "UPDATE envdb.sys_environment SET slug = $2, updated_at = $3::timestamptz "
          "WHERE id = $1 AND status = 'archived'",
          {id, tombstone, now_iso()});
  audit::record(host, {"environment.release_slug", env.text("organization_id"), id, "environment",
                       id, Json{{"slug", env.text("slug")}, {"archivedSlug", tombstone}}});
  tx.done();
}

// Every environment of the organization is archived (the default and
// protected ones too: deprovisioning is the explicit removal of all of them),
// its credentials revoked and its pending work cancelled; its database is
// dropped through the one drop path now with force (or when
// drop_grace_seconds have already passed since its archive), else it is left
// for drop_environment_database once the grace has passed. The organization
// keeps its row (and the environments theirs) under deprovisioned_slug(id),
// with deprovisioned_at set, so its slug can be provisioned again and the
// audit trail still names it.
Value deprovision_organization(api::Call& c) {
  Host& host = c.host;
  Store& store = c.store;
  const std::string id = c.text("organization_id");
  require_id("organization_id", id);
  const bool force = c.opt_boolean("force").value_or(false);
  Row org = records::load_organization(store, "organization_id", id);
  if (auto at = org.opt_text("deprovisioned_at"))
    fail(Code::invalid_transition,
         "organization_id " + quote_value(id) + " was already deprovisioned at " + *at);
  const int64_t grace = settings::setting_seconds(host, "drop_grace_seconds");
  const std::vector<Row> environments =
      query(store,
            std::string("SELECT ") + records::kEnvironmentColumns +
                " FROM envdb.sys_environment WHERE organization_id = $1 ORDER BY created_at, id",
            {id});

  Atomic tx(store);
  const std::string now = now_iso();
  Json listed = Json::array();
  int64_t dropped_now = 0, drop_later = 0;
  for (const Row& listed_env : environments) {
    const std::string environment_id = listed_env.text("id");
    auto db = records::database_of_environment(store, environment_id);
    if (listed_env.text("status") != "archived")
      (void)archive(host, listed_env, Json{{"force", force}, {"deprovisionOrganization", true}},
                    "cancelled: the organization was deprovisioned");
    const Row env = records::load_environment(store, "environment_id", environment_id);
    const std::string archived_at = env.opt_text("archived_at").value_or(env.text("updated_at"));
    std::optional<std::string> job_id;
    Json drop_from = nullptr;
    if (db && !db->opt_text("dropped_at")) {
      if (auto under_way = drop_under_way(store, db->text("id"))) {
        job_id = under_way->text("id");
      } else {
        const int64_t allowed = ms_from_iso(archived_at).value_or(0) + grace * 1000;
        if (force || grace == 0 || now_ms() >= allowed) {
          job_id = drop_database(host, env, *db, force, archived_at);
          ++dropped_now;
        } else {
          drop_from = iso_from_ms(allowed);
          ++drop_later;
        }
      }
    }
    auto db_now = records::database_of_environment(store, environment_id);
    listed.push_back(Json{{"environment",
                           records::environment_json(
                               records::load_environment(store, "environment_id", environment_id))},
                          {"database", db_now ? records::database_json(*db_now) : Json(nullptr)},
                          {"job", job_json(store, job_id)},
                          {"dropFrom", drop_from}});
  }
  const std::string tombstone = deprovisioned_slug(id);
  execute(store,
          "UPDATE envdb.sys_organization SET slug = $2, deprovisioned_at = $3::timestamptz, "
          "updated_at = $3::timestamptz WHERE id = $1",
          {id, tombstone, now});
  Json detail{{"slug", org.text("slug")},
              {"deprovisionedSlug", tombstone},
              {"force", force},
              {"environments", static_cast<int64_t>(environments.size())},
              {"databasesDropped", dropped_now},
              {"databasesLeftForGrace", drop_later}};
  audit::record(host, {"organization.deprovision", id, std::nullopt, "organization", id, detail});
  tx.done();

  Json warnings = Json::array();
  if (drop_later > 0)
    warnings.push_back(std::to_string(drop_later) +
                       " database(s) are kept until drop_grace_seconds have passed since the "
                       "archive; drop them then with drop_environment_database (see dropFrom), or "
                       "deprovision with force => true to drop them now");
  return api::json_result(Json{{"organization", records::organization_json(
                                                    records::load_organization(store, "id", id))},
                               {"environments", listed},
                               {"warnings", warnings}});
}

std::vector<api::Function> functions() {
  return {
      {"deprovision_organization",
       {{"organization_id", T::text, nullptr}, {"force", T::boolean, "false"}},
       T::json,
       deprovision_organization,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "archive every environment of an organization (the default and protected ones too), "
       "revoke their credentials, drop their databases (now with force, else once "
       "drop_grace_seconds have passed, with drop_environment_database) and tombstone the "
       "organization: it keeps its rows and audit trail under the slug deprovisioned-<id hex> "
       "and its slug can be provisioned again"},
  };
}

}  // namespace envdb::teardown
