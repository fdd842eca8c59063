#include "postgres/copier.hpp"

#include <chrono>

#include "core/errors.hpp"
#include "core/ids.hpp"

namespace envdb::postgres {

namespace {

constexpr int kMaxCloneAttempts = 10;
constexpr int64_t kFileCopyBytes = 64LL << 20;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string qi(const std::string& name) { return quote_identifier(name); }
std::string ql(const std::string& text) { return quote_literal(text); }

// A database that has (or gets, in between) a session of someone else: a
// CREATE DATABASE from it as a template, or a rename of it, is refused.
bool in_use(const Error& e) {
  return std::string(e.what()).find("is being accessed by other users") != std::string::npos;
}

bool exists(ServerSession& server, const std::string& name) {
  return server.query_value(database_owner_sql(name)).has_value();
}

void drop_if_exists(ServerSession& server, const std::string& name) {
  server.exec_top_level("DROP DATABASE IF EXISTS " + qi(name) + " WITH (FORCE)");
}

std::string end_sessions_sql(const std::string& name) {
  return "SELECT count(pg_catalog.pg_terminate_backend(pid)) AS ended FROM "
         "pg_catalog.pg_stat_activity WHERE datname = " +
         ql(name) + " AND pid <> pg_catalog.pg_backend_pid()";
}

// CREATE DATABASE `name` TEMPLATE `from`. A template may have no other
// session: `from`'s are ended just before (CREATE DATABASE waits up to 5 s
// for them to go), and new ones wait on its lock until the files are copied.
// One that slipped in between makes the CREATE fail at once; it is tried
// again. Returns the attempts.
int clone(ServerSession& server, const std::string& from, const std::string& name,
          const std::string& owner) {
  // A large database is copied file by file (two checkpoints, no WAL for
  // its pages): about 3 times faster than the default WAL_LOG at 100 MB, so
  // the source pauses that much less; a small one the default way, which
  // needs no checkpoint (bench/results/copy-pg.md).
  const auto size = server.query_value("SELECT pg_catalog.pg_database_size(" + ql(from) + ")");
  const bool large = size && std::stoll(*size) >= kFileCopyBytes;
  const std::string sql = "CREATE DATABASE " + qi(name) + " OWNER " + qi(owner) + " TEMPLATE " +
                          qi(from) + (large ? " STRATEGY FILE_COPY" : "");
  for (int attempt = 1;; ++attempt) {
    (void)server.query_value(end_sessions_sql(from));
    try {
      server.create_from_template(sql, from);
      // Until the swap, only superusers may connect to what is being built.
      server.exec("REVOKE ALL ON DATABASE " + qi(name) + " FROM PUBLIC");
      return attempt;
    } catch (const Error& e) {
      if (!in_use(e) || attempt >= kMaxCloneAttempts) throw;
    }
  }
}

// In one transaction: the target's database (if any) renamed away, the new
// content renamed into place with the target's database grants. Sessions on
// either are ended first (a rename waits up to 5 s for them to go).
std::string swap_sql(const std::string& target, const std::string& temp,
                     const std::string& retired) {
  const Roles r = roles_for(target);
  std::string grants;
  for (const std::string& g : database_grants_sql(target, r))
    grants += "    EXECUTE " + ql(g) + ";\n";
  return "DO " +
         dollar_quote(
             "BEGIN\n"
             "  PERFORM pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity "
             "WHERE datname IN (" +
             ql(target) + ", " + ql(temp) +
             ") AND pid <> pg_catalog.pg_backend_pid();\n"
             "  IF EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = " +
             ql(target) + ") THEN\n    EXECUTE " +
             ql("ALTER DATABASE " + qi(target) + " RENAME TO " + qi(retired)) +
             ";\n  END IF;\n  EXECUTE " +
             ql("ALTER DATABASE " + qi(temp) + " RENAME TO " + qi(target)) + ";\n" + grants +
             "  IF EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'envdb_auth') THEN\n"
             "    EXECUTE " +
             ql("GRANT CONNECT ON DATABASE " + qi(target) + " TO envdb_auth") +
             ";\n  END IF;\nEND") +
         " LANGUAGE plpgsql";
}

// Returns how long the drop of the old content took (none when kept).
int64_t swap(ServerSession& server, const std::string& target, bool keep_retired) {
  const std::string temp = temp_database_name(target), retired = retired_database_name(target);
  const std::string sql = swap_sql(target, temp, retired);
  for (int attempt = 1;; ++attempt) {
    try {
      server.exec(sql);
      break;
    } catch (const Error& e) {
      if (!in_use(e) || attempt >= kMaxCloneAttempts) throw;
    }
  }
  if (keep_retired) return 0;
  const int64_t at = steady_ms();
  drop_if_exists(server, retired);
  return steady_ms() - at;
}

// What an earlier attempt left: the content it was building, and the old
// content it had swapped out (only when the target is in place).
void clear_leftovers(ServerSession& server, const std::string& target) {
  drop_if_exists(server, temp_database_name(target));
  if (exists(server, target)) drop_if_exists(server, retired_database_name(target));
}

// The map from the source's roles to the target's, as a query: src_oid,
// src, dst, scope (one of the three scope roles, whose grants carry over).
std::string role_map_sql(const Roles& s, const Roles& t, const std::string& source) {
  return "SELECT r.oid AS src_oid, r.rolname::text AS src, CASE r.rolname WHEN " + ql(s.owner) +
         " THEN " + ql(t.owner) + " WHEN " + ql(s.readwrite) + " THEN " + ql(t.readwrite) +
         " WHEN " + ql(s.readonly) + " THEN " + ql(t.readonly) + " ELSE " + ql(t.admin) +
         " END AS dst, r.rolname IN (" + ql(s.admin) + ", " + ql(s.readwrite) + ", " +
         ql(s.readonly) +
         ") AS scope FROM pg_catalog.pg_roles r WHERE "
         "pg_catalog.starts_with(r.rolname, " +
         ql(source + "_") + ")";
}

// GRANT statements giving each scope role of the target what the matching
// source role holds in this database (a UNION of one query per kind of
// object; `m` is the role map, `a` an aclexplode row).
const char* const kTranslatedGrants =
    "SELECT pg_catalog.format('GRANT %s ON %s %s TO %I', a.privilege_type, CASE c.relkind WHEN "
    "'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass, m.dst) || o.wgo AS s FROM pg_class c, "
    "aclexplode(c.relacl) a, envdb_map m, LATERAL (SELECT CASE WHEN a.is_grantable THEN ' WITH "
    "GRANT OPTION' ELSE '' END AS wgo) o WHERE m.scope AND m.src_oid = a.grantee\n"
    "UNION ALL SELECT pg_catalog.format('GRANT %s (%I) ON TABLE %s TO %I', a.privilege_type, "
    "t.attname, t.attrelid::regclass, m.dst) FROM pg_attribute t, aclexplode(t.attacl) a, "
    "envdb_map m WHERE m.scope AND m.src_oid = a.grantee\n"
    "UNION ALL SELECT pg_catalog.format('GRANT %s ON SCHEMA %I TO %I', a.privilege_type, "
    "n.nspname, m.dst) FROM pg_namespace n, aclexplode(n.nspacl) a, envdb_map m WHERE m.scope "
    "AND m.src_oid = a.grantee\n"
    "UNION ALL SELECT pg_catalog.format('GRANT %s ON ROUTINE %s TO %I', a.privilege_type, "
    "p.oid::regprocedure, m.dst) FROM pg_proc p, aclexplode(p.proacl) a, envdb_map m WHERE "
    "m.scope AND m.src_oid = a.grantee\n"
    "UNION ALL SELECT pg_catalog.format('GRANT %s ON TYPE %s TO %I', a.privilege_type, "
    "y.oid::regtype, m.dst) FROM pg_type y, aclexplode(y.typacl) a, envdb_map m WHERE m.scope "
    "AND m.src_oid = a.grantee\n"
    "UNION ALL SELECT pg_catalog.format('GRANT %s ON LARGE OBJECT %s TO %I', a.privilege_type, "
    "l.oid, m.dst) FROM pg_largeobject_metadata l, aclexplode(l.lomacl) a, envdb_map m WHERE "
    "m.scope AND m.src_oid = a.grantee\n"
    // Default privileges of a scope role, or granted to one: the same for
    // the matching roles (PUBLIC and other roles as they were).
    "UNION ALL SELECT pg_catalog.format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s "
    "TO %s', coalesce(mo.dst, o.rolname), CASE WHEN d.defaclnamespace <> 0 THEN ' IN SCHEMA ' "
    "|| d.defaclnamespace::regnamespace::text ELSE '' END, a.privilege_type, CASE "
    "d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' "
    "WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE "
    "pg_catalog.quote_ident(coalesce(mg.dst, pg_catalog.pg_get_userbyid(a.grantee))) END) FROM "
    "pg_default_acl d JOIN pg_roles o ON o.oid = d.defaclrole CROSS JOIN aclexplode(d.defaclacl) "
    "a LEFT JOIN envdb_map mo ON mo.scope AND mo.src_oid = d.defaclrole LEFT JOIN envdb_map mg "
    "ON mg.scope AND mg.src_oid = a.grantee WHERE (mo.src IS NOT NULL OR mg.src IS NOT NULL) "
    "AND (mo.src IS NOT NULL OR NOT pg_catalog.starts_with(o.rolname, $src))\n"
    // Row security policies naming a scope role name the matching one.
    "UNION ALL SELECT pg_catalog.format('ALTER POLICY %I ON %s TO %s', p.polname, "
    "p.polrelid::regclass, (SELECT pg_catalog.string_agg(CASE WHEN x = 0 THEN 'public' ELSE "
    "pg_catalog.quote_ident(coalesce(mm.dst, pg_catalog.pg_get_userbyid(x))) END, ', ') FROM "
    "unnest(p.polroles) x LEFT JOIN envdb_map mm ON mm.scope AND mm.src_oid = x)) FROM "
    "pg_policy p WHERE p.polroles && (SELECT array_agg(src_oid) FROM envdb_map WHERE scope)";

// Tables, sequences and materialized views of the environment's own schemas
// (not envdb's, not the system's, not an extension's).
std::string own_relations_sql(const char* kinds) {
  return std::string(
             "SELECT c.oid::regclass::text AS s FROM pg_class c JOIN pg_namespace n ON n.oid = "
             "c.relnamespace WHERE c.relkind IN (") +
         kinds +
         ") AND n.nspname NOT IN ('envdb', 'pg_catalog', 'information_schema') AND n.nspname !~ "
         "'^pg_(toast|temp)' AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = "
         "'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";
}

std::string replace_all(std::string text, const std::string& what, const std::string& with) {
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
    text.replace(at, what.size(), with);
  return text;
}

}  // namespace

std::string temp_database_name(const std::string& name) {
  (void)roles_for(name);  // validates the name
  return name + "_copy";
}

// The old content's name: the target's, with this suffix (also matched in
// retired_leftovers_sql).
constexpr const char* kRetiredSuffix = "_old";

std::string retired_database_name(const std::string& name) {
  (void)roles_for(name);
  return name + kRetiredSuffix;
}

std::string backup_database_name(const std::string& name, const std::string& backup_id) {
  (void)roles_for(name);
  require_id("backup_id", backup_id);
  return name + "_b_" + database_name_for(backup_id).substr(4);
}

std::string beside_databases_sql(const std::string& name) {
  (void)roles_for(name);
  return "SELECT pg_catalog.json_agg(datname ORDER BY datname)::text FROM pg_catalog.pg_database "
         "WHERE pg_catalog.starts_with(datname, " +
         ql(name + "_") + ")";
}

std::string clear_template_sql(const std::string& template_db, int64_t creator_pid) {
  const std::string pid = std::to_string(creator_pid);
  return "SELECT count(pg_catalog.pg_terminate_backend(a.pid)) AS ended FROM "
         "pg_catalog.pg_stat_activity a WHERE a.datname = " +
         ql(template_db) + " AND a.pid <> pg_catalog.pg_backend_pid() AND a.pid <> " + pid +
         " AND EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.pid = " + pid +
         " AND l.locktype = 'object' AND l.classid = 'pg_catalog.pg_database'::pg_catalog.regclass "
         "AND l.objid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = " +
         ql(template_db) + ") AND l.granted)";
}

std::string hand_over_sql(const std::string& source, const std::string& target,
                          const std::string& environment_id, const std::string& organization_id,
                          bool schema_only) {
  const Roles s = roles_for(source), t = roles_for(target);
  if (source == target)
    fail(Code::invalid_parameter,
         "a database is not copied onto itself (" + quote_value(source) + ")");
  require_id("environment_id", environment_id);
  require_id("organization_id", organization_id);
  // The role map is kept in arrays, a CTE of each query that needs it (a
  // temporary table would create this fresh database's temporary schema
  // first: tens of ms).
  const std::string with_map =
      "WITH envdb_map AS (SELECT * FROM unnest(m_oid, m_src, m_dst, m_scope) AS m(src_oid, src, "
      "dst, scope)) ";
  std::string body =
      "DECLARE it record; owned text[]; regrant text[]; list text; sv bigint; m_oid oid[]; m_src "
      "text[]; m_dst text[]; m_scope boolean[];\nBEGIN\n"
      "  SET LOCAL search_path = pg_catalog, pg_temp;\n"
      // Its commit need not wait for the disk: the swap, on the same server
      // and later, flushes the WAL up to its own commit, this one included;
      // a crash before that finds the copy unfinished and makes it again.
      "  SET LOCAL synchronous_commit = off;\n"
      "  SELECT array_agg(src_oid), array_agg(src), array_agg(dst), array_agg(scope) INTO m_oid, "
      "m_src, m_dst, m_scope FROM (" +
      role_map_sql(s, t, source) +
      ") r;\n"
      // The grants the source's roles hold on databases (the source's own
      // CONNECT...): DROP OWNED below takes them, they are given back.
      "  " +
      with_map +
      "SELECT array_agg(format('GRANT %s ON DATABASE %I TO %I', a.privilege_type, d.datname, "
      "m.src) || CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) INTO regrant "
      "FROM pg_database d, aclexplode(d.datacl) a, envdb_map m WHERE m.src_oid = a.grantee;\n"
      // REASSIGN OWNED moves the databases the source's owner role owns
      // (the source itself) too: they are given back below.
      "  SELECT array_agg(datname::text) INTO owned FROM pg_database WHERE datdba = (SELECT oid "
      "FROM pg_roles WHERE rolname = $owner);\n"
      // One statement per target role (the source's admin and logins all go
      // to the target's admin).
      "  FOR it IN " +
      with_map +
      "SELECT dst, string_agg(quote_ident(src), ', ' ORDER BY src) AS srcs FROM envdb_map GROUP "
      "BY dst LOOP\n"
      "    EXECUTE 'REASSIGN OWNED BY ' || it.srcs || ' TO ' || quote_ident(it.dst);\n"
      "  END LOOP;\n"
      "  FOR it IN SELECT unnest(owned) AS d LOOP\n"
      "    EXECUTE format('ALTER DATABASE %I OWNER TO %I', it.d, $owner);\n  END LOOP;\n"
      "  FOR it IN " +
      with_map + std::string(kTranslatedGrants) +
      " LOOP\n    EXECUTE it.s;\n  END LOOP;\n"
      // One role at a time: a default privilege of one role granted to
      // another trips DROP OWNED of both in one statement.
      "  FOR it IN " +
      with_map +
      "SELECT src FROM envdb_map ORDER BY scope DESC, src LOOP\n"
      "    EXECUTE 'DROP OWNED BY ' || quote_ident(it.src);\n  END LOOP;\n"
      "  FOR it IN SELECT unnest(regrant) AS s LOOP\n    EXECUTE it.s;\n  END LOOP;\n"
      "  IF EXISTS (" +
      with_map +
      "SELECT FROM pg_shdepend d JOIN envdb_map m ON m.src_oid = d.refobjid WHERE "
      "d.refclassid = 'pg_authid'::regclass AND d.dbid = (SELECT oid FROM pg_database WHERE "
      "datname = current_database())) THEN\n"
      "    RAISE EXCEPTION 'a role of the source still owns or is granted something in the "
      "copy';\n  END IF;\n";
  if (schema_only)
    body += "  SELECT string_agg(s, ', ') INTO list FROM (" + own_relations_sql("'r', 'p'") +
            ") r;\n  IF list IS NOT NULL THEN\n"
            "    EXECUTE 'TRUNCATE ' || list || ' RESTART IDENTITY CASCADE';\n  END IF;\n"
            "  FOR it IN " +
            own_relations_sql("'S'") +
            " LOOP\n    EXECUTE 'ALTER SEQUENCE ' || it.s || ' RESTART';\n  END LOOP;\n"
            "  FOR it IN " +
            own_relations_sql("'m'") +
            " LOOP\n    EXECUTE 'REFRESH MATERIALIZED VIEW ' || it.s || ' WITH NO DATA';\n"
            "  END LOOP;\n  PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;\n";
  // The identity stamp names the target (its environment_id cannot be
  // updated: the row is replaced).
  body +=
      "  IF to_regclass('envdb.sys_environment_info') IS NOT NULL THEN\n"
      "    SELECT schema_version INTO sv FROM envdb.sys_environment_info LIMIT 1;\n"
      "    DELETE FROM envdb.sys_environment_info;\n"
      "    INSERT INTO envdb.sys_environment_info (environment_id, organization_id, "
      "database_name, schema_version, initialized_at) VALUES ($env, $org, $target, sv, now());\n"
      "  END IF;\nEND";
  body = replace_all(body, "$owner", ql(s.owner));
  body = replace_all(body, "$src", ql(source + "_"));
  body = replace_all(body, "$env", ql(environment_id));
  body = replace_all(body, "$org", ql(organization_id));
  body = replace_all(body, "$target", ql(target));
  return "DO " + dollar_quote(body) + " LANGUAGE plpgsql";
}

namespace {

// The new content of a copy, restore or reset built beside the target, then
// swapped in.
template <typename Step, typename Clone>
void build_and_swap(const CopyPlan& p, ServerSession& server, const std::string& temp,
                    const Roles& t, CopyOutcome& out, Step&& step, Clone&& timed_clone) {
  auto need = [](const std::optional<std::string>& name, const char* what) -> const std::string& {
    if (!name) throw Error(Code::internal, std::string("the job names no ") + what);
    return *name;
  };
  if (p.kind == "reset_database") {
    step("creating an empty database");
    server.exec_top_level("CREATE DATABASE " + qi(temp) + " OWNER " + qi(t.owner) +
                          " TEMPLATE template0");
    server.exec("REVOKE ALL ON DATABASE " + qi(temp) + " FROM PUBLIC");
    server.exec_in_database(temp,
                            in_database_sql(t, p.environment_id, p.organization_id, p.target));
  } else {
    const std::string& from = p.kind == "copy_database" ? need(p.source, "source database")
                                                        : need(p.backup, "backup database");
    if (!exists(server, from))
      fail(Code::not_found, "database " + quote_value(from) + " is not on the server");
    timed_clone(from, temp);
    // A restore is the environment's own content: its roles stay.
    if (p.kind == "copy_database") {
      step("handing the copy to the target's roles");
      const int64_t at = steady_ms();
      server.exec_in_database(temp, hand_over_sql(from, p.target, p.environment_id,
                                                  p.organization_id, p.mode == "schema"));
      out.hand_ms = steady_ms() - at;
    }
  }
  step("swapping it in");
  const int64_t at = steady_ms();
  out.drop_ms = swap(server, p.target, p.keep_retired);
  out.swap_ms = steady_ms() - at;
  if (p.keep_retired) out.retired = retired_database_name(p.target);
}

}  // namespace

bool drop_retired(ServerSession& server, const std::string& target) {
  const std::string retired = retired_database_name(target);
  if (!exists(server, target) || !exists(server, retired)) return false;
  drop_if_exists(server, retired);
  return true;
}

std::string retired_leftovers_sql() {
  return "SELECT p.datname::text AS name FROM pg_catalog.pg_database p JOIN "
         "envdb.sys_environment_database d ON p.datname = d.database_name || " +
         quote_value(kRetiredSuffix) +
         " WHERE "
         "d.driver = 'postgres' AND d.host_id IS NULL AND EXISTS (SELECT FROM "
         "pg_catalog.pg_database t WHERE t.datname = d.database_name) AND NOT EXISTS (SELECT FROM "
         "envdb.sys_provisioning_job j WHERE j.database_id = d.id AND j.status IN ('pending', "
         "'running')) ORDER BY 1";
}

CopyOutcome carry_out_copy(const CopyPlan& p, ServerSession& server,
                           const std::function<void(const std::string&)>& progress) {
  const int64_t started = steady_ms();
  auto step = [&](const std::string& what) {
    if (progress) progress(what);
  };
  CopyOutcome out;
  const Roles t = roles_for(p.target);
  const std::string temp = temp_database_name(p.target);
  auto timed_clone = [&](const std::string& from, const std::string& name) {
    step("cloning " + from);
    const int64_t at = steady_ms();
    out.attempts = clone(server, from, name, t.owner);
    out.clone_ms = steady_ms() - at;
  };
  auto need = [](const std::optional<std::string>& name, const char* what) -> const std::string& {
    if (!name) throw Error(Code::internal, std::string("the job names no ") + what);
    return *name;
  };
  if (p.kind == "delete_backup") {
    drop_if_exists(server, need(p.backup, "backup database"));
  } else if (p.kind == "backup_database") {
    const std::string& b = need(p.backup, "backup database");
    if (!exists(server, b)) timed_clone(p.target, b);
    // A backup is kept, not used: nobody connects to it (not even to read).
    server.exec("REVOKE ALL ON DATABASE " + qi(b) + " FROM PUBLIC");
    server.exec("ALTER DATABASE " + qi(b) + " ALLOW_CONNECTIONS false");
    if (auto size = server.query_value("SELECT pg_catalog.pg_database_size(" + ql(b) + ")"))
      out.size_bytes = std::stoll(*size);
  } else if (p.kind == "copy_database" || p.kind == "restore_database" ||
             p.kind == "reset_database") {
    if (p.kind == "copy_database" && p.mode != "full" && p.mode != "schema")
      fail(Code::invalid_parameter, "mode " + quote_value(p.mode) + " is not full or schema");
    for (const std::string& sql : ensure_roles_sql(t)) server.exec(sql);
    clear_leftovers(server, p.target);
    try {
      build_and_swap(p, server, temp, t, out, step, timed_clone);
    } catch (const Error&) {
      // A failure (not a crash: a run after one starts with clear_leftovers)
      // leaves nothing beside the target; the target was not touched.
      try {
        drop_if_exists(server, temp);
      } catch (const Error&) {
      }
      throw;
    }
  } else {
    throw Error(Code::internal, "job kind " + quote_value(p.kind) + " is not a copy");
  }
  out.total_ms = steady_ms() - started;
  return out;
}

}  // namespace envdb::postgres
