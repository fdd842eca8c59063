-- envdb_data 0.3.0 install script.
-- Generated from the core (shared/catalog/schema.cpp, shared/surface/api.cpp) by gen_install_sql;
-- edit those, not this file.

\echo Use "CREATE EXTENSION envdb_data" to load this file. \quit

-- Purpose roles. Roles belong to the cluster, so an earlier install may have made them.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'envdb_admin') THEN
    CREATE ROLE envdb_admin NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'envdb_router') THEN
    CREATE ROLE envdb_router NOLOGIN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'envdb_reader') THEN
    CREATE ROLE envdb_reader NOLOGIN;
  END IF;
END
$roles$;

DO $auth$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'envdb_auth') THEN
    CREATE ROLE envdb_auth NOLOGIN;
  END IF;
END
$auth$;

GRANT USAGE ON SCHEMA envdb TO envdb_admin;
GRANT USAGE ON SCHEMA envdb TO envdb_auth;

-- create or upgrade envdb's system tables in this environment database and stamp it with the environment's identity; idempotent. organization_id and database_name may be omitted: a stamp keeps its values, a fresh database records NULL (filled in once by a later call). Another identity, a drifted checksum or a newer version is schema_mismatch
CREATE FUNCTION envdb.init_environment_schema(environment_id text, organization_id text DEFAULT NULL, database_name text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.init_environment_schema(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.init_environment_schema(text, text, text) TO envdb_admin;

-- the data-plane schema version of this database, NULL when it was never initialized
CREATE FUNCTION envdb.environment_schema_version()
  RETURNS bigint
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.environment_schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.environment_schema_version() TO envdb_admin;

-- the SCRAM-SHA-256 verifier of one of this environment database's live envdb logins, for a connection pooler's auth_query; NULL for any other role
CREATE FUNCTION envdb.login_verifier(login text)
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.login_verifier(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.login_verifier(text) TO envdb_auth;
