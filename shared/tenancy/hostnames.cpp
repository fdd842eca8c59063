#include "tenancy/hostnames.hpp"

#include "catalog/audit.hpp"
#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/ids.hpp"
#include "secrets/vault.hpp"
#include "tenancy/environments.hpp"
#include "tenancy/isolation.hpp"
#include "tenancy/policies.hpp"
#include "tenancy/resolve.hpp"

namespace envdb::hostnames {

namespace {

using T = api::Type;

// A DNS name is at most 253 characters; a final dot and a little slack are
// read before normalize refuses what is longer.
constexpr size_t kMaxHostnameArg = 256;

const char* const kHostnameColumns = "hostname, environment_id, organization_id, created_at";

Json hostname_json(const Row& row) {
  return Json{{"hostname", row.text("hostname")},
              {"environmentId", row.text("environment_id")},
              {"organizationId", row.text("organization_id")},
              {"createdAt", row.text("created_at")}};
}

std::string hostname_arg(api::Call& c) {
  return normalize("hostname", c.text("hostname", kMaxHostnameArg));
}

std::string unknown_hostname(const std::string& hostname) {
  return "hostname " + quote_value(hostname) + " names no environment";
}

audit::Event hostname_event(const char* action, const Row& row) {
  audit::Event e;
  e.action = action;
  e.organization_id = row.text("organization_id");
  e.environment_id = row.text("environment_id");
  e.subject_type = "hostname";
  e.subject_id = row.text("hostname");
  e.detail = Json{{"hostname", row.text("hostname")}};
  return e;
}

Value add_environment_hostname(api::Call& c) {
  std::string environment_id = c.text("environment_id", 128);
  require_id("environment_id", environment_id);
  const std::string hostname = hostname_arg(c);
  Store& store = c.store;
  Atomic tx(store);
  // In Postgres the environment row is held FOR SHARE until the transaction
  // ends, so an archive cannot slip in between the check and the insert.
  std::string sql = "SELECT id, organization_id, status FROM envdb.sys_environment WHERE id = $1";
  if (store.dialect() == Dialect::postgres) sql += " FOR SHARE";
  auto env = query_one(store, sql, {environment_id});
  if (!env) fail(Code::not_found, isolation::no_such_environment(environment_id));
  if (env->text("status") == "archived")
    fail(Code::conflict, "environment_id " + quote_value(environment_id) +
                             " is archived; an archived environment takes no new hostname");
  const std::string select = std::string("SELECT ") + kHostnameColumns +
                             " FROM envdb.sys_environment_hostname WHERE hostname = $1";
  if (auto held = query_one(store, select, {hostname})) {
    if (held->text("environment_id") != environment_id)
      fail(Code::already_exists,
           "hostname " + quote_value(hostname) + " already names environment " +
               quote_value(held->text("environment_id")) + "; remove it there first");
    tx.done();  // already this environment's: nothing to change
    return api::json_result(Json{{"hostname", hostname_json(*held)}});
  }
  // A concurrent add of the same name fails on the unique key (already_exists).
  execute(store,
          "INSERT INTO envdb.sys_environment_hostname (id, hostname, environment_id, "
          "organization_id, created_at) VALUES ($1, $2, $3, $4, $5::timestamptz)",
          {new_uuid_v7(), hostname, environment_id, env->text("organization_id"), now_iso()});
  auto row = query_one(store, select, {hostname});
  if (!row) throw Error(Code::internal, "hostname " + hostname + " vanished");
  audit::record(c.host, hostname_event("environment.add_hostname", *row));
  tx.done();
  return api::json_result(Json{{"hostname", hostname_json(*row)}});
}

Value remove_environment_hostname(api::Call& c) {
  const std::string hostname = hostname_arg(c);
  Store& store = c.store;
  Atomic tx(store);
  auto removed = query(store,
                       std::string("DELETE FROM envdb.sys_environment_hostname WHERE hostname = "
                                   "$1 RETURNING ") +
                           kHostnameColumns,
                       {hostname});
  if (removed.empty()) fail(Code::not_found, unknown_hostname(hostname));
  audit::record(c.host, hostname_event("environment.remove_hostname", removed.front()));
  tx.done();
  return api::json_result(Json{{"hostname", hostname_json(removed.front())}});
}

Value resolve_hostname(api::Call& c) {
  const std::string hostname = hostname_arg(c);
  std::string scope = c.opt_text("scope", 64).value_or("readwrite");
  // resolve::resolve checks the scope too; checked here first so that a bad
  // scope is invalid_parameter whether or not the hostname is known, as it is
  // for resolve_environment.
  if (!vault::is_scope(scope))
    fail(Code::invalid_parameter,
         "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
  std::string environment_id;
  {
    auto stmt = c.store.prepare(
        "SELECT environment_id FROM envdb.sys_environment_hostname WHERE hostname = $1");
    stmt->bind(1, hostname);
    if (!stmt->step()) fail(Code::not_found, unknown_hostname(hostname));
    const Value id = stmt->column(0);
    if (auto text = std::get_if<std::string>(&id)) environment_id = *text;
  }  // the statement is reset before the resolve runs
  // A user context resolves only its own environment; another environment's
  // hostname is answered as an unknown one, so it reveals nothing.
  if (c.host.context()) {
    const auto context = isolation::context_of(c.host);
    if (isolation::context_text(context, "userId") &&
        isolation::context_text(context, "environmentId") != environment_id)
      fail(Code::not_found, unknown_hostname(hostname));
  }
  return resolve::resolve(c, environment_id, std::move(scope));
}

Value find_environment(api::Call& c) {
  const std::string organization_slug = c.text("organization_slug", 64);
  require_slug("organization_slug", organization_slug);
  const std::string environment_slug = c.text("environment_slug", 64);
  require_slug("environment_slug", environment_slug);
  std::string sql =
      "SELECT e.id FROM envdb.sys_environment e JOIN envdb.sys_organization o "
      "ON o.id = e.organization_id WHERE o.slug = $1 AND e.slug = $2";
  std::vector<Value> args{organization_slug, environment_slug};
  // A caller below the router sees only its context's organization; slugs are
  // guessable, so another organization's environment is worded exactly as a
  // missing one.
  if (!c.host.caller_is_privileged()) {
    const auto organization =
        isolation::context_text(isolation::context_of(c.host), "organizationId");
    if (!organization)
      fail(Code::permission_denied,
           "no active environment: this role reads only inside the context a router set with "
           "set_active_environment in the same transaction");
    sql += " AND e.organization_id = $3";
    args.emplace_back(*organization);
  }
  auto row = query_one(c.store, sql, args);
  if (!row)
    fail(Code::not_found, "organization_slug " + quote_value(organization_slug) +
                              " has no environment_slug " + quote_value(environment_slug));
  // An ended trial is carried out here as by get_environment (SQLite).
  policies::observe(c.host, row->text("id"));
  return environments::environment_record(c.store, row->text("id"));
}

}  // namespace

std::string normalize(const std::string& field, const std::string& hostname) {
  std::string h = hostname;
  for (char& ch : h)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  if (!h.empty() && h.back() == '.') h.pop_back();
  bool ok = !h.empty() && h.size() <= 253;
  size_t label = 0;  // length of the label being read
  for (size_t i = 0; ok && i <= h.size(); ++i) {
    if (i == h.size() || h[i] == '.') {
      ok = label >= 1 && label <= 63 && h[i - 1] != '-';
      label = 0;
      continue;
    }
    const char ch = h[i];
    const bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
    ok = alnum || (ch == '-' && label > 0);
    ++label;
  }
  if (!ok)
    fail(Code::invalid_parameter,
         field + " " + quote_value(hostname) +
             " is not a DNS name (dot-separated labels of letters, digits and inner hyphens, at "
             "most 63 characters each and 253 in all; no port, scheme or path)");
  return h;
}

std::vector<api::Function> functions() {
  using namespace api;
  return {
      {"add_environment_hostname",
       {{"environment_id", T::text, nullptr}, {"hostname", T::text, nullptr}},
       T::json,
       add_environment_hostname,
       kWrites,
       kAdmin,
       "give an environment a hostname (stored in lower case without a final dot; a DNS name; "
       "unique across all environments, already_exists when another environment holds it; "
       "conflict for an archived environment); audited as environment.add_hostname"},
      {"remove_environment_hostname",
       {{"hostname", T::text, nullptr}},
       T::json,
       remove_environment_hostname,
       kWrites,
       kAdmin,
       "free a hostname (not_found when no environment holds it); audited as "
       "environment.remove_hostname"},
      {"resolve_hostname",
       {{"hostname", T::text, nullptr}, {"scope", T::text, "'readwrite'"}},
       T::json,
       resolve_hostname,
       0,
       kAdmin | kRouter,
       "resolve_environment for the environment a hostname names, with the same answer and "
       "role rules; under a user context another environment's hostname is not_found, as an "
       "unknown one"},
      {"find_environment",
       {{"organization_slug", T::text, nullptr}, {"environment_slug", T::text, nullptr}},
       T::json,
       find_environment,
       0,
       kAdmin | kRouter | kReader,
       "get_environment for the environment with these slugs; envdb_reader: only inside the "
       "active organization (another organization's is not_found)"},
  };
}

}  // namespace envdb::hostnames
