#include "postgres/servers.hpp"

#include <algorithm>
#include <cstdlib>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/json.hpp"
#include "postgres/converge.hpp"
#include "postgres/copier.hpp"
#include "postgres/hosts.hpp"
#include "postgres/statements.hpp"
#include "secrets/crypto.hpp"

namespace envdb {

std::unique_ptr<postgres::ServerSession> Host::connect_server(const postgres::Server& server) {
  (void)server;
  return nullptr;
}

}  // namespace envdb

namespace envdb::servers {

const char* const kFactsSql =
    "SELECT pg_catalog.json_build_object("
    "'databases', COALESCE((SELECT pg_catalog.json_agg(d.datname::text ORDER BY d.datname) "
    "FROM pg_catalog.pg_database d WHERE d.datname LIKE 'env-%'), '[]'::json), "
    "'roles', COALESCE((SELECT pg_catalog.json_agg(pg_catalog.json_build_object("
    "'name', r.rolname::text, 'login', r.rolcanlogin, "
    "'validUntil', CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = 'infinity' THEN NULL "
    "ELSE (pg_catalog.date_part('epoch', r.rolvaliduntil) * 1000)::bigint END, "
    "'memberOf', COALESCE((SELECT pg_catalog.json_agg(g.rolname::text ORDER BY g.rolname) "
    "FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid "
    "WHERE m.member = r.oid), '[]'::json)) ORDER BY r.rolname) "
    "FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'env-%'), '[]'::json))::text";

namespace {

// VALID UNTIL is kept to the microsecond, expires_at to the millisecond.
constexpr int64_t kValidUntilSlackMs = 1000;

std::string ident(const std::string& name) { return postgres::quote_identifier(name); }

std::string terminate_sql(const std::string& role) {
  return "SELECT count(pg_catalog.pg_terminate_backend(pid)) FROM pg_catalog.pg_stat_activity "
         "WHERE usename = " +
         postgres::quote_literal(role);
}

std::string until_text(const std::optional<int64_t>& ms) {
  return ms ? iso_from_ms(*ms) : std::string("no limit");
}

bool bad_facts() {
  fail(Code::invalid_parameter, "server facts are not the JSON object kFactsSql answers");
}

}  // namespace

Observed parse_facts(const std::string& text) {
  const Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("databases") || !j.contains("roles") ||
      !j["databases"].is_array() || !j["roles"].is_array())
    bad_facts();
  Observed o;
  for (const Json& d : j["databases"]) {
    if (!d.is_string()) bad_facts();
    o.databases.insert(d.get<std::string>());
  }
  for (const Json& r : j["roles"]) {
    if (!r.is_object() || !r.contains("name") || !r["name"].is_string() || !r.contains("login") ||
        !r["login"].is_boolean())
      bad_facts();
    ObservedRole role;
    role.login = r["login"].get<bool>();
    if (r.contains("validUntil") && r["validUntil"].is_number())
      role.valid_until_ms = r["validUntil"].get<int64_t>();
    if (r.contains("memberOf") && r["memberOf"].is_array())
      for (const Json& m : r["memberOf"])
        if (m.is_string()) role.member_of.insert(m.get<std::string>());
    o.roles[r["name"].get<std::string>()] = std::move(role);
  }
  return o;
}

std::string url_database(const std::string& url) {
  const std::string path = url.substr(0, url.find('?'));
  const size_t scheme = path.find("://");
  const size_t slash = path.rfind('/');
  if (scheme == std::string::npos || slash == std::string::npos || slash < scheme + 3) return "";
  return path.substr(slash + 1);
}

