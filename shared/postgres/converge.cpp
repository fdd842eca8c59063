#include "postgres/converge.hpp"

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "core/json.hpp"
#include "postgres/statements.hpp"
#include "secrets/crypto.hpp"
#include "secrets/vault.hpp"

namespace envdb::converge {

bool login_live(const std::string& credential_status, const std::optional<std::string>& expires_at,
                const std::string& environment_status, int64_t now_ms) {
  if (credential_status != "active" && credential_status != "rotating") return false;
  // An unreadable expiry counts as passed: fail closed.
  if (expires_at && ms_from_iso(*expires_at).value_or(0) <= now_ms) return false;
  return environment_status == "active" || environment_status == "provisioning";
}

std::vector<ServerPlan> desired(Store& store, const std::optional<std::string>& database_id,
                                bool creating, int64_t now_ms) {
  std::string sql =
      "SELECT c.id, c.scope, c.status, c.expires_at, d.id AS database_id, d.database_name, "
      "d.host_id, d.provisioned_at, e.status AS environment_status "
      "FROM envdb.sys_database_credential c "
      "JOIN envdb.sys_environment_database d ON d.id = c.database_id "
      "JOIN envdb.sys_environment e ON e.id = d.environment_id "
      "WHERE d.driver = 'postgres' AND d.dropped_at IS NULL";
  std::vector<Value> params;
  if (database_id) {
    sql += " AND d.id = $1";
    params.push_back(*database_id);
  }
  sql += " ORDER BY d.host_id, d.id, c.issued_at, c.id";
  std::vector<ServerPlan> out;
  std::map<std::string, size_t> index;  // host id ("" for the local server) -> out
  for (const Row& r : query(store, sql, params)) {
    const auto host_id = r.opt_text("host_id");
    auto [it, added] = index.emplace(host_id.value_or(""), out.size());
    if (added) out.push_back(ServerPlan{host_id, {}});
    Desired d;
    d.credential_id = r.text("id");
    d.database_id = r.text("database_id");
    d.database_name = r.text("database_name");
    d.scope = r.text("scope");
    d.name = postgres::login_name(d.database_name, d.scope, d.credential_id);
    d.valid_until = r.opt_text("expires_at");
    d.live = login_live(r.text("status"), d.valid_until, r.text("environment_status"), now_ms);
    d.may_create = creating || !is_null(r["provisioned_at"]);
    out[it->second].logins.push_back(std::move(d));
  }
  return out;
}

std::string actual_sql(const std::vector<Desired>& logins) {
  // Only roles that can log in or have a session are reported: a login that
  // is missing from the answer is NOLOGIN without sessions, or does not exist.
  std::string names;
  for (const Desired& d : logins)
    names += (names.empty() ? "" : ", ") + postgres::quote_literal(d.name);
  if (names.empty()) names = "NULL";
  return "SELECT pg_catalog.jsonb_object_agg(r.rolname, pg_catalog.jsonb_build_object('login', "
         "r.rolcanlogin, 'until', CASE WHEN r.rolvaliduntil IS NULL OR r.rolvaliduntil = "
         "'infinity' THEN NULL ELSE pg_catalog.floor(pg_catalog.date_part('epoch', "
         "r.rolvaliduntil) * 1000)::bigint END, 'sessions', s.n))::text FROM pg_catalog.pg_roles "
         "r CROSS JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_stat_activity a WHERE "
         "a.usename = r.rolname AND a.pid <> pg_catalog.pg_backend_pid()) s WHERE r.rolname IN (" +
         names + ") AND (r.rolcanlogin OR s.n > 0)";
}

std::map<std::string, Actual> parse_actual(const std::optional<std::string>& json) {
  std::map<std::string, Actual> out;
  if (!json || json->empty()) return out;
  auto bad = [] {
    fail(Code::invalid_parameter, "the server's report of its logins is not the expected JSON");
  };
  nlohmann::json j = nlohmann::json::parse(*json, nullptr, false);
  if (!j.is_object()) bad();
  for (auto& [name, v] : j.items()) {
    if (!v.is_object() || !v.contains("login") || !v["login"].is_boolean()) bad();
    Actual a;
    a.can_login = v["login"].get<bool>();
    if (v.contains("until") && v["until"].is_number()) a.valid_until_ms = v["until"].get<int64_t>();
    if (v.contains("sessions") && v["sessions"].is_number_integer())
      a.sessions = v["sessions"].get<int64_t>();
    out.emplace(name, a);
  }
  return out;
}

std::vector<Action> plan(const std::vector<Desired>& desired,
                         const std::map<std::string, Actual>& actual) {
  std::vector<Action> out;
  for (const Desired& d : desired) {
    auto it = actual.find(d.name);
    if (d.live) {
      if (it == actual.end() || !it->second.can_login) {
        // Missing or NOLOGIN: the same statement creates or re-enables it.
        if (d.may_create) out.push_back({Step::create, d});
        continue;
      }
      const std::optional<int64_t> want = d.valid_until ? ms_from_iso(*d.valid_until)
                                                        : std::optional<int64_t>();
      if (want != it->second.valid_until_ms) out.push_back({Step::enable, d});
    } else if (it != actual.end()) {
      out.push_back({it->second.can_login ? Step::disable : Step::end_sessions, d});
    }
  }
  return out;
}

std::optional<postgres::Login> login_to_create(Host& host, const std::string& credential_id) {
  auto row = query_one(host.store(),
                       std::string("SELECT c.id, c.database_id, c.scope, c.kms_key_id, "
                                   "c.token_cipher, c.status, c.expires_at, d.database_name, "
                                   "e.status AS environment_status FROM "
                                   "envdb.sys_database_credential c JOIN "
                                   "envdb.sys_environment_database d ON d.id = c.database_id "
                                   "JOIN envdb.sys_environment e ON e.id = d.environment_id "
                                   "WHERE c.id = $1 AND d.dropped_at IS NULL"),
                       {credential_id});
  if (!row) return std::nullopt;
  postgres::Login l;
  l.credential_id = credential_id;
  l.scope = row->text("scope");
  l.name = postgres::login_name(row->text("database_name"), l.scope, credential_id);
  l.valid_until = row->opt_text("expires_at");
  l.live =
      login_live(row->text("status"), l.valid_until, row->text("environment_status"), now_ms());
  if (!l.live) return std::nullopt;
  const crypto::SecretBytes token(vault::open_token(host, *row));
  l.verifier = crypto::scram_sha256_verifier(token.view(), crypto::random_bytes(16));
  return l;
}

std::vector<Action> apply(postgres::ServerSession& server, const ServerPlan& p,
                          const LoginMaker& make_login) {
  if (p.logins.empty()) return {};
  const auto actual = parse_actual(server.query_value(actual_sql(p.logins)));
  std::vector<Action> done;
  for (const Action& a : plan(p.logins, actual)) {
    const std::string& name = a.login.name;
    switch (a.step) {
      case Step::create: {
        // The catalog is read again: the credential may have been revoked
        // since the plan was made.
        auto login = make_login(a.login);
        if (!login) continue;
        const postgres::Roles roles = postgres::roles_for(a.login.database_name);
        // The scope roles and the login in one transaction.
        std::vector<std::string> statements = postgres::ensure_roles_sql(roles);
        statements.push_back(postgres::ensure_login_sql(*login, roles));
        server.exec(postgres::script(statements));
        break;
      }
      case Step::enable: server.exec(postgres::enable_login_sql(name, a.login.valid_until)); break;
      case Step::disable:
        server.exec(postgres::disable_login_sql(name));
        (void)server.query_value(postgres::terminate_sessions_sql(name));
        break;
      case Step::end_sessions:
        (void)server.query_value(postgres::terminate_sessions_sql(name));
        break;
    }
    done.push_back(a);
  }
  return done;
}

}  // namespace envdb::converge
