#include "tenancy/move.hpp"

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "jobs/queue.hpp"
#include "tenancy/copy.hpp"

namespace envdb::move {

namespace {

using T = api::Type;

Json text_or_null(const std::optional<std::string>& v) { return v ? Json(*v) : Json(nullptr); }

// The host a move goes to, by id or name, with what placement looks at.
Row target_host(Store& store, const std::string& id_or_name) {
  auto row = query_one(
      store,
      "SELECT h.id, h.name, h.region, h.drained, h.capacity, h.last_error_at, (h.last_error_at IS "
      "NULL OR (h.last_contact_at IS NOT NULL AND h.last_contact_at >= h.last_error_at)) AS "
      "healthy, (SELECT count(*) FROM envdb.sys_environment_database d WHERE d.host_id = h.id "
      "AND d.dropped_at IS NULL) AS live FROM envdb.sys_database_host h WHERE h.id = $1 OR "
      "h.name = $1 ORDER BY CASE WHEN h.id = $1 THEN 0 ELSE 1 END LIMIT 1",
      {id_or_name});
  if (!row) fail(Code::not_found, "host_id " + quote_value(id_or_name) + " names no database host");
  return std::move(*row);
}

Value move_environment(api::Call& c) {
  const std::string id = c.text("environment_id");
  require_id("environment_id", id);
  const auto host_arg = c.opt_text("host_id", 64);
  if (!host_arg || host_arg->empty())
    fail(Code::invalid_parameter,
         "host_id must name a registered database host (an id or a name) to move to");
  Store& store = c.store;
  Row env = records::load_environment(store, "environment_id", id);
  auto db = copy::database_with_host(store, id);
  if (!db) fail(Code::conflict, "environment_id " + quote_value(id) + " has no database");
  const std::string driver = db->text("driver");
  if (driver != "postgres")
    fail(Code::conflict, "environment_id " + quote_value(id) + " uses driver " + driver +
                             "; only postgres-driver databases live on database hosts and move "
                             "between them");
  const std::string status = env.text("status");
  if (status != "active" && status != "suspended")
    fail(Code::invalid_transition, "environment_id " + quote_value(id) + " is " + status +
                                       "; only an active or suspended environment moves");
  if (!is_null((*db)["dropped_at"]) || is_null((*db)["provisioned_at"]))
    fail(Code::invalid_transition,
         "environment_id " + quote_value(id) + ": its database is " +
             (is_null((*db)["provisioned_at"]) ? "not provisioned" : "dropped"));
  Row target = target_host(store, *host_arg);
  const std::string to = target.text("id");
  const std::string name = target.text("name");
  const auto from = db->opt_text("host_id");
  if (from && *from == to)
    fail(Code::conflict, "host_id " + quote_value(name) + " is where environment " +
                             quote_value(id) + "'s database already lives");
  if (target.text("region") != db->text("region"))
    fail(Code::conflict, "host_id " + quote_value(name) + " serves region " +
                             quote_value(target.text("region")) + ", the database is in region " +
                             quote_value(db->text("region")) + "; a move stays in its region");
  if (target.boolean("drained"))
    fail(Code::conflict, "host_id " + quote_value(name) + " is drained; it takes no database");
  if (!target.boolean("healthy"))
    fail(Code::conflict, "host_id " + quote_value(name) + " failed its last contact at " +
                             target.text("last_error_at") +
                             "; it takes no database until it "
                             "answers again");
  if (!is_null(target["capacity"]) && target.integer("live") >= target.integer("capacity"))
    fail(Code::conflict, "host_id " + quote_value(name) + " is full (" +
                             std::to_string(target.integer("live")) + " of " +
                             std::to_string(target.integer("capacity")) + ")");
  if (auto n = query_one(store,
                         "SELECT count(*) AS n FROM envdb.sys_environment_backup WHERE "
                         "environment_id = $1 AND status IN ('pending', 'ready', 'deleting')",
                         {id});
      n && n->integer("n") > 0)
    fail(Code::conflict, "environment_id " + quote_value(id) + " has " +
                             std::to_string(n->integer("n")) +
                             " backup(s) on its current server, which do not move; delete them "
                             "first (delete_environment_backup)");
  // An earlier copy of this database still waiting there for its drop would
  // take the new one with it.
  for (const Row& j : query(store,
                            "SELECT payload FROM envdb.sys_provisioning_job WHERE database_id = "
                            "$1 AND kind = 'retire_database' AND status IN ('pending', 'running')",
                            {db->text("id")})) {
    Json p = Json::parse(j.text("payload"), nullptr, false);
    if (p.is_object() && p.contains("hostId") && p["hostId"].is_string() && p["hostId"] == to)
      fail(Code::conflict, "host_id " + quote_value(name) +
                               " still holds an earlier copy of "
                               "this database, dropped once its drop grace has passed; move it "
                               "there after that");
  }

  Atomic tx(store);
  const std::string previous = copy::hold(c.host, env);
  Json payload = copy::job_payload(c.host, *db, previous);
  payload["targetHostId"] = to;
  Row job = queue::enqueue(c.host, {id, db->text("id"), "move_database", "postgres", payload});
  audit::record(c.host, {"environment.move", env.text("organization_id"), id, "environment", id,
                         Json{{"fromHostId", text_or_null(from)},
                              {"toHostId", to},
                              {"toHostName", name},
                              {"jobId", job.text("id")}}});
  Json out{{"environment",
            records::environment_json(records::load_environment(store, "environment_id", id))},
           {"fromHostId", text_or_null(from)},
           {"toHostId", to},
           {"job", Json{{"id", job.text("id")},
                        {"kind", job.text("kind")},
                        {"status", job.text("status")}}}};
  tx.done();
  return api::json_result(out);
}

}  // namespace

void job_done(Host& host, const Row& job, const std::optional<std::string>& database_url,
              const std::string& now) {
  const std::string kind = job.text("kind");
  if (kind == "retire_database" && database_url)
    fail(Code::invalid_parameter, "database_url cannot be given for a retire_database job");
  if (kind != "move_database") return;
  if (!database_url)
    fail(Code::invalid_parameter,
         "database_url: a move_database job reports the database's URL on its new host");
  Store& store = host.store();
  Json p = Json::object();
  if (auto text = job.opt_text("payload")) p = Json::parse(*text, nullptr, false);
  if (!p.is_object() || !p.contains("targetHostId") || !p["targetHostId"].is_string())
    throw Error(Code::internal, "move job " + job.text("id") + " names no target host");
  const std::string database_id = job.text("database_id");
  auto db = query_one(store,
                      "SELECT database_name, host_id FROM envdb.sys_environment_database WHERE "
                      "id = $1",
                      {database_id});
  if (!db) throw Error(Code::internal, "move job " + job.text("id") + " has no database");
  const auto from = db->opt_text("host_id");
  const std::string to = p["targetHostId"].get<std::string>();
  // vault::set_database_url (record_job_outcome) wrote the URL; the host goes
  // with it in the same transaction.
  execute(store,
          "UPDATE envdb.sys_environment_database SET host_id = $2, updated_at = $3::timestamptz "
          "WHERE id = $1",
          {database_id, to, now});
  int64_t grace = 0;
  try {
    grace = std::stoll(settings::setting(host, "drop_grace_seconds"));
  } catch (const std::exception&) {
  }
  const std::string drop_after = iso_from_ms(now_ms() + grace * 1000);
  Row retire =
      queue::enqueue(host, {job.text("environment_id"), database_id, "retire_database", "postgres",
                            Json{{"databaseName", db->text("database_name")},
                                 {"hostId", text_or_null(from)},
                                 {"dropAfter", drop_after}}});
  Row env = records::load_environment(store, "environment_id", job.text("environment_id"));
  audit::record(host, {"environment.moved", env.text("organization_id"), env.text("id"),
                       "environment", env.text("id"),
                       Json{{"fromHostId", text_or_null(from)},
                            {"toHostId", to},
                            {"databaseUrl", *database_url},
                            {"jobId", job.text("id")},
                            {"retireJobId", retire.text("id")},
                            {"dropAfter", drop_after}}});
}

std::vector<api::Function> functions() {
  return {
      {"move_environment",
       {{"environment_id", T::text, nullptr}, {"host_id", T::text, nullptr}},
       T::json,
       move_environment,
       api::kWrites | api::kRequestForm,
       api::kAdmin,
       "move a postgres-driver environment's database to another registered database host of "
       "its region (by id or name; not drained, healthy, not full): the environment is in "
       "maintenance until its move_database job has copied the database there with its roles "
       "and logins (credentials keep their tokens); the job's completion switches the "
       "database's host and URL in one transaction, and the old copy is dropped once "
       "drop_grace_seconds have passed. The sqlite and turso drivers have no hosts (conflict)"},
  };
}

}  // namespace envdb::move
