#include "pgdriver.hpp"

#include <algorithm>

#include "audit.hpp"
#include "clock.hpp"
#include "converge.hpp"
#include "credentials.hpp"
#include "errors.hpp"
#include "ids.hpp"
#include "outbox.hpp"
#include "records.hpp"
#include "setup.hpp"

namespace envdb::pgdriver {

namespace {

using T = api::Type;

constexpr size_t kMaxHostName = 255;
constexpr size_t kMaxPassword = 1024;

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

const char* scope_letter(const std::string& scope) {
  if (scope == "admin") return "a";
  if (scope == "readwrite") return "w";
  if (scope == "readonly") return "r";
  fail(Code::invalid_parameter,
       "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
}

// DO block running `body` (PL/pgSQL statements).
std::string do_block(const std::string& body) {
  return "DO " + dollar_quote("BEGIN\n" + body + "END") + " LANGUAGE plpgsql";
}

std::string role_missing(const std::string& role) {
  return "NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = " + quote_literal(role) +
         ")";
}

}  // namespace

std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_literal(std::string_view text) {
  const bool backslash = text.find('\\') != std::string_view::npos;
  std::string out = backslash ? "E'" : "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  return out + "'";
}

std::string dollar_quote(std::string_view body) {
  std::string tag = "$envdb$";
  for (int n = 1; body.find(tag) != std::string_view::npos; ++n)
    tag = "$envdb" + std::to_string(n) + "$";
  // The newline keeps the body's last characters from joining the closing tag.
  return tag + std::string(body) + "\n" + tag;
}

const std::string& Roles::of_scope(const std::string& scope) const {
  if (scope == "admin") return admin;
  if (scope == "readwrite") return readwrite;
  if (scope == "readonly") return readonly;
  fail(Code::invalid_parameter,
       "scope " + quote_value(scope) + " is not a credential scope (readwrite, readonly, admin)");
}

Roles roles_for(const std::string& database_name) {
  bool ok = !database_name.empty() && database_name.size() <= 40;
  for (char c : database_name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-');
  if (!ok)
    fail(Code::invalid_parameter, "database_name " + quote_value(database_name) +
                                      " must be 1 to 40 characters of a-z, 0-9, _ and -");
  return {database_name + "_owner", database_name + "_admin", database_name + "_readwrite",
          database_name + "_readonly"};
}

std::string login_name(const std::string& database_name, const std::string& scope,
                       const std::string& credential_id) {
  (void)roles_for(database_name);  // validates the name
  require_id("credential_id", credential_id);
  // database_name_for turns any UUID into "env-" + 26 base32 characters.
  const std::string suffix = database_name_for(credential_id).substr(4);
  return database_name + "_" + scope_letter(scope) + "_" + suffix;
}

std::string database_url(const std::string& host, int64_t port, const std::string& dbname) {
  const bool ipv6 = host.find(':') != std::string::npos;
  return "postgresql://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/" +
         dbname;
}

std::vector<std::string> ensure_roles_sql(const Roles& r) {
  std::vector<std::string> out;
  for (const std::string* role : {&r.owner, &r.admin, &r.readwrite, &r.readonly})
    out.push_back(do_block("  IF " + role_missing(*role) + " THEN\n    CREATE ROLE " +
                           quote_identifier(*role) + " NOLOGIN;\n  END IF;\n"));
  return out;
}

std::string database_owner_sql(const std::string& database_name) {
  return "SELECT pg_catalog.pg_get_userbyid(datdba)::text AS owner FROM pg_catalog.pg_database "
         "WHERE datname = " +
         quote_literal(database_name);
}

bool must_create_database(const std::string& database_name,
                          const std::optional<std::string>& current_owner, const Roles& roles) {
  if (!current_owner) return true;
  if (*current_owner == roles.owner) return false;  // an earlier attempt made it
  fail(Code::conflict, "database " + quote_value(database_name) +
                           " already exists on the server and is not this environment's (owner " +
                           quote_value(*current_owner) + ", expected " +
                           quote_value(roles.owner) + ")");
}

std::string create_database_sql(const std::string& database_name, const Roles& roles) {
  return "CREATE DATABASE " + quote_identifier(database_name) + " OWNER " +
         quote_identifier(roles.owner) + " TEMPLATE template0";
}

std::vector<std::string> database_grants_sql(const std::string& database_name,
                                             const Roles& r) {
  const std::string db = quote_identifier(database_name);
  const std::string scopes = join(
      {quote_identifier(r.admin), quote_identifier(r.readwrite), quote_identifier(r.readonly)});
  return {"REVOKE ALL ON DATABASE " + db + " FROM PUBLIC",
          "GRANT CONNECT, TEMPORARY ON DATABASE " + db + " TO " + scopes,
          "GRANT CREATE ON DATABASE " + db + " TO " + quote_identifier(r.admin)};
}

std::string ensure_login_sql(const Login& login, const Roles& roles) {
  if (!login.live || login.verifier.empty())
    throw Error(Code::internal, "ensure_login_sql needs a live login with its verifier");
  const std::string name = quote_identifier(login.name);
  const std::string& scope_role = roles.of_scope(login.scope);
  const std::string until = quote_literal(login.valid_until ? *login.valid_until : "infinity");
  return do_block("  IF " + role_missing(login.name) + " THEN\n    CREATE ROLE " + name +
                  " LOGIN INHERIT PASSWORD " + quote_literal(login.verifier) + " VALID UNTIL " +
                  until + ";\n  ELSE\n    ALTER ROLE " + name + " LOGIN VALID UNTIL " + until +
                  ";\n  END IF;\n  GRANT " + quote_identifier(scope_role) + " TO " + name +
                  ";\n  ALTER ROLE " + name + " SET role = " + quote_literal(scope_role) + ";\n");
}

std::string disable_login_sql(const std::string& login) {
  return do_block("  IF NOT " + role_missing(login) + " THEN\n    ALTER ROLE " +
                  quote_identifier(login) + " NOLOGIN;\n  END IF;\n");
}

std::string enable_login_sql(const std::string& login,
                             const std::optional<std::string>& valid_until) {
  return "ALTER ROLE " + quote_identifier(login) + " LOGIN VALID UNTIL " +
         quote_literal(valid_until ? *valid_until : "infinity");
}

std::string terminate_sessions_sql(const std::string& login) {
  return "SELECT pg_catalog.pg_terminate_backend(pid) AS ended FROM pg_catalog.pg_stat_activity "
         "WHERE usename = " +
         quote_literal(login) + " AND pid <> pg_catalog.pg_backend_pid()";
}

std::string in_database_sql(const Roles& r, const std::string& environment_id,
                            const std::string& organization_id,
                            const std::string& database_name) {
  const std::string admin = quote_identifier(r.admin);
  const std::string rw = quote_identifier(r.readwrite);
  const std::string ro = quote_identifier(r.readonly);
  const std::string all = join({admin, rw, ro});
  const std::string defaults = "ALTER DEFAULT PRIVILEGES FOR ROLE " + admin + " IN SCHEMA public ";
  std::vector<std::string> s = {
      "ALTER SCHEMA public OWNER TO " + admin,
      "REVOKE ALL ON SCHEMA public FROM PUBLIC",
      "GRANT USAGE ON SCHEMA public TO " + rw + ", " + ro,
      "CREATE EXTENSION IF NOT EXISTS envdb_data",
      "SELECT envdb.init_environment_schema(" + quote_literal(environment_id) + ", " +
          quote_literal(organization_id) + ", " + quote_literal(database_name) + ")",
      "GRANT USAGE ON SCHEMA envdb TO " + all,
      "GRANT SELECT ON ALL TABLES IN SCHEMA envdb TO " + all,
      // The environment's own logins may ask which data-plane version it has.
      "GRANT EXECUTE ON FUNCTION envdb.environment_schema_version() TO " + all,
      // A connection pooler's auth_user (a member of envdb_auth, made by
      // envdb_data) connects here to look up a login's verifier.
      "GRANT CONNECT ON DATABASE " + quote_identifier(database_name) + " TO envdb_auth",
      defaults + "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + rw,
      defaults + "GRANT SELECT ON TABLES TO " + ro,
      defaults + "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO " + rw,
      defaults + "GRANT SELECT ON SEQUENCES TO " + ro,
      "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO " + rw,
      "GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + ro,
      "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO " + rw,
      "GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO " + ro,
  };
  return join(s, ";\n") + ";\n";
}

std::vector<std::string> drop_database_sql(const std::string& database_name, const Roles& r,
                                           const std::vector<std::string>& logins) {
  std::vector<std::string> out = {"DROP DATABASE IF EXISTS " + quote_identifier(database_name) +
                                  " WITH (FORCE)"};
  for (const std::string& l : logins) out.push_back("DROP ROLE IF EXISTS " + quote_identifier(l));
  for (const std::string* role : {&r.readonly, &r.readwrite, &r.admin, &r.owner})
    out.push_back("DROP ROLE IF EXISTS " + quote_identifier(*role));
  return out;
}

std::string restrict_connect_sql(const std::string& database_name) {
  // Every database of the server that PUBLIC may connect to, except this
  // environment's: CONNECT goes to each existing role by name (environment
  // roles, "env-<26 base32>_...", excepted), then is revoked from PUBLIC. So
  // the roles that could connect still can, and environment logins cannot.
  return do_block(
      "  DECLARE d record; r record;\n  BEGIN\n"
      "    FOR d IN SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND datname <> " +
      quote_literal(database_name) +
      " AND pg_catalog.has_database_privilege('public', datname, 'CONNECT') LOOP\n"
      "      FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE NOT rolname ~ "
      "'^env-[a-z2-7]{26}_' AND NOT pg_catalog.starts_with(rolname, 'pg_') LOOP\n"
      "        EXECUTE pg_catalog.format('GRANT CONNECT ON DATABASE %I TO %I', d.datname, "
      "r.rolname);\n      END LOOP;\n"
      "      EXECUTE pg_catalog.format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC', d.datname);\n"
      "    END LOOP;\n  END;\n");
}

std::string other_databases_sql(const std::string& database_name) {
  return "SELECT pg_catalog.json_agg(datname ORDER BY datname)::text FROM pg_catalog.pg_database "
         "WHERE datallowconn AND datname <> " +
         quote_literal(database_name);
}

std::string drop_owned_sql(const std::string& database_name) {
  // Every role of the environment ("<database_name>_..."), whatever the
  // catalog still lists: logins of credentials deleted by hand included.
  const std::string prefix = quote_literal(database_name + "_");
  return do_block(
      "  DECLARE roles text;\n  BEGIN\n"
      "    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(rolname), ', ') INTO roles\n"
      "      FROM pg_catalog.pg_roles WHERE pg_catalog.starts_with(rolname, " +
      prefix +
      ");\n    IF roles IS NOT NULL THEN\n      EXECUTE 'DROP OWNED BY ' || roles;\n    END IF;\n"
      "  END;\n");
}

std::string drop_leftover_roles_sql(const std::string& database_name) {
  const std::string prefix = quote_literal(database_name + "_");
  return do_block(
      "  DECLARE r record;\n  BEGIN\n    FOR r IN SELECT rolname FROM pg_catalog.pg_roles WHERE "
      "pg_catalog.starts_with(rolname, " +
      prefix +
      ") ORDER BY rolcanlogin DESC, rolname LOOP\n"
      "      EXECUTE 'DROP ROLE ' || pg_catalog.quote_ident(r.rolname);\n    END LOOP;\n  END;\n");
}

std::string host_aad(std::string_view host_id) {
  // The credential scheme with fields no credential can have.
  return crypto::credential_aad(host_id, "sys_database_host", "password");
}

std::optional<std::string> place(Store& store, const std::string& region) {
  auto row = query_one(store,
                       "SELECT h.id FROM envdb.sys_database_host h WHERE h.region = $1 ORDER BY "
                       "(SELECT count(*) FROM envdb.sys_environment_database d WHERE d.host_id = "
                       "h.id), h.name LIMIT 1",
                       {region});
  if (!row) return std::nullopt;
  return row->text("id");
}

bool queue_job(Host& host, const std::string& database_id, const std::string& kind,
               const std::optional<std::string>& credential_id) {
  Store& store = host.store();
  auto db = query_one(store,
                      "SELECT environment_id, driver, provisioned_at FROM "
                      "envdb.sys_environment_database WHERE id = $1",
                      {database_id});
  if (!db || db->text("driver") != "postgres" || is_null((*db)["provisioned_at"])) return false;
  Json payload = Json::object();
  if (credential_id) payload["credentialId"] = *credential_id;
  outbox::enqueue(host, {db->text("environment_id"), database_id, kind, "postgres", payload});
  return true;
}

Server load_server(Host& host, const std::string& host_id) {
  Store& store = host.store();
  auto h = query_one(store,
                     "SELECT id, name, host, port, dbname, username, kms_key_id, "
                     "password_cipher FROM envdb.sys_database_host WHERE id = $1",
                     {host_id});
  if (!h) fail(Code::not_found, "database host " + quote_value(host_id) + " is not registered");
  Server s;
  s.id = h->text("id");
  s.name = h->text("name");
  s.host = h->text("host");
  s.port = h->integer("port");
  s.dbname = h->text("dbname");
  s.username = h->text("username");
  if (auto key_id = h->opt_text("kms_key_id")) {
    Keyring& keyring = host.keyring();
    if (!keyring.has(*key_id))
      fail(Code::key_unavailable, "database host " + quote_value(s.name) +
                                      " is sealed under key " + quote_value(*key_id) +
                                      ", which is not loaded");
    const Value& cipher = (*h)["password_cipher"];
    const Blob* blob = std::get_if<Blob>(&cipher);
    if (!blob)
      fail(Code::decrypt_failed,
           "database host " + quote_value(s.name) + " has no password ciphertext");
    s.password = crypto::open(keyring.key(*key_id), blob->bytes, host_aad(s.id));
  }
  return s;
}

Work load_work(Host& host, const std::string& job_id) {
  Store& store = host.store();
  require_id("job_id", job_id);
  auto job = query_one(store,
                       "SELECT j.id, j.kind, j.driver, j.environment_id, j.database_id, e.status, "
                       "e.organization_id, d.database_name, d.host_id FROM "
                       "envdb.sys_provisioning_job j JOIN envdb.sys_environment e ON e.id = "
                       "j.environment_id JOIN envdb.sys_environment_database d ON d.id = "
                       "j.database_id WHERE j.id = $1",
                       {job_id});
  if (!job) fail(Code::not_found, "job_id " + quote_value(job_id) + " names no database job");
  if (job->text("driver") != "postgres")
    fail(Code::invalid_parameter, "job " + quote_value(job_id) + " is a " + job->text("driver") +
                                      " job, not a postgres one");
  Work w;
  w.job_id = job_id;
  w.kind = job->text("kind");
  w.environment_id = job->text("environment_id");
  w.organization_id = job->text("organization_id");
  w.environment_status = job->text("status");
  w.database_id = job->text("database_id");
  w.database_name = job->text("database_name");
  w.roles = roles_for(w.database_name);

  if (auto host_id = job->opt_text("host_id")) w.server = load_server(host, *host_id);
  const std::string restrict = setup::setting(host, "restrict_server_connect");
  w.restrict_connect = restrict == "all" || (restrict == "hosts" && w.server.has_value());

  const int64_t now_ms_value = now_ms();
  for (const Row& c : query(store,
                            std::string("SELECT ") + credentials::kSealedColumns +
                                ", status, expires_at FROM envdb.sys_database_credential WHERE "
                                "database_id = $1 ORDER BY issued_at, id",
                            {w.database_id})) {
    Login l;
    l.credential_id = c.text("id");
    l.scope = c.text("scope");
    l.name = login_name(w.database_name, l.scope, l.credential_id);
    l.valid_until = c.opt_text("expires_at");
    l.live = converge::login_live(c.text("status"), l.valid_until, w.environment_status,
                                  now_ms_value);
    if (l.live) {
      const crypto::SecretBytes token(credentials::open_token(host, c));
      l.verifier = crypto::scram_sha256_verifier(token.view(), crypto::random_bytes(16));
    }
    w.logins.push_back(std::move(l));
  }
  return w;
}

namespace {

// Removes what the environment's roles own in every other database of the
// server (a large object in `postgres`, a table in the control plane), then
// the roles themselves: a DROP ROLE would fail on any of those.
void drop_everything(const Work& w, ServerSession& server) {
  std::vector<std::string> logins;
  for (const Login& l : w.logins) logins.push_back(l.name);
  const auto statements = drop_database_sql(w.database_name, w.roles, logins);
  server.exec_top_level(statements.front());
  const auto listed = server.query_value(other_databases_sql(w.database_name));
  const Json others = listed ? Json::parse(*listed, nullptr, false) : Json::array();
  if (others.is_array()) {
    for (const Json& db : others) {
      if (!db.is_string()) continue;
      try {
        server.exec_in_database(db.get<std::string>(), drop_owned_sql(w.database_name));
      } catch (const Error& e) {
        throw Error(Code::internal, "cannot remove what the roles of " +
                                        quote_value(w.database_name) + " own in database " +
                                        quote_value(db.get<std::string>()) + ": " + e.what());
      }
    }
  }
  try {
    for (size_t i = 1; i < statements.size(); ++i) server.exec(statements[i]);
    server.exec(drop_leftover_roles_sql(w.database_name));
  } catch (const Error& e) {
    throw Error(Code::internal, "cannot drop the roles of " + quote_value(w.database_name) +
                                    " (they still own or are granted something in a database "
                                    "envdb cannot reach): " +
                                    e.what());
  }
}

}  // namespace

std::optional<std::string> carry_out(const Work& w, ServerSession& server,
                                     const std::function<void()>& converge_logins) {
  if (w.kind == "drop_database") {
    drop_everything(w, server);
    return std::nullopt;
  }
  for (const std::string& sql : ensure_roles_sql(w.roles)) server.exec(sql);
  std::optional<std::string> url;
  if (w.kind == "create_database") {
    const auto owner = server.query_value(database_owner_sql(w.database_name));
    if (must_create_database(w.database_name, owner, w.roles))
      server.exec_top_level(create_database_sql(w.database_name, w.roles));
    for (const std::string& sql : database_grants_sql(w.database_name, w.roles)) server.exec(sql);
    if (w.restrict_connect) server.exec(restrict_connect_sql(w.database_name));
    server.exec_in_database(w.database_name, in_database_sql(w.roles, w.environment_id,
                                                             w.organization_id, w.database_name));
    url = server.url(w.database_name);
  }
  if (converge_logins) {
    // The logins as the catalog says now, not as it said when the job was
    // loaded: a revoke committed during the steps above counts.
    converge_logins();
    return url;
  }
  for (const Login& l : w.logins) {
    if (l.live) {
      server.exec(ensure_login_sql(l, w.roles));
    } else {
      server.exec(disable_login_sql(l.name));
      (void)server.query_value(terminate_sessions_sql(l.name));
    }
  }
  return url;
}

// ---- the host registry ----------------------------------------------------

namespace {

const char* const kHostColumns =
    "id, name, region, host, port, dbname, username, kms_key_id, created_at, updated_at";

Json host_json(Store& store, const Row& r) {
  auto n = query_one(store,
                     "SELECT count(*) AS n FROM envdb.sys_environment_database WHERE host_id = $1",
                     {r.text("id")});
  return Json{{"id", r.text("id")},
              {"name", r.text("name")},
              {"region", r.text("region")},
              {"host", r.text("host")},
              {"port", r.integer("port")},
              {"dbname", r.text("dbname")},
              {"username", r.text("username")},
              {"hasPassword", !is_null(r["kms_key_id"])},
              {"kmsKeyId", json_text(r.opt_text("kms_key_id"))},
              {"databases", n ? n->integer("n") : 0},
              {"createdAt", r.text("created_at")},
              {"updatedAt", r.text("updated_at")}};
}

std::optional<Row> host_by_name(Store& store, const std::string& name) {
  return query_one(store,
                   std::string("SELECT ") + kHostColumns +
                       " FROM envdb.sys_database_host WHERE name = $1",
                   {name});
}

bool has_control_bytes(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

void require_plain(const char* field, const std::string& v, size_t max) {
  if (v.empty() || v.size() > max || has_control_bytes(v))
    fail(Code::invalid_parameter, std::string(field) + " " + quote_value(v) + " must be 1 to " +
                                      std::to_string(max) +
                                      " characters without control characters");
}

Value add_database_host(api::Call& c) {
  const std::string name = c.text("name", 64);
  require_slug("name", name);
  const std::string region = c.text("region", 64);
  require_plain("region", region, 64);
  const std::string server = c.text("host", kMaxHostName);
  require_plain("host", server, kMaxHostName);
  const int64_t port = c.opt_integer("port").value_or(5432);
  if (port < 1 || port > 65535)
    fail(Code::invalid_parameter, "port " + std::to_string(port) + " must be between 1 and 65535");
  const std::string username = c.opt_text("username", 63).value_or("postgres");
  require_plain("username", username, 63);
  const std::string dbname = c.opt_text("dbname", 63).value_or("postgres");
  require_plain("dbname", dbname, 63);
  std::optional<crypto::SecretBytes> password;
  if (auto p = c.opt_text("password", kMaxPassword)) {
    if (p->empty()) fail(Code::invalid_parameter, "password must not be empty (omit it instead)");
    password.emplace(std::move(*p));
  }
  Store& store = c.store;
  if (host_by_name(store, name))
    fail(Code::already_exists, "name " + quote_value(name) + " already names a database host");
  Keyring& keyring = c.host.keyring();
  if (password) (void)keyring.active_key();  // key_unavailable before anything is written

  Atomic tx(store);
  const std::string id = new_uuid_v7();
  const std::string now = now_iso();
  Value cipher = null_value();
  Value key_id = null_value();
  if (password) {
    cipher = Blob{crypto::seal(keyring.active_key(), password->view(), host_aad(id))};
    key_id = keyring.active_id();
  }
  execute(store,
          "INSERT INTO envdb.sys_database_host (id, name, region, host, port, dbname, username, "
          "password_cipher, kms_key_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, "
          "$7, $8, $9, $10::timestamptz, $10::timestamptz)",
          {id, name, region, server, port, dbname, username, cipher, key_id, now});
  audit::record(c.host, {"database_host.add", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name},
                              {"region", region},
                              {"host", server},
                              {"port", port},
                              {"hasPassword", password.has_value()}}});
  Json out = host_json(store, *host_by_name(store, name));
  tx.done();
  return api::json_result(Json{{"host", out}});
}

Value list_database_hosts(api::Call& c) {
  Json out = Json::array();
  for (const Row& r : query(c.store, std::string("SELECT ") + kHostColumns +
                                         " FROM envdb.sys_database_host ORDER BY name"))
    out.push_back(host_json(c.store, r));
  return api::json_result(out);
}

Value remove_database_host(api::Call& c) {
  const std::string name = c.text("name", 64);
  Store& store = c.store;
  auto row = host_by_name(store, name);
  if (!row) fail(Code::not_found, "name " + quote_value(name) + " names no database host");
  const std::string id = row->text("id");
  auto n = query_one(store,
                     "SELECT count(*) AS n FROM envdb.sys_environment_database WHERE host_id = $1",
                     {id});
  if (n && n->integer("n") > 0)
    fail(Code::conflict, "database host " + quote_value(name) + " still holds " +
                             std::to_string(n->integer("n")) +
                             " environment database(s); it can be removed once none is placed "
                             "there");
  Atomic tx(store);
  Json out = host_json(store, *row);
  execute(store, "DELETE FROM envdb.sys_database_host WHERE id = $1", {id});
  audit::record(c.host, {"database_host.remove", std::nullopt, std::nullopt, "database_host", id,
                         Json{{"name", name}}});
  tx.done();
  return api::json_result(Json{{"host", out}});
}

}  // namespace

std::vector<api::Function> functions() {
  return {
      {"add_database_host",
       {{"name", T::text, nullptr},
        {"region", T::text, nullptr},
        {"host", T::text, nullptr},
        {"port", T::integer, "5432"},
        {"username", T::text, "'postgres'"},
        {"password", T::text, "NULL"},
        {"dbname", T::text, "'postgres'"}},
       T::json, add_database_host, api::kWrites | api::kRequestForm, api::kAdmin,
       "register a Postgres server for postgres-driver databases of a region; the password is "
       "sealed under the keyring's active key and never returned"},
      {"list_database_hosts",
       {},
       T::json, list_database_hosts, 0, api::kAdmin,
       "the registered Postgres servers with how many environment databases each holds (no "
       "secrets)"},
      {"remove_database_host",
       {{"name", T::text, nullptr}},
       T::json, remove_database_host, api::kWrites, api::kAdmin,
       "unregister a Postgres server that holds no environment database"},
  };
}

}  // namespace envdb::pgdriver
