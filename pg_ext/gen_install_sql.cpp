// Prints the Postgres install script envdb--<version>.sql from the core's one
// catalog definition and function table, so the Postgres catalog and the SQLite
// one cannot drift apart.
#include <iostream>
#include <sstream>
#include <string>

#include "api.hpp"
#include "catalog.hpp"
#include "version.hpp"

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
      << "  LANGUAGE c " << ((fn.flags & envdb::api::kPure) ? "IMMUTABLE PARALLEL SAFE" : "VOLATILE")
      << " SECURITY DEFINER\n"
      << "  SET search_path = pg_catalog, pg_temp\n"
      << "  AS 'MODULE_PATHNAME', 'envdb_fn';\n"
      << "REVOKE ALL ON FUNCTION " << name << "(" << types << ") FROM PUBLIC;\n";
  if (fn.roles)
    out << "GRANT EXECUTE ON FUNCTION " << name << "(" << types << ") TO " << roles_of(fn.roles)
        << ";\n";
}

}  // namespace

int main() {
  using namespace envdb;
  std::ostream& out = std::cout;
  out << "-- envdb " << kVersion << " install script.\n"
      << "-- Generated from the core (shared/catalog.cpp, shared/api.cpp) by gen_install_sql;\n"
      << "-- edit those, not this file.\n\n"
      << "\\echo Use \"CREATE EXTENSION envdb\" to load this file. \\quit\n\n";

  out << "-- Purpose roles. Roles belong to the cluster, so an earlier install may have made them.\n"
      << "DO $roles$\nBEGIN\n";
  for (const char* role : {"envdb_admin", "envdb_router", "envdb_reader"})
    out << "  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '" << role
        << "') THEN\n    CREATE ROLE " << role << " NOLOGIN;\n  END IF;\n";
  out << "END\n$roles$;\n\n";

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

  out << "-- The control-plane catalog.\n" << catalog::control_plane_ddl(Dialect::postgres) << "\n";

  out << "-- pg_dump keeps the catalog's rows (the tables themselves belong to the extension).\n";
  for (auto& t : catalog::control_plane())
    out << "SELECT pg_catalog.pg_extension_config_dump('envdb." << t.name << "', '');\n";

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

  out << "\n-- The SQL surface: every function enters the library through one guarded entry point.\n";
  for (auto& fn : api::functions()) {
    if (!api::available_in(fn, "postgres") || (fn.flags & api::kDataPlane)) continue;
    function_sql(out, fn, false);
    if (fn.flags & api::kRequestForm) function_sql(out, fn, true);
  }
  return 0;
}