Expected expected_for(
    Store& store, const std::optional<std::string>& host_id, int64_t now_ms,
    const std::function<bool(const std::string&, const std::optional<std::string>&)>& here) {
  Expected out;
  out.dedicated = host_id.has_value();
  const std::string where = host_id ? "d.host_id = $1" : "d.host_id IS NULL";
  std::vector<Value> params;
  if (host_id) params.push_back(*host_id);
  for (const Row& d :
       query(store,
             "SELECT d.id, d.database_name, d.database_url, d.environment_id, e.organization_id, "
             "e.status, "
             "d.dropped_at, (d.provisioned_at IS NOT NULL) AS provisioned, EXISTS (SELECT 1 FROM "
             "envdb.sys_provisioning_job j WHERE j.database_id = d.id AND j.status IN "
             "('pending', 'running')) AS in_flight FROM envdb.sys_environment_database d JOIN "
             "envdb.sys_environment e ON e.id = d.environment_id WHERE d.driver = 'postgres' AND " +
                 where + " ORDER BY d.database_name",
             params)) {
    ExpectedDatabase db;
    db.database_id = d.text("id");
    db.database_name = d.text("database_name");
    db.environment_id = d.text("environment_id");
    db.organization_id = d.text("organization_id");
    db.dropped = d.opt_text("dropped_at").has_value();
    db.in_flight = d.boolean("in_flight") || (!db.dropped && !d.boolean("provisioned"));
    if (here && !db.in_flight && !here(db.database_name, d.opt_text("database_url"))) continue;
    try {
      db.roles = postgres::roles_for(db.database_name);
    } catch (const Error&) {
      continue;  // not a name envdb made; the row checks report it
    }
    const std::string env_status = d.text("status");
    for (const Row& c : query(store,
                              "SELECT id, scope, status, expires_at FROM "
                              "envdb.sys_database_credential WHERE database_id = $1 ORDER BY id",
                              {db.database_id})) {
      ExpectedLogin l;
      l.credential_id = c.text("id");
      l.name = postgres::login_name(db.database_name, c.text("scope"), l.credential_id);
      l.scope_role = db.roles.of_scope(c.text("scope"));
      l.live = !db.dropped &&
               converge::login_live(c.text("status"), c.opt_text("expires_at"), env_status, now_ms);
      if (auto e = c.opt_text("expires_at")) l.valid_until_ms = ms_from_iso(*e);
      db.logins.push_back(std::move(l));
    }
    out.databases.push_back(std::move(db));
  }
  // A move's other server (tenancy/move): the target while a move_database
  // job builds the database there, the server it left until retire_database
  // drops the old copy. The worker is working on both: not judged.
  for (const Row& j : query(store,
                            "SELECT j.kind, j.payload, d.id, d.database_name, d.environment_id, "
                            "e.organization_id FROM envdb.sys_provisioning_job j JOIN "
                            "envdb.sys_environment_database d ON d.id = j.database_id JOIN "
                            "envdb.sys_environment e ON e.id = d.environment_id WHERE j.kind IN "
                            "('move_database', 'retire_database') AND j.status IN ('pending', "
                            "'running') ORDER BY d.database_name")) {
    const Json p = Json::parse(j.opt_text("payload").value_or("{}"), nullptr, false);
    const char* key = j.text("kind") == "move_database" ? "targetHostId" : "hostId";
    if (!p.is_object() || !p.contains(key)) continue;
    const std::optional<std::string> there =
        p[key].is_string() ? std::optional<std::string>(p[key].get<std::string>()) : std::nullopt;
    if (there != host_id) continue;
    ExpectedDatabase db;
    db.database_id = j.text("id");
    db.database_name = j.text("database_name");
    db.environment_id = j.text("environment_id");
    db.organization_id = j.text("organization_id");
    db.in_flight = true;
    out.databases.push_back(std::move(db));
  }
  return out;
}

