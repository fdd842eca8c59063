#include "postgres/statements.hpp"

#include <algorithm>
#include <cstring>

#include "core/errors.hpp"
#include "core/ids.hpp"

namespace envdb::postgres {

namespace {

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
  return "NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = " + quote_literal(role) + ")";
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

std::string script(const std::vector<std::string>& statements) {
  std::string out;
  for (const std::string& s : statements) out += s + ";\n";
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
                           quote_value(*current_owner) + ", expected " + quote_value(roles.owner) +
                           ")");
}

std::string create_database_sql(const std::string& database_name, const Roles& roles) {
  return "CREATE DATABASE " + quote_identifier(database_name) + " OWNER " +
         quote_identifier(roles.owner) + " TEMPLATE template0";
}

std::vector<std::string> database_grants_sql(const std::string& database_name, const Roles& r) {
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
                            const std::string& organization_id, const std::string& database_name) {
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

// The database a postgres:// or postgresql:// URL names when it points at
// this server (no host, localhost, a loopback address or a socket directory,
// and no port or this server's port); nullopt otherwise. Without a path the
// database is `fallback`.
std::optional<std::string> local_database(const std::string& url, const std::string& fallback,
                                          const std::string& server_port) {
  std::string rest;
  bool uri = false;
  for (const char* scheme : {"postgresql://", "postgres://"}) {
    const size_t n = std::strlen(scheme);
    if (url.compare(0, n, scheme) == 0) {
      rest = url.substr(n);
      uri = true;
    }
  }
  if (!uri) return std::nullopt;  // a key=value string or another scheme
  const size_t query_at = rest.find('?');
  const std::string query = query_at == std::string::npos ? "" : rest.substr(query_at + 1);
  rest = rest.substr(0, query_at);
  const size_t slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  std::string database = slash == std::string::npos ? "" : rest.substr(slash + 1);
  if (const size_t at = authority.rfind('@'); at != std::string::npos)
    authority = authority.substr(at + 1);
  std::string host = authority, port;
  if (!authority.empty() && authority[0] == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
  } else if (const size_t colon = authority.find(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  // host=, port= and dbname= in the query string win.
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string pair = query.substr(start, end - start);
    const size_t eq = pair.find('=');
    const std::string key = pair.substr(0, eq),
                      value = eq == std::string::npos ? "" : pair.substr(eq + 1);
    if (key == "host") host = value;
    if (key == "port") port = value;
    if (key == "dbname") database = value;
    start = end + 1;
  }
  if (host.find(',') != std::string::npos || port.find(',') != std::string::npos)
    return std::nullopt;
  const bool local_host = host.empty() || host == "localhost" || host == "127.0.0.1" ||
                          host == "::1" || host[0] == '/' || host.rfind("%2F", 0) == 0 ||
                          host.rfind("%2f", 0) == 0;
  if (!local_host || (!port.empty() && port != server_port)) return std::nullopt;
  if (database.find('%') != std::string::npos) return std::nullopt;  // encoded: not decoded here
  return database.empty() ? fallback : database;
}

}  // namespace envdb::postgres
