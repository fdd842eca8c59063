// Prints the Postgres install script envdb--<version>.sql from the core's one
// catalog definition and function table, so the Postgres catalog and the SQLite
// one cannot drift apart.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "catalog/schema.hpp"
#include "core/version.hpp"
#include "surface/api.hpp"
#include "upgrade_sql.hpp"

namespace {

using envdb::api::Type;

const char* pg_type(Type t) {
  switch (t) {
    case Type::text: return "text";
    case Type::integer: return "bigint";
    case Type::boolean: return "boolean";
    case Type::json: return "jsonb";
    case Type::interval: return "interval";
    case Type::timestamp: return "timestamptz";
  }
  return "text";
}

std::string roles_of(unsigned roles) {
  std::string out;
  auto add = [&](unsigned bit, const char* name) {
    if (roles & bit) out += std::string(out.empty() ? "" : ", ") + name;
  };
  add(envdb::api::kAdmin, "envdb_admin");
  add(envdb::api::kRouter, "envdb_router");
  add(envdb::api::kReader, "envdb_reader");
  add(envdb::api::kAuth, "envdb_auth");
  return out;
}

void function_sql(std::ostream& out, const envdb::api::Function& fn, bool request_form) {
  std::string signature, types;
  if (request_form) {
    signature = "request jsonb";
    types = "jsonb";
  } else {
    for (size_t i = 0; i < fn.params.size(); ++i) {
      const auto& p = fn.params[i];
      signature += std::string(i ? ", " : "") + p.name + " " + pg_type(p.type);
      if (p.pg_default) signature += std::string(" DEFAULT ") + p.pg_default;
      types += std::string(i ? ", " : "") + pg_type(p.type);
    }
  }
  const std::string name = std::string("envdb.") + fn.name;
  out << "\n-- " << fn.summary << "\n"
      << "CREATE FUNCTION " << name << "(" << signature << ")\n"
      << "  RETURNS " << pg_type(fn.returns) << "\n"
      << "  LANGUAGE c "
      << ((fn.flags & envdb::api::kPure) ? "IMMUTABLE PARALLEL SAFE" : "VOLATILE")
      << " SECURITY DEFINER\n"
      << "  SET search_path = pg_catalog, pg_temp\n"
      << "  AS 'MODULE_PATHNAME', 'envdb_fn';\n"
      << "REVOKE ALL ON FUNCTION " << name << "(" << types << ") FROM PUBLIC;\n";
  if (fn.roles)
    out << "GRANT EXECUTE ON FUNCTION " << name << "(" << types << ") TO " << roles_of(fn.roles)
        << ";\n";
}

void header(std::ostream& out, const char* extension) {
  out << "-- " << extension << " " << envdb::kVersion << " install script.\n"
      << "-- Generated from the core (shared/catalog/schema.cpp, shared/surface/api.cpp) by "
         "gen_install_sql;\n"
      << "-- edit those, not this file.\n\n"
      << "\\echo Use \"CREATE EXTENSION " << extension << "\" to load this file. \\quit\n\n";
  out << "-- Purpose roles. Roles belong to the cluster, so an earlier install may have made "
         "them.\n"
      << "DO $roles$\nBEGIN\n";
  for (const char* role : {"envdb_admin", "envdb_router", "envdb_reader"})
    out << "  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '" << role
        << "') THEN\n    CREATE ROLE " << role << " NOLOGIN;\n  END IF;\n";
  out << "END\n$roles$;\n\n";
}

// Which organization a row belongs to, for envdb_reader's row-level security:
// with an active environment set (set_active_environment), a reader sees only
// that organization's rows.
struct ReaderScope {
  const char* table;
  const char* organization_of_row;
};
const ReaderScope kReaderScopes[] = {
    {"sys_organization", "id"},
    {"sys_environment", "organization_id"},
    {"sys_environment_member", "organization_id"},
    {"sys_audit_event", "organization_id"},
    {"sys_environment_database",
     "(SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id)"},
    {"sys_provisioning_job",
     "(SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id)"},
    {"sys_database_credential",
     "(SELECT e.organization_id FROM envdb.sys_environment_database d JOIN envdb.sys_environment e "
     "ON e.id = d.environment_id WHERE d.id = database_id)"},
    {"sys_environment_hostname", "organization_id"},
    {"sys_environment_usage",
     "(SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id)"},
    {"sys_environment_backup",
     "(SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id)"},
};

// Catalog tables that belong to no organization, and what a reader with an
// active environment may see of them (the policy's whole condition). Without
// a context, nothing.
struct ReaderGlobal {
  const char* table;
  const char* visible;
};
const ReaderGlobal kReaderGlobals[] = {
    {"sys_config", "envdb.current_organization_id() IS NOT NULL"},
    // A host only when a database of the active organization lives on it.
    {"sys_database_host",
     "EXISTS (SELECT 1 FROM envdb.sys_environment_database d JOIN envdb.sys_environment e "
     "ON e.id = d.environment_id WHERE d.host_id = sys_database_host.id "
     "AND e.organization_id = envdb.current_organization_id())"},
};

// envdb_data: the data-plane functions alone, for environment databases. It
// shares the library with envdb and never creates control-plane tables.
int data_plane_script(std::ostream& out) {
  using namespace envdb;
  header(out, "envdb_data");
  // envdb_auth: the one role that may look up a login's verifier (a pooler's
  // auth_user is a member); the postgres driver grants it CONNECT.
  out << "DO $auth$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = "
         "'envdb_auth') THEN\n    CREATE ROLE envdb_auth NOLOGIN;\n  END IF;\nEND\n$auth$;\n\n";
  out << "GRANT USAGE ON SCHEMA envdb TO envdb_admin;\n"
      << "GRANT USAGE ON SCHEMA envdb TO envdb_auth;\n";
  for (auto& fn : api::functions())
    if ((fn.flags & api::kDataPlane) && api::available_in(fn, "postgres"))
      function_sql(out, fn, false);
  return 0;
}

int control_plane_script(std::ostream& out);

}  // namespace