namespace {

// A finding about one of the catalog's databases.
Finding database_finding(const ExpectedDatabase& db, const char* kind, const char* table,
                         const std::string& id) {
  Finding f;
  f.kind = kind;
  f.table = table;
  f.id = id;
  f.database_id = db.database_id;
  f.environment_id = db.environment_id;
  f.organization_id = db.organization_id;
  return f;
}

// envdb's scope roles of a database never log in.
void check_scope_roles(const ExpectedDatabase& db, const Observed& observed,
                       const std::string& server, std::set<std::string>& explained,
                       std::vector<Finding>& out) {
  for (const std::string* scope_role :
       {&db.roles.owner, &db.roles.admin, &db.roles.readwrite, &db.roles.readonly}) {
    explained.insert(*scope_role);
    auto it = observed.roles.find(*scope_role);
    if (it == observed.roles.end() || !it->second.login) continue;
    Finding f = database_finding(db, "login_mismatch", "sys_environment_database", db.database_id);
    f.role = *scope_role;
    f.detail = "role " + quote_value(*scope_role) + " on " + server +
               " can log in; envdb's scope roles never do";
    f.statements = {"ALTER ROLE " + ident(*scope_role) + " NOLOGIN", terminate_sql(*scope_role)};
    f.action = "NOLOGIN, sessions ended";
    out.push_back(std::move(f));
  }
}

// What is wrong with a credential's login role, the statements that fix it
// and what they do (all empty when nothing is).
struct LoginRepair {
  std::vector<std::string> wrong, fix, action;
};

LoginRepair login_repair(const ExpectedLogin& l, const ObservedRole& r) {
  LoginRepair p;
  if (!l.live && r.login) {
    p.wrong.push_back(
        "can log in although its credential is revoked, expired or its "
        "environment is not active");
    p.fix.push_back("ALTER ROLE " + ident(l.name) + " NOLOGIN");
    p.fix.push_back(terminate_sql(l.name));
    p.action.push_back("NOLOGIN, sessions ended");
  } else if (l.live) {
    const bool until_ok = l.valid_until_ms.has_value() == r.valid_until_ms.has_value() &&
                          (!l.valid_until_ms ||
                           std::llabs(*l.valid_until_ms - *r.valid_until_ms) <= kValidUntilSlackMs);
    if (!r.login) p.wrong.push_back("cannot log in although its credential is live");
    if (!until_ok)
      p.wrong.push_back("VALID UNTIL is " + until_text(r.valid_until_ms) + ", the catalog says " +
                        until_text(l.valid_until_ms));
    if (!r.login || !until_ok) p.action.push_back("LOGIN VALID UNTIL as the catalog says");
    if (!r.login || !until_ok)
      p.fix.push_back("ALTER ROLE " + ident(l.name) + " LOGIN VALID UNTIL " +
                      postgres::quote_literal(l.valid_until_ms ? iso_from_ms(*l.valid_until_ms)
                                                               : std::string("infinity")));
  }
  for (const std::string& g : r.member_of)
    if (g != l.scope_role) {
      p.wrong.push_back("is a member of " + quote_value(g));
      p.fix.push_back("REVOKE " + ident(g) + " FROM " + ident(l.name));
      p.action.push_back("membership of " + quote_value(g) + " revoked");
    }
  if (!r.member_of.count(l.scope_role)) {
    p.wrong.push_back("is not a member of " + quote_value(l.scope_role));
    p.fix.push_back("GRANT " + ident(l.scope_role) + " TO " + ident(l.name));
    p.action.push_back("membership of " + quote_value(l.scope_role) + " granted");
  }
  return p;
}

// Each credential's login: there when live, and as the catalog says.
void check_logins(const ExpectedDatabase& db, bool exists, const Observed& observed,
                  const std::string& server, std::set<std::string>& explained,
                  std::vector<Finding>& out) {
  for (const ExpectedLogin& l : db.logins) {
    explained.insert(l.name);
    auto it = observed.roles.find(l.name);
    if (it == observed.roles.end()) {
      if (!l.live || !exists) continue;
      Finding f = database_finding(db, "login_missing", "sys_database_credential", l.credential_id);
      f.role = l.name;
      f.detail = "login " + quote_value(l.name) + " of a live credential is missing on " + server;
      out.push_back(std::move(f));
      continue;
    }
    LoginRepair p = login_repair(l, it->second);
    if (p.wrong.empty()) continue;
    Finding f = database_finding(db, "login_mismatch", "sys_database_credential", l.credential_id);
    f.role = l.name;
    f.detail = "login " + quote_value(l.name) + " on " + server + " ";
    for (size_t i = 0; i < p.wrong.size(); ++i) f.detail += (i ? "; " : "") + p.wrong[i];
    f.statements = std::move(p.fix);
    for (size_t i = 0; i < p.action.size(); ++i) f.action += (i ? "; " : "") + p.action[i];
    out.push_back(std::move(f));
  }
}

// One database of the catalog against the server: there unless dropped,
// its scope roles and logins as the catalog says.
void check_database(const ExpectedDatabase& db, const Observed& observed, const std::string& server,
                    std::set<std::string>& explained, std::vector<Finding>& out) {
  const std::string prefix = db.database_name + "_";
  if (db.in_flight) {
    // The worker is about to change it: everything of it is accounted for.
    for (auto& [name, role] : observed.roles)
      if (name.compare(0, prefix.size(), prefix) == 0) explained.insert(name);
    return;
  }
  const bool exists = observed.databases.count(db.database_name) > 0;
  if (db.dropped) {
    if (exists) {
      Finding f =
          database_finding(db, "database_not_dropped", "sys_environment_database", db.database_id);
      f.detail = "database " + quote_value(db.database_name) + " on " + server +
                 " was recorded dropped but still exists";
      out.push_back(std::move(f));
    }
    return;  // its roles, if any, are leftovers
  }
  if (!exists) {
    Finding f =
        database_finding(db, "database_missing", "sys_environment_database", db.database_id);
    f.detail = "database " + quote_value(db.database_name) + " is missing on " + server;
    out.push_back(std::move(f));
  }
  check_scope_roles(db, observed, server, explained, out);
  check_logins(db, exists, observed, server, explained, out);
}

// What no row explains: roles of this catalog's databases (dropped ones, or
// names no credential has), and on a registered host every env-... name.
void find_leftover_roles(const Expected& expected, const Observed& observed,
                         const std::string& server, const std::set<std::string>& explained,
                         std::vector<Finding>& out) {
  for (auto& [name, role] : observed.roles) {
    if (explained.count(name)) continue;
    const ExpectedDatabase* owner = nullptr;
    for (const ExpectedDatabase& db : expected.databases)
      if (name.compare(0, db.database_name.size() + 1, db.database_name + "_") == 0) owner = &db;
    if (!owner && !expected.dedicated) continue;
    Finding f;
    f.kind = "role_leftover";
    f.table = owner ? "sys_environment_database" : "sys_database_host";
    f.id = name;
    f.role = name;
    if (owner) {
      f.database_id = owner->database_id;
      f.environment_id = owner->environment_id;
      f.organization_id = owner->organization_id;
    }
    f.detail = "role " + quote_value(name) + " on " + server +
               (owner ? (owner->dropped ? " belongs to a dropped database"
                                        : " belongs to no credential or scope of its database")
                      : " belongs to no database of this catalog");
    // A role that still owns objects or holds privileges somewhere cannot
    // be dropped; the block leaves it (NOLOGIN) and verify_sql tells.
    f.statements = {"ALTER ROLE " + ident(name) + " NOLOGIN", terminate_sql(name),
                    "DO " +
                        postgres::dollar_quote("BEGIN DROP ROLE IF EXISTS " + ident(name) +
                                               "; EXCEPTION WHEN dependent_objects_still_exist "
                                               "OR object_in_use THEN NULL; END") +
                        " LANGUAGE plpgsql"};
    f.action = "NOLOGIN, sessions ended, role dropped";
    f.verify_sql = "SELECT rolname::text FROM pg_catalog.pg_roles WHERE rolname = " +
                   postgres::quote_literal(name);
    out.push_back(std::move(f));
  }
}

// On a registered host, databases named like envdb's that no row names.
void find_unregistered_databases(const Expected& expected, const Observed& observed,
                                 const std::string& server, std::vector<Finding>& out) {
  if (!expected.dedicated) return;
  std::set<std::string> known_databases;
  for (const ExpectedDatabase& db : expected.databases) known_databases.insert(db.database_name);
  for (const std::string& name : observed.databases) {
    if (known_databases.count(name)) continue;
    // A database's backups and what a copy builds beside it ("<name>_...",
    // postgres/copier) are its own (a leftover copy is reported below).
    const size_t cut = name.find('_');
    if (cut != std::string::npos && known_databases.count(name.substr(0, cut))) continue;
    Finding f;
    f.kind = "database_unregistered";
    f.table = "sys_database_host";
    f.id = name;
    f.detail = "database " + quote_value(name) + " on " + server +
               " is named like envdb's but no row of this catalog names it";
    out.push_back(std::move(f));
  }
}

// What a copy, reset or restore left beside a database it no longer works on
// (postgres/copier: the content it was building, or the old content after a
// swap). The worker drops them when it runs again; a job that failed for good
// leaves them here. Reported only: DROP DATABASE cannot run inside check().
void find_copy_leftovers(const Expected& expected, const Observed& observed,
                         const std::string& server, std::vector<Finding>& out) {
  for (const ExpectedDatabase& db : expected.databases) {
    if (db.in_flight) continue;
    for (const std::string& name : {postgres::temp_database_name(db.database_name),
                                    postgres::retired_database_name(db.database_name)}) {
      if (!observed.databases.count(name)) continue;
      Finding f;
      f.kind = "copy_leftover";
      f.table = "sys_environment_database";
      f.id = db.database_id;
      f.database_id = db.database_id;
      f.environment_id = db.environment_id;
      f.organization_id = db.organization_id;
      f.detail = "database " + quote_value(name) + " on " + server + " was left beside " +
                 quote_value(db.database_name) +
                 " by a copy, reset or restore that did not finish (drop it with DROP DATABASE)";
      out.push_back(std::move(f));
    }
  }
}

}  // namespace

