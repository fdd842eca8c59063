#include "tenancy/policies.hpp"

#include <algorithm>
#include <cstring>

#include "catalog/audit.hpp"
#include "catalog/records.hpp"
#include "catalog/settings.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "core/store.hpp"
#include "jobs/turso.hpp"
#include "secrets/credentials.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/provision.hpp"
#include "tenancy/teardown.hpp"
#include "tenancy/usage.hpp"

namespace envdb::policies {

namespace {

using T = api::Type;

constexpr int64_t kDayMs = 86400 * 1000LL;
// Longer settings are taken as this (a century), so no sum overflows.
constexpr int64_t kMaxSpanMs = 36500 * kDayMs;
constexpr int64_t kMaxExtensionDays = 3650;

int64_t span_ms(Host& host, const char* seconds_key, const char* days_key) {
  const int64_t seconds = settings::setting_seconds(host, seconds_key);
  if (seconds > 0) return std::min(seconds, kMaxSpanMs / 1000) * 1000;
  return std::min(settings::setting_number(host, days_key), kMaxSpanMs / kDayMs) * kDayMs;
}

int64_t grace_ms(Host& host) { return span_ms(host, "trial_grace_seconds", "trial_grace_days"); }

bool is_sqlite(Host& host) { return std::strcmp(host.name(), "sqlite") == 0; }

std::string for_update(Store& store) { return is_postgres(store) ? " FOR UPDATE" : ""; }

void set_status(Host& host, const Row& env, const std::string& to, const std::string& now) {
  execute(
      host.store(),
      "UPDATE envdb.sys_environment SET status = $2, updated_at = $3::timestamptz WHERE id = $1",
      {env.text("id"), to, now});
  // turso: a suspension invalidates the database's tokens, a resumption
  // mints the live ones again (as set_environment_status does).
  if (auto db = records::database_of_environment(host.store(), env.text("id")))
    turso::queue(host, db->text("id"), to == "suspended" ? "suspend" : "resume", {});
}

// The trial steps due for one environment row (kEnvironmentColumns), in the
// caller's transaction: suspended at its end, archived once the grace has
// passed too. Returns {suspended, archived}.
std::pair<bool, bool> enforce_trial(Host& host, Row env, int64_t now, int64_t grace) {
  const auto end_text = env.opt_text("expires_at");
  if (env.text("env_type") != "trial" || !end_text) return {false, false};
  const auto end = ms_from_iso(*end_text);
  if (!end || *end > now) return {false, false};
  const std::string id = env.text("id");
  const std::string now_text = iso_from_ms(now);
  bool suspended = false, archived = false;
  if (env.text("status") == "active") {
    set_status(host, env, "suspended", now_text);
    audit::record(host,
                  {"environment.trial_expire", env.text("organization_id"), id, "environment", id,
                   Json{{"expiresAt", *end_text}, {"from", "active"}, {"to", "suspended"}}});
    suspended = true;
    env = records::load_environment(host.store(), "environment_id", id);
  }
  if (env.text("status") == "suspended" && *end <= now - grace) {
    teardown::archive(host, env,
                      Json{{"policy", "trial"}, {"expiresAt", *end_text}, {"graceMs", grace}},
                      "cancelled: the trial ended");
    archived = true;
  }
  return {suspended, archived};
}

std::string trial_environment_id(api::Call& c) {
  std::string id = c.text("environment_id");
  require_id("environment_id", id);
  return id;
}

Value extend_environment_trial(api::Call& c) {
  const std::string id = trial_environment_id(c);
  const auto days = c.opt_integer("days");
  if (!days) fail(Code::invalid_parameter, "days is required");
  if (*days < 1 || *days > kMaxExtensionDays)
    fail(Code::invalid_parameter, "days " + std::to_string(*days) + " must be between 1 and " +
                                      std::to_string(kMaxExtensionDays));
  Host& host = c.host;
  Store& store = host.store();
  Atomic tx(store);
  auto locked = query_one(store,
                          "SELECT id FROM envdb.sys_environment WHERE id = $1" + for_update(store),
                          {id});
  Row env = records::load_environment(store, "environment_id", id);
  (void)locked;
  if (env.text("env_type") != "trial")
    fail(Code::conflict, "environment_id " + quote_value(id) + " is a " + env.text("env_type") +
                             " environment, not a trial; only a trial can be extended");
  const std::string status = env.text("status");
  if (status == "archived" || status == "failed")
    fail(Code::invalid_transition, "environment_id " + quote_value(id) + " is " + status +
                                       "; only a provisioning, active or suspended trial can be "
                                       "extended");
  const int64_t allowed = settings::setting_number(host, "trial_max_extensions");
  const int64_t done = env.integer("trial_extensions");
  if (done >= allowed)
    fail(Code::conflict, "environment_id " + quote_value(id) + " was already extended " +
                             std::to_string(done) + " time(s); trial_max_extensions allows " +
                             std::to_string(allowed));
  const int64_t now = now_ms();
  const auto old_text = env.opt_text("expires_at");
  const int64_t old_end = old_text ? ms_from_iso(*old_text).value_or(now) : now;
  const std::string new_end = iso_from_ms(std::max(old_end, now) + *days * kDayMs);
  const std::string now_text = iso_from_ms(now);
  execute(store,
          "UPDATE envdb.sys_environment SET expires_at = $2::timestamptz, trial_extensions = "
          "trial_extensions + 1, updated_at = $3::timestamptz WHERE id = $1",
          {id, new_end, now_text});
  // A trial suspended because it ended comes back with its new end.
  const bool resumed = status == "suspended" && old_end <= now;
  if (resumed) {
    lifecycle::require(id, status, "active");
    set_status(host, env, "active", now_text);
  }
  audit::record(host,
                {"environment.trial_extend", env.text("organization_id"), id, "environment", id,
                 Json{{"days", *days},
                      {"previousExpiresAt", json_text(old_text)},
                      {"expiresAt", new_end},
                      {"extensions", done + 1},
                      {"resumed", resumed}}});
  tx.done();
  return api::json_result(
      Json{{"environment",
            records::environment_json(records::load_environment(store, "environment_id", id))}});
}

// No function changed env_type before: this is the one way, and the place
// where converting a trial clears its end (and making one a trial sets it).
Value set_environment_type(api::Call& c) {
  const std::string id = trial_environment_id(c);
  const std::string type = c.text("env_type", 64);
  if (!provision::is_env_type(type) || type == "default")
    fail(Code::invalid_parameter, "env_type " + quote_value(type) +
                                      " is not an environment type it can become (sandbox, "
                                      "development, production, trial)");
  Host& host = c.host;
  Store& store = host.store();
  Atomic tx(store);
  (void)query_one(store, "SELECT id FROM envdb.sys_environment WHERE id = $1" + for_update(store),
                  {id});
  Row env = records::load_environment(store, "environment_id", id);
  const std::string from = env.text("env_type");
  if (from == "default")
    fail(Code::conflict, "environment_id " + quote_value(id) +
                             " is its organization's default environment, whose type stays "
                             "default");
  if (env.text("status") == "archived")
    fail(Code::invalid_transition,
         "environment_id " + quote_value(id) + " is archived; its type no longer changes");
  if (from != type) {
    const std::optional<std::string> end =
        type == "trial" ? std::optional<std::string>(trial_end(host, now_ms())) : std::nullopt;
    execute(store,
            "UPDATE envdb.sys_environment SET env_type = $2, expires_at = $3::timestamptz, "
            "updated_at = $4::timestamptz WHERE id = $1",
            {id, type, optional_value(end), now_iso()});
    audit::record(host, {"environment.set_type", env.text("organization_id"), id, "environment", id,
                         Json{{"from", from},
                              {"to", type},
                              {"previousExpiresAt", json_text(env.opt_text("expires_at"))},
                              {"expiresAt", json_text(end)}}});
  }
  tx.done();
  return api::json_result(
      Json{{"environment",
            records::environment_json(records::load_environment(store, "environment_id", id))}});
}

Value enforce_policies(api::Call& c) { return api::json_result(sweep(c.host)); }

}  // namespace

std::string trial_end(Host& host, int64_t now) {
  return iso_from_ms(now + span_ms(host, "trial_seconds", "trial_days"));
}

Json sweep(Host& host) {
  Store& store = host.store();
  Atomic tx(store);
  Json out{{"expiredCredentials", credentials::expire_due(host)},
           {"suspendedTrials", Json::array()},
           {"archivedTrials", Json::array()}};
  const int64_t now = now_ms();
  const int64_t grace = grace_ms(host);
  const auto due = query(store,
                         "SELECT id FROM envdb.sys_environment WHERE env_type = 'trial' AND "
                         "status IN ('active', 'suspended') AND expires_at <= $1::timestamptz "
                         "ORDER BY id" +
                             for_update(store),
                         {iso_from_ms(now)});
  for (const Row& r : due) {
    Row env = records::load_environment(store, "environment_id", r.text("id"));
    const auto [suspended, archived] = enforce_trial(host, env, now, grace);
    if (suspended) out["suspendedTrials"].push_back(r.text("id"));
    if (archived) out["archivedTrials"].push_back(r.text("id"));
  }
  out["measured"] = usage::measure_due(host);
  const Json decided = usage::decide_all(host);
  out["readOnly"] = decided["readOnly"];
  out["writable"] = decided["writable"];
  tx.done();
  return out;
}

void observe(Host& host, const std::string& environment_id) {
  if (!is_sqlite(host) || !host.store().writable()) return;
  try {
    Store& store = host.store();
    auto env = query_one(store,
                         "SELECT id FROM envdb.sys_environment WHERE id = $1 AND env_type = "
                         "'trial' AND status IN ('active', 'suspended') AND expires_at <= "
                         "$2::timestamptz",
                         {environment_id, now_iso()});
    if (!env) return;
    Atomic tx(store);
    enforce_trial(host, records::load_environment(store, "environment_id", environment_id),
                  now_ms(), grace_ms(host));
    tx.done();
  } catch (const Error&) {
    // A busy or read-only database: the next call, or enforce_policies(), does it.
  }
}

std::vector<api::Function> functions() {
  using api::kAdmin;
  using api::kRequestForm;
  using api::kWrites;
  return {
      {"extend_environment_trial",
       {{"environment_id", T::text, nullptr}, {"days", T::integer, nullptr}},
       T::json,
       extend_environment_trial,
       kWrites | kRequestForm,
       kAdmin,
       "move a trial's end days later (from its end, or from now when it has passed; a trial "
       "suspended because it ended is active again), at most trial_max_extensions times "
       "(conflict after that)"},
      {"set_environment_type",
       {{"environment_id", T::text, nullptr}, {"env_type", T::text, nullptr}},
       T::json,
       set_environment_type,
       kWrites | kRequestForm,
       kAdmin,
       "change an environment's type (sandbox, development, production, trial); converting a "
       "trial clears its end, making one a trial gives it trial_days (trial_seconds)"},
      {"enforce_policies",
       {},
       T::json,
       enforce_policies,
       kWrites,
       kAdmin,
       "the policy sweep now: credentials past their deadline, trials past their end "
       "(suspended) or past their grace (archived), usage measured where due, storage limits "
       "decided; the Postgres worker runs the same sweep every pass"},
  };
}

}  // namespace envdb::policies