// gen_install_sql [envdb|envdb_data]
//   the install script of the current version, on stdout.
// gen_install_sql upgrade <envdb|envdb_data> <frozen old install script> <old version>
//   the upgrade script from that version to this one, derived by comparing the
//   two install scripts (upgrade_sql.cpp); a change it cannot express fails.
int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "envdb";
  if (mode == "upgrade") {
    if (argc != 5) {
      std::cerr << "usage: gen_install_sql upgrade <envdb|envdb_data> <old script> <old version>\n";
      return 2;
    }
    const std::string extension = argv[2];
    std::ifstream in(argv[3], std::ios::binary);
    if (!in) {
      std::cerr << "gen_install_sql: cannot read " << argv[3] << "\n";
      return 2;
    }
    std::stringstream old_script, new_script;
    old_script << in.rdbuf();
    if (extension == "envdb_data")
      data_plane_script(new_script);
    else
      control_plane_script(new_script);
    try {
      std::cout << envdb::pg_upgrade::upgrade_script(extension, argv[4], envdb::kVersion,
                                                     old_script.str(), new_script.str());
    } catch (const std::exception& e) {
      std::cerr << "gen_install_sql: cannot derive " << extension << "--" << argv[4] << "--"
                << envdb::kVersion << ".sql: " << e.what() << "\n";
      return 1;
    }
    return 0;
  }
  if (mode == "envdb_data") return data_plane_script(std::cout);
  return control_plane_script(std::cout);
}