std::vector<Finding> compare(const Expected& expected, const Observed& observed,
                             const std::string& server) {
  std::vector<Finding> out;
  std::set<std::string> explained;  // role names the catalog accounts for
  for (const ExpectedDatabase& db : expected.databases)
    check_database(db, observed, server, explained, out);
  find_leftover_roles(expected, observed, server, explained, out);
  find_unregistered_databases(expected, observed, server, out);
  find_copy_leftovers(expected, observed, server, out);
  return out;
}

postgres::Server load_server(Host& host, const Row& h) {
  postgres::Server s;
  s.id = h.text("id");
  s.name = h.text("name");
  s.host = h.text("host");
  s.port = h.integer("port");
  s.dbname = h.text("dbname");
  s.username = h.text("username");
  if (auto key_id = h.opt_text("kms_key_id")) {
    Keyring& keyring = host.keyring();
    if (!keyring.has(*key_id))
      fail(Code::key_unavailable, "database host " + quote_value(s.name) + " is sealed under key " +
                                      quote_value(*key_id) + ", which is not loaded");
    const Blob* blob = std::get_if<Blob>(&h["password_cipher"]);
    if (!blob)
      fail(Code::decrypt_failed,
           "database host " + quote_value(s.name) + " has no password ciphertext");
    s.password = crypto::open(keyring.key(*key_id), blob->bytes, postgres::host_aad(s.id));
  }
  return s;
}

}  // namespace envdb::servers
