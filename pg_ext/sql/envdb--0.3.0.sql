-- envdb 0.3.0 install script.
-- Generated from the core (shared/catalog/schema.cpp, shared/surface/api.cpp) by gen_install_sql;
-- edit those, not this file.

\echo Use "CREATE EXTENSION envdb" to load this file. \quit

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

-- Trigger function behind the catalog's immutable columns and append-only tables.
CREATE FUNCTION envdb.reject_change() RETURNS trigger
  LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
  IF TG_ARGV[0] = 'row' THEN
    RAISE EXCEPTION 'invalid_parameter: % is append-only', TG_TABLE_NAME
      USING ERRCODE = '22023';
  END IF;
  RAISE EXCEPTION 'invalid_parameter: %.% is immutable', TG_TABLE_NAME, TG_ARGV[0]
    USING ERRCODE = '22023';
END
$fn$;
REVOKE ALL ON FUNCTION envdb.reject_change() FROM PUBLIC;

-- The control-plane catalog.
CREATE TABLE envdb.sys_config (
  key text NOT NULL,
  value text,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (key)
);
CREATE TABLE envdb.sys_organization (
  id text NOT NULL,
  slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  deprovisioned_at timestamptz,
  PRIMARY KEY (id),
  UNIQUE (slug)
);
CREATE TABLE envdb.sys_environment (
  id text NOT NULL,
  organization_id text NOT NULL,
  slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name text NOT NULL,
  description text,
  env_type text NOT NULL CHECK (env_type IN ('default', 'sandbox', 'development', 'production', 'trial')),
  region text NOT NULL,
  is_default boolean NOT NULL DEFAULT false,
  is_protected boolean NOT NULL DEFAULT false,
  status text NOT NULL CHECK (status IN ('provisioning', 'active', 'suspended', 'archived', 'failed')),
  dlp_policy_id text,
  created_by text,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  archived_at timestamptz,
  PRIMARY KEY (id),
  UNIQUE (organization_id, slug),
  UNIQUE (id, organization_id),
  FOREIGN KEY (organization_id) REFERENCES envdb.sys_organization (id)
);
CREATE INDEX sys_environment_org_default_idx ON envdb.sys_environment (organization_id, is_default);
CREATE UNIQUE INDEX sys_environment_one_default_idx ON envdb.sys_environment (organization_id) WHERE is_default;
CREATE TABLE envdb.sys_database_host (
  id text NOT NULL,
  name text NOT NULL,
  region text NOT NULL,
  host text NOT NULL,
  port bigint NOT NULL CHECK (port BETWEEN 1 AND 65535),
  dbname text NOT NULL,
  username text NOT NULL,
  password_cipher bytea,
  kms_key_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  UNIQUE (name)
);
CREATE INDEX sys_database_host_region_idx ON envdb.sys_database_host (region);
CREATE TABLE envdb.sys_environment_database (
  id text NOT NULL,
  environment_id text NOT NULL,
  database_name text NOT NULL CHECK (database_name ~ '^env-[a-z2-7]{26}$' OR (driver = 'turso' AND database_name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$')),
  database_url text,
  driver text NOT NULL CHECK (driver IN ('turso', 'postgres', 'sqlite')),
  region text NOT NULL,
  storage_limit_mb bigint,
  last_accessed_at timestamptz,
  provisioned_at timestamptz,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  host_id text,
  dropped_at timestamptz,
  PRIMARY KEY (id),
  UNIQUE (environment_id),
  UNIQUE (database_name),
  FOREIGN KEY (environment_id) REFERENCES envdb.sys_environment (id),
  FOREIGN KEY (host_id) REFERENCES envdb.sys_database_host (id)
);
CREATE INDEX sys_environment_database_host_idx ON envdb.sys_environment_database (host_id);
CREATE TRIGGER sys_environment_database_database_name_immutable BEFORE UPDATE OF database_name ON envdb.sys_environment_database FOR EACH ROW WHEN (OLD.database_name IS DISTINCT FROM NEW.database_name) EXECUTE FUNCTION envdb.reject_change('database_name');
CREATE TABLE envdb.sys_database_credential (
  id text NOT NULL,
  database_id text NOT NULL,
  token_cipher bytea NOT NULL,
  kms_key_id text NOT NULL,
  scope text NOT NULL CHECK (scope IN ('readwrite', 'readonly', 'admin')),
  status text NOT NULL CHECK (status IN ('active', 'rotating', 'revoked')),
  username text,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  rotated_from text,
  PRIMARY KEY (id),
  FOREIGN KEY (database_id) REFERENCES envdb.sys_environment_database (id),
  FOREIGN KEY (rotated_from) REFERENCES envdb.sys_database_credential (id)
);
CREATE INDEX sys_database_credential_db_status_idx ON envdb.sys_database_credential (database_id, status);
CREATE INDEX sys_database_credential_expires_idx ON envdb.sys_database_credential (expires_at);
CREATE UNIQUE INDEX sys_database_credential_one_active_idx ON envdb.sys_database_credential (database_id, scope) WHERE status = 'active';
CREATE TABLE envdb.sys_environment_member (
  id text NOT NULL,
  environment_id text NOT NULL,
  organization_id text NOT NULL,
  user_id text NOT NULL,
  role text NOT NULL CHECK (role IN ('env_admin', 'env_maker', 'env_user', 'env_viewer')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  UNIQUE (environment_id, user_id),
  FOREIGN KEY (environment_id, organization_id) REFERENCES envdb.sys_environment (id, organization_id)
);
CREATE INDEX sys_environment_member_user_idx ON envdb.sys_environment_member (user_id);
CREATE TABLE envdb.sys_provisioning_job (
  id text NOT NULL,
  environment_id text NOT NULL,
  database_id text,
  kind text NOT NULL CHECK (kind IN ('create_database', 'drop_database', 'create_login', 'disable_login')),
  driver text NOT NULL CHECK (driver IN ('turso', 'postgres', 'sqlite')),
  status text NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
  attempts bigint NOT NULL DEFAULT 0,
  last_error text,
  worker text,
  payload jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  finished_at timestamptz,
  PRIMARY KEY (id),
  FOREIGN KEY (environment_id) REFERENCES envdb.sys_environment (id),
  FOREIGN KEY (database_id) REFERENCES envdb.sys_environment_database (id)
);
CREATE INDEX sys_provisioning_job_queue_idx ON envdb.sys_provisioning_job (status, driver, created_at);
CREATE INDEX sys_provisioning_job_env_idx ON envdb.sys_provisioning_job (environment_id);
CREATE TABLE envdb.sys_audit_event (
  id text NOT NULL,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor text,
  action text NOT NULL,
  organization_id text,
  environment_id text,
  subject_type text,
  subject_id text,
  detail jsonb NOT NULL DEFAULT '{}'::jsonb,
  PRIMARY KEY (id)
);
CREATE INDEX sys_audit_event_org_idx ON envdb.sys_audit_event (organization_id, occurred_at);
CREATE INDEX sys_audit_event_env_idx ON envdb.sys_audit_event (environment_id, occurred_at);
CREATE TRIGGER sys_audit_event_append_only BEFORE DELETE ON envdb.sys_audit_event FOR EACH ROW EXECUTE FUNCTION envdb.reject_change('row');
CREATE TRIGGER sys_audit_event_append_only_update BEFORE UPDATE ON envdb.sys_audit_event FOR EACH ROW WHEN (NOT ((OLD.action = 'credential.reveal') AND NEW.id IS NOT DISTINCT FROM OLD.id AND NEW.occurred_at IS NOT DISTINCT FROM OLD.occurred_at AND NEW.actor IS NOT DISTINCT FROM OLD.actor AND NEW.action IS NOT DISTINCT FROM OLD.action AND NEW.organization_id IS NOT DISTINCT FROM OLD.organization_id AND NEW.environment_id IS NOT DISTINCT FROM OLD.environment_id AND NEW.subject_type IS NOT DISTINCT FROM OLD.subject_type AND NEW.subject_id IS NOT DISTINCT FROM OLD.subject_id)) EXECUTE FUNCTION envdb.reject_change('row');
CREATE VIEW envdb.sys_tenant_database AS
SELECT d.id, e.organization_id, d.database_name, d.database_url,
       NULL::text AS auth_token, e.status, d.region,
       COALESCE(e.metadata ->> 'plan', 'free') AS plan, d.storage_limit_mb,
       d.last_accessed_at, d.metadata, d.created_at, d.updated_at
  FROM envdb.sys_environment e JOIN envdb.sys_environment_database d ON d.environment_id = e.id
 WHERE e.is_default;

-- pg_dump keeps the catalog's rows (the tables themselves belong to the extension).
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_config', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_organization', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_environment', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_database_host', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_environment_database', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_database_credential', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_environment_member', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_provisioning_job', '');
SELECT pg_catalog.pg_extension_config_dump('envdb.sys_audit_event', '');

-- Only the owner reads the tables directly; envdb_reader reads all but secrets.
GRANT USAGE ON SCHEMA envdb TO envdb_admin, envdb_router, envdb_reader;
REVOKE ALL ON envdb.sys_config FROM PUBLIC;
GRANT SELECT (key, value, updated_at) ON envdb.sys_config TO envdb_reader;
REVOKE ALL ON envdb.sys_organization FROM PUBLIC;
GRANT SELECT (id, slug, name, metadata, created_at, updated_at, deprovisioned_at) ON envdb.sys_organization TO envdb_reader;
REVOKE ALL ON envdb.sys_environment FROM PUBLIC;
GRANT SELECT (id, organization_id, slug, name, description, env_type, region, is_default, is_protected, status, dlp_policy_id, created_by, metadata, created_at, updated_at, archived_at) ON envdb.sys_environment TO envdb_reader;
REVOKE ALL ON envdb.sys_database_host FROM PUBLIC;
GRANT SELECT (id, name, region, host, port, dbname, username, kms_key_id, created_at, updated_at) ON envdb.sys_database_host TO envdb_reader;
REVOKE ALL ON envdb.sys_environment_database FROM PUBLIC;
GRANT SELECT (id, environment_id, database_name, database_url, driver, region, storage_limit_mb, last_accessed_at, provisioned_at, metadata, created_at, updated_at, host_id, dropped_at) ON envdb.sys_environment_database TO envdb_reader;
REVOKE ALL ON envdb.sys_database_credential FROM PUBLIC;
GRANT SELECT (id, database_id, kms_key_id, scope, status, username, issued_at, expires_at, revoked_at, rotated_from) ON envdb.sys_database_credential TO envdb_reader;
REVOKE ALL ON envdb.sys_environment_member FROM PUBLIC;
GRANT SELECT (id, environment_id, organization_id, user_id, role, created_at, updated_at) ON envdb.sys_environment_member TO envdb_reader;
REVOKE ALL ON envdb.sys_provisioning_job FROM PUBLIC;
GRANT SELECT (id, environment_id, database_id, kind, driver, status, attempts, last_error, worker, payload, created_at, updated_at, started_at, finished_at) ON envdb.sys_provisioning_job TO envdb_reader;
REVOKE ALL ON envdb.sys_audit_event FROM PUBLIC;
GRANT SELECT (id, occurred_at, actor, action, organization_id, environment_id, subject_type, subject_id, detail) ON envdb.sys_audit_event TO envdb_reader;
REVOKE ALL ON envdb.sys_tenant_database FROM PUBLIC;
GRANT SELECT ON envdb.sys_tenant_database TO envdb_reader;

-- The SQL surface: every function enters the library through one guarded entry point.

-- envdb's semantic version
CREATE FUNCTION envdb.version()
  RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.version() TO envdb_admin, envdb_router, envdb_reader;

-- version, compiler, OpenSSL and host versions
CREATE FUNCTION envdb.build_info()
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.build_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.build_info() TO envdb_admin, envdb_router, envdb_reader;

-- read a setting, or set it when a value is given
CREATE FUNCTION envdb.config(key text, value text DEFAULT NULL)
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.config(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.config(text, text) TO envdb_admin;

-- create an organization and its default environment (database and first credentials) in one call; id defaults to a UUIDv7, region and driver to the default_region and default_driver settings. The sqlite driver writes the database file under sqlite_data_dir (a relative path is resolved against the directory of the control database's file). if_not_exists returns the organization that has the slug (when an id is given, only if it is that one) instead of already_exists
CREATE FUNCTION envdb.provision_organization(slug text, name text, id text DEFAULT NULL, region text DEFAULT NULL, driver text DEFAULT NULL, created_by text DEFAULT NULL, metadata jsonb DEFAULT NULL, if_not_exists boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.provision_organization(text, text, text, text, text, text, jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.provision_organization(text, text, text, text, text, text, jsonb, boolean) TO envdb_admin;

-- create an organization and its default environment (database and first credentials) in one call; id defaults to a UUIDv7, region and driver to the default_region and default_driver settings. The sqlite driver writes the database file under sqlite_data_dir (a relative path is resolved against the directory of the control database's file). if_not_exists returns the organization that has the slug (when an id is given, only if it is that one) instead of already_exists
CREATE FUNCTION envdb.provision_organization(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.provision_organization(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.provision_organization(jsonb) TO envdb_admin;

-- create an environment with its database row and credentials; sqlite: the database file is created under sqlite_data_dir (a relative path is resolved against the directory of the control database's file) and the environment is active on return; postgres and turso: it stays provisioning and a create_database job is queued. An archived environment does not hold its slug: it is renamed archived-<id hex> and the slug names the new environment; if_not_exists never returns an archived environment
CREATE FUNCTION envdb.provision_environment(organization_id text, slug text, name text DEFAULT NULL, env_type text DEFAULT NULL, region text DEFAULT NULL, driver text DEFAULT NULL, is_default boolean DEFAULT false, is_protected boolean DEFAULT NULL, description text DEFAULT NULL, storage_limit_mb bigint DEFAULT NULL, created_by text DEFAULT NULL, metadata jsonb DEFAULT NULL, if_not_exists boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.provision_environment(text, text, text, text, text, text, boolean, boolean, text, bigint, text, jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.provision_environment(text, text, text, text, text, text, boolean, boolean, text, bigint, text, jsonb, boolean) TO envdb_admin;

-- create an environment with its database row and credentials; sqlite: the database file is created under sqlite_data_dir (a relative path is resolved against the directory of the control database's file) and the environment is active on return; postgres and turso: it stays provisioning and a create_database job is queued. An archived environment does not hold its slug: it is renamed archived-<id hex> and the slug names the new environment; if_not_exists never returns an archived environment
CREATE FUNCTION envdb.provision_environment(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.provision_environment(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.provision_environment(jsonb) TO envdb_admin;

-- an environment, its database and all its credentials (no secrets); envdb_reader: only inside the active organization
CREATE FUNCTION envdb.get_environment(environment_id text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.get_environment(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.get_environment(text) TO envdb_admin, envdb_router, envdb_reader;

-- move an environment through the lifecycle state machine; archived follows archive_environment's rules (without force), provisioning is retry_environment
CREATE FUNCTION envdb.set_environment_status(environment_id text, status text, reason text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.set_environment_status(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.set_environment_status(text, text, text) TO envdb_admin;

-- drop an archived environment's database for good, once drop_grace_seconds have passed since the archive (force skips the wait, never for a protected environment); sqlite: the file is deleted now; postgres and turso: a drop_database job is queued and its completion records the drop
CREATE FUNCTION envdb.drop_environment_database(environment_id text, force boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.drop_environment_database(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.drop_environment_database(text, boolean) TO envdb_admin;

-- archive an environment for good and revoke its credentials; never the default one, a protected one only with force
CREATE FUNCTION envdb.archive_environment(environment_id text, force boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.archive_environment(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.archive_environment(text, boolean) TO envdb_admin;

-- make an active environment its organization's default (the flag moves atomically)
CREATE FUNCTION envdb.set_default_environment(environment_id text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.set_default_environment(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.set_default_environment(text) TO envdb_admin;

-- provision a failed environment again: the sqlite file now, or its create_database job back in the queue
CREATE FUNCTION envdb.retry_environment(environment_id text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.retry_environment(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.retry_environment(text) TO envdb_admin;

-- DEPRECATED (v4 shim, removed in 2.0): the organization's default environment database in the v4 shape (authToken always null), creating the default environment when the organization has none; raises a deprecation warning
CREATE FUNCTION envdb.provision_tenant_database(organization_id text, region text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.provision_tenant_database(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.provision_tenant_database(text, text) TO envdb_admin;

-- turn the rows of a v4 sys_tenant_database table (default: SQLite sys_tenant_database_v4, Postgres public.sys_tenant_database) into organizations' default environments, databases and sealed readwrite credentials; idempotent; dry_run reports without writing
CREATE FUNCTION envdb.migrate_legacy_tenant_databases(legacy_table text DEFAULT NULL, dry_run boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.migrate_legacy_tenant_databases(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.migrate_legacy_tenant_databases(text, boolean) TO envdb_admin;

-- archive every environment of an organization (the default and protected ones too), revoke their credentials, drop their databases (now with force, else once drop_grace_seconds have passed, with drop_environment_database) and tombstone the organization: it keeps its rows and audit trail under the slug deprovisioned-<id hex> and its slug can be provisioned again
CREATE FUNCTION envdb.deprovision_organization(organization_id text, force boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.deprovision_organization(text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.deprovision_organization(text, boolean) TO envdb_admin;

-- archive every environment of an organization (the default and protected ones too), revoke their credentials, drop their databases (now with force, else once drop_grace_seconds have passed, with drop_environment_database) and tombstone the organization: it keeps its rows and audit trail under the slug deprovisioned-<id hex> and its slug can be provisioned again
CREATE FUNCTION envdb.deprovision_organization(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.deprovision_organization(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.deprovision_organization(jsonb) TO envdb_admin;

-- add a user to an environment with a role (env_admin, env_maker, env_user, env_viewer), or change the member's role; user ids: letters, digits and _.:@|+- , 1 to 256, starting with a letter or digit
CREATE FUNCTION envdb.add_environment_member(environment_id text, user_id text, role text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.add_environment_member(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.add_environment_member(text, text, text) TO envdb_admin;

-- remove a user from an environment; false when the user was not a member
CREATE FUNCTION envdb.remove_environment_member(environment_id text, user_id text)
  RETURNS boolean
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.remove_environment_member(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.remove_environment_member(text, text) TO envdb_admin;

-- the user's role in the environment, NULL when not a member; envdb_reader: only inside the active organization
CREATE FUNCTION envdb.environment_role(environment_id text, user_id text)
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.environment_role(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.environment_role(text, text) TO envdb_admin, envdb_router, envdb_reader;

-- whether the user's role grants the permission (read, write, deploy, manage_members, manage_credentials, manage_environment); false for non-members; envdb_reader: only inside the active organization
CREATE FUNCTION envdb.check_environment_access(environment_id text, user_id text, permission text)
  RETURNS boolean
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.check_environment_access(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.check_environment_access(text, text, text) TO envdb_admin, envdb_router, envdb_reader;

-- issue an active credential of a scope (token generated unless given; required for turso); an active one of that scope becomes rotating until now + rotation_grace_seconds
CREATE FUNCTION envdb.issue_credential(database_id text, scope text DEFAULT 'readwrite', token text DEFAULT NULL, expires_at timestamptz DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.issue_credential(text, text, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.issue_credential(text, text, text, timestamptz) TO envdb_admin;

-- issue an active credential of a scope (token generated unless given; required for turso); an active one of that scope becomes rotating until now + rotation_grace_seconds
CREATE FUNCTION envdb.issue_credential(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.issue_credential(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.issue_credential(jsonb) TO envdb_admin;

-- replace the active credential of a scope; the previous one stays valid as rotating until now + grace (default rotation_grace_seconds)
CREATE FUNCTION envdb.rotate_credential(database_id text, scope text DEFAULT 'readwrite', grace interval DEFAULT NULL, token text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.rotate_credential(text, text, interval, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.rotate_credential(text, text, interval, text) TO envdb_admin;

-- replace the active credential of a scope; the previous one stays valid as rotating until now + grace (default rotation_grace_seconds)
CREATE FUNCTION envdb.rotate_credential(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.rotate_credential(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.rotate_credential(jsonb) TO envdb_admin;

-- revoke one credential
CREATE FUNCTION envdb.revoke_credential(credential_id text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.revoke_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.revoke_credential(text) TO envdb_admin;

-- revoke every active or rotating credential whose expires_at has passed; returns how many
CREATE FUNCTION envdb.expire_credentials()
  RETURNS bigint
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.expire_credentials() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.expire_credentials() TO envdb_admin;

-- re-encrypt every credential not revoked under the given (or active) key; returns how many moved
CREATE FUNCTION envdb.rewrap_credentials(kms_key_id text DEFAULT NULL)
  RETURNS bigint
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.rewrap_credentials(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.rewrap_credentials(text) TO envdb_admin;

-- the plaintext token of a credential that is not revoked or expired; audited (repeated reveals of one credential by one caller within a minute are counted on one event); refused where no audit event can be written unless allow_unaudited_reveal is on
CREATE FUNCTION envdb.reveal_credential(credential_id text)
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.reveal_credential(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.reveal_credential(text) TO envdb_admin, envdb_router;

-- keys loaded or referenced by credentials, with counts; never key material
CREATE FUNCTION envdb.keyring_status()
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.keyring_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.keyring_status() TO envdb_admin;

-- claim up to max_jobs (1 to 1000) pending jobs of a driver, oldest first: each job is claimed by exactly one caller and becomes running
CREATE FUNCTION envdb.claim_provisioning_jobs(driver text, max_jobs bigint DEFAULT 10, worker text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.claim_provisioning_jobs(text, bigint, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.claim_provisioning_jobs(text, bigint, text) TO envdb_admin;

-- report a running job done: records the database URL, stores each token of tokens (scope -> token; required for turso) as that scope's active credential, and makes the environment active; a drop_database job (no database_url or tokens) records the database dropped and leaves the environment archived
CREATE FUNCTION envdb.complete_provisioning_job(job_id text, database_url text DEFAULT NULL, tokens jsonb DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.complete_provisioning_job(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.complete_provisioning_job(text, text, jsonb) TO envdb_admin;

-- report a running job failed: with retry it is pending again, otherwise it and its environment become failed (retry_environment queues it again)
CREATE FUNCTION envdb.fail_provisioning_job(job_id text, error text, retry boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.fail_provisioning_job(text, text, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.fail_provisioning_job(text, text, boolean) TO envdb_admin;

-- register a Postgres server for postgres-driver databases of a region; the password is sealed under the keyring's active key and never returned
CREATE FUNCTION envdb.add_database_host(name text, region text, host text, port bigint DEFAULT 5432, username text DEFAULT 'postgres', password text DEFAULT NULL, dbname text DEFAULT 'postgres')
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.add_database_host(text, text, text, bigint, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.add_database_host(text, text, text, bigint, text, text, text) TO envdb_admin;

-- register a Postgres server for postgres-driver databases of a region; the password is sealed under the keyring's active key and never returned
CREATE FUNCTION envdb.add_database_host(request jsonb)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.add_database_host(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.add_database_host(jsonb) TO envdb_admin;

-- the registered Postgres servers with how many environment databases each holds (no secrets)
CREATE FUNCTION envdb.list_database_hosts()
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.list_database_hosts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.list_database_hosts() TO envdb_admin;

-- unregister a Postgres server that holds no environment database
CREATE FUNCTION envdb.remove_database_host(name text)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.remove_database_host(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.remove_database_host(text) TO envdb_admin;

-- make an active environment this session's context (Postgres: until the transaction ends, and only inside a transaction block; SQLite: for the connection) and return it as a TenantContext; with user_id the user must be a member and role is theirs (it limits resolve_environment's scope), without it userId and role are NULL
CREATE FUNCTION envdb.set_active_environment(environment_id text, user_id text DEFAULT NULL)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.set_active_environment(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.set_active_environment(text, text) TO envdb_admin, envdb_router;

-- forget the session's active environment; returns NULL
CREATE FUNCTION envdb.clear_active_environment()
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.clear_active_environment() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.clear_active_environment() TO envdb_admin, envdb_router, envdb_reader;

-- the active environment's id, NULL when none is set
CREATE FUNCTION envdb.current_environment_id()
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.current_environment_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.current_environment_id() TO envdb_admin, envdb_router, envdb_reader;

-- the organization of the active environment, NULL when none is set
CREATE FUNCTION envdb.current_organization_id()
  RETURNS text
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.current_organization_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.current_organization_id() TO envdb_admin, envdb_router, envdb_reader;

-- the session's TenantContext, NULL when none is set
CREATE FUNCTION envdb.current_context()
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.current_context() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.current_context() TO envdb_admin, envdb_router, envdb_reader;

-- the router's lookup: where an active environment's database lives and the decrypted active credential of the scope (readwrite, readonly, admin); conflict when the environment is not active, not_found when it has no usable credential of that scope; under a user context only that environment, and at most the scope the user's role allows (permission_denied)
CREATE FUNCTION envdb.resolve_environment(environment_id text, scope text DEFAULT 'readwrite')
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.resolve_environment(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.resolve_environment(text, text) TO envdb_admin, envdb_router;

-- report what the catalog's constraints cannot prevent: orphan rows, active environments without a database, envdb files without a registry row (SQLite), credentials under keys not in the keyring, stale running jobs, rows envdb refuses to act on (a database name or URL it never writes, JSON too deep or too large), credentials in the envelope format before 0.3.0; with repair, fix what is safe (never credentials or refused rows) and audit each fix
CREATE FUNCTION envdb.check(repair boolean DEFAULT false)
  RETURNS jsonb
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  AS 'MODULE_PATHNAME', 'envdb_fn';
REVOKE ALL ON FUNCTION envdb.check(boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION envdb.check(boolean) TO envdb_admin;

-- Row-level security for envdb_reader, failing closed: only the active
-- environment's organization's rows, and no rows at all without a context. The
-- owner (and so every envdb function) is not subject to it.
ALTER TABLE envdb.sys_organization ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_organization FOR SELECT TO envdb_reader
  USING (id = envdb.current_organization_id());
ALTER TABLE envdb.sys_environment ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_environment FOR SELECT TO envdb_reader
  USING (organization_id = envdb.current_organization_id());
ALTER TABLE envdb.sys_environment_member ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_environment_member FOR SELECT TO envdb_reader
  USING (organization_id = envdb.current_organization_id());
ALTER TABLE envdb.sys_audit_event ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_audit_event FOR SELECT TO envdb_reader
  USING (organization_id = envdb.current_organization_id());
ALTER TABLE envdb.sys_environment_database ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_environment_database FOR SELECT TO envdb_reader
  USING ((SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id) = envdb.current_organization_id());
ALTER TABLE envdb.sys_provisioning_job ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_provisioning_job FOR SELECT TO envdb_reader
  USING ((SELECT e.organization_id FROM envdb.sys_environment e WHERE e.id = environment_id) = envdb.current_organization_id());
ALTER TABLE envdb.sys_database_credential ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_database_credential FOR SELECT TO envdb_reader
  USING ((SELECT e.organization_id FROM envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE d.id = database_id) = envdb.current_organization_id());
ALTER TABLE envdb.sys_config ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_config FOR SELECT TO envdb_reader
  USING (envdb.current_organization_id() IS NOT NULL);
ALTER TABLE envdb.sys_database_host ENABLE ROW LEVEL SECURITY;
CREATE POLICY reader_organization ON envdb.sys_database_host FOR SELECT TO envdb_reader
  USING (EXISTS (SELECT 1 FROM envdb.sys_environment_database d JOIN envdb.sys_environment e ON e.id = d.environment_id WHERE d.host_id = sys_database_host.id AND e.organization_id = envdb.current_organization_id()));
-- The v4 view reads as its caller, so the policies apply through it too.
ALTER VIEW envdb.sys_tenant_database SET (security_invoker = true);