namespace {

int control_plane_script(std::ostream& out) {
  using namespace envdb;
  header(out, "envdb");

  out << "-- Trigger function behind the catalog's immutable columns and append-only tables.\n"
      << "CREATE FUNCTION envdb.reject_change() RETURNS trigger\n"
      << "  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$\n"
      << "BEGIN\n"
      << "  IF TG_ARGV[0] = 'row' THEN\n"
      << "    RAISE EXCEPTION 'invalid_parameter: % is append-only', TG_TABLE_NAME\n"
      << "      USING ERRCODE = '22023';\n"
      << "  END IF;\n"
      << "  RAISE EXCEPTION 'invalid_parameter: %.% is immutable', TG_TABLE_NAME, TG_ARGV[0]\n"
      << "    USING ERRCODE = '22023';\n"
      << "END\n$fn$;\n"
      << "REVOKE ALL ON FUNCTION envdb.reject_change() FROM PUBLIC;\n\n";

  out << "-- Trigger function behind the resolve cache's coherence: a change to a table the\n"
      << "-- router's rows come from sends a relcache invalidation (at commit, WAL-logged).\n"
      << "CREATE FUNCTION envdb.invalidate_resolve_cache() RETURNS trigger\n"
      << "  LANGUAGE C SET search_path = pg_catalog, pg_temp\n"
      << "  AS 'MODULE_PATHNAME', 'envdb_invalidate_resolve_cache';\n"
      << "REVOKE ALL ON FUNCTION envdb.invalidate_resolve_cache() FROM PUBLIC;\n\n";

  out << "-- The control-plane catalog.\n" << catalog::control_plane_ddl(Dialect::postgres) << "\n";

  out << "-- pg_dump keeps the catalog's rows (the tables themselves belong to the extension).\n";
  for (auto& t : catalog::control_plane())
    out << "SELECT pg_catalog.pg_extension_config_dump('envdb." << t.name << "', '');\n";
  // ... and where a numbered table's sequence stands.
  for (auto& t : catalog::control_plane())
    if (!t.numbered_column.empty())
      out << "SELECT pg_catalog.pg_extension_config_dump('envdb." << t.name << "_"
          << t.numbered_column << "', '');\n";

  out << "\n-- Only the owner reads the tables directly; envdb_reader reads all but secrets.\n"
      << "GRANT USAGE ON SCHEMA envdb TO envdb_admin, envdb_router, envdb_reader;\n";
  for (auto& t : catalog::control_plane()) {
    std::string cols;
    for (auto& c : t.columns)
      if (!c.secret) cols += (cols.empty() ? "" : ", ") + c.name;
    out << "REVOKE ALL ON envdb." << t.name << " FROM PUBLIC;\n"
        << "GRANT SELECT (" << cols << ") ON envdb." << t.name << " TO envdb_reader;\n";
  }
  out << "REVOKE ALL ON envdb.sys_tenant_database FROM PUBLIC;\n"
      << "GRANT SELECT ON envdb.sys_tenant_database TO envdb_reader;\n";

  out << "\n-- The SQL surface: every function enters the library through one guarded entry "
         "point.\n";
  bool has_context = false;
  for (auto& fn : api::functions()) {
    if (!api::available_in(fn, "postgres") || (fn.flags & api::kDataPlane)) continue;
    function_sql(out, fn, false);
    if (fn.flags & api::kRequestForm) function_sql(out, fn, true);
    has_context = has_context || std::string(fn.name) == "current_organization_id";
  }

  if (has_context) {
    out << "\n-- Row-level security for envdb_reader, failing closed: only the active\n"
        << "-- environment's organization's rows, and no rows at all without a context. The\n"
        << "-- owner (and so every envdb function) is not subject to it.\n";
    for (const ReaderScope& scope : kReaderScopes)
      out << "ALTER TABLE envdb." << scope.table << " ENABLE ROW LEVEL SECURITY;\n"
          << "CREATE POLICY reader_organization ON envdb." << scope.table
          << " FOR SELECT TO envdb_reader\n  USING (" << scope.organization_of_row
          << " = envdb.current_organization_id());\n";
    for (const ReaderGlobal& global : kReaderGlobals)
      out << "ALTER TABLE envdb." << global.table << " ENABLE ROW LEVEL SECURITY;\n"
          << "CREATE POLICY reader_organization ON envdb." << global.table
          << " FOR SELECT TO envdb_reader\n  USING (" << global.visible << ");\n";
    // A catalog table without a policy would be open to envdb_reader: refuse
    // to generate the script rather than ship it.
    for (auto& t : catalog::control_plane()) {
      bool covered = false;
      for (const ReaderScope& scope : kReaderScopes) covered = covered || t.name == scope.table;
      for (const ReaderGlobal& global : kReaderGlobals) covered = covered || t.name == global.table;
      if (!covered) {
        std::cerr << "gen_install_sql: catalog table " << t.name
                  << " has no envdb_reader row-level security policy (kReaderScopes)\n";
        return 1;
      }
    }
    out << "-- The v4 view reads as its caller, so the policies apply through it too.\n"
        << "ALTER VIEW envdb.sys_tenant_database SET (security_invoker = true);\n";
  }
  return 0;
}

}  // namespace
