-- envdb in the sqlite3 shell: a whole control plane in one file, and one
-- database file per environment.
.load @ENVDB@
.headers on
.mode box
SELECT envdb_version() AS version, envdb_init() AS catalog,
       envdb_config('sqlite_data_dir', 'environments') AS sqlite_data_dir;

-- An organization comes with its default environment: its own database file,
-- schema-initialized, with an admin and a readwrite credential sealed under
-- the demo key.
SELECT json_extract(r, '$.organization.slug') AS organization,
       json_extract(r, '$.defaultEnvironment.environment.slug') AS environment,
       json_extract(r, '$.defaultEnvironment.environment.status') AS status,
       json_extract(r, '$.defaultEnvironment.database.databaseName') AS database,
       json_array_length(r, '$.defaultEnvironment.credentials') AS credentials
  FROM (SELECT envdb_provision_organization('acme', 'Acme Corp') AS r);

-- More environments: typed arguments, or one JSON request.
SELECT json_extract(r, '$.environment.slug') AS environment, json_extract(r, '$.environment.envType') AS type,
       json_extract(r, '$.environment.isProtected') AS protected, json_extract(r, '$.environment.status') AS status
  FROM (SELECT envdb_provision_environment((SELECT id FROM sys_organization WHERE slug = 'acme'),
                                           'dev', 'Development') AS r);
SELECT json_extract(r, '$.environment.slug') AS environment, json_extract(r, '$.environment.envType') AS type,
       json_extract(r, '$.environment.isProtected') AS protected, json_extract(r, '$.environment.status') AS status
  FROM (SELECT envdb_provision_environment(json_object(
          'organizationId', (SELECT id FROM sys_organization WHERE slug = 'acme'),
          'slug', 'prod', 'name', 'Production', 'envType', 'production')) AS r);

-- Dev -> Prod deployment. One environment is one database, so deploying is copying
-- between databases. Build a table in development (its file, attached here)...
ATTACH (SELECT substr(json_extract(envdb_resolve_environment(id, 'admin'), '$.databaseUrl'), 6)
          FROM sys_environment WHERE slug = 'dev') AS dev;
CREATE TABLE dev.customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE INDEX dev.customer_name ON customer (name);
INSERT INTO dev.customer (name) VALUES ('Ada'), ('Grace'), ('Linus');
DETACH dev;
-- ...copy its schema only into a new sandbox, and everything into another one...
SELECT json_extract(r, '$.environment.slug') AS environment, json_extract(r, '$.environment.status') AS status
  FROM (SELECT envdb_provision_environment(json_object(
          'organizationId', (SELECT id FROM sys_organization WHERE slug = 'acme'), 'slug', 'qa',
          'envType', 'sandbox', 'copyFrom', (SELECT id FROM sys_environment WHERE slug = 'dev'),
          'copyMode', 'schema')) AS r);
SELECT json_extract(envdb_provision_environment((SELECT id FROM sys_organization WHERE slug = 'acme'),
                                                'staging', 'Staging', 'sandbox'), '$.environment.slug') AS environment;
SELECT json_extract(r, '$.environment.slug') AS target, json_extract(r, '$.mode') AS mode
  FROM (SELECT envdb_copy_environment((SELECT id FROM sys_environment WHERE slug = 'dev'),
                                      (SELECT id FROM sys_environment WHERE slug = 'staging'), 'full') AS r);
ATTACH (SELECT substr(json_extract(envdb_resolve_environment(id, 'admin'), '$.databaseUrl'), 6)
          FROM sys_environment WHERE slug = 'qa') AS qa;
ATTACH (SELECT substr(json_extract(envdb_resolve_environment(id, 'admin'), '$.databaseUrl'), 6)
          FROM sys_environment WHERE slug = 'staging') AS staging;
SELECT 'qa (schema)' AS environment, (SELECT count(*) FROM qa.customer) AS customers,
       (SELECT environment_id = (SELECT id FROM sys_environment WHERE slug = 'qa')
          FROM qa.sys_environment_info) AS stamped_as_itself
UNION ALL
SELECT 'staging (full)', (SELECT count(*) FROM staging.customer),
       (SELECT environment_id = (SELECT id FROM sys_environment WHERE slug = 'staging')
          FROM staging.sys_environment_info);
DETACH qa;
DETACH staging;
-- ...and production refuses a copy unless it is forced (scripts/demo.sh runs the part between
-- the two markers on its own, since the refusal is an error).
-- @refusal@
SELECT envdb_copy_environment((SELECT id FROM sys_environment WHERE slug = 'dev'),
                              (SELECT id FROM sys_environment WHERE slug = 'prod'), 'schema');
-- @end refusal@
SELECT json_extract(envdb_copy_environment((SELECT id FROM sys_environment WHERE slug = 'dev'),
                                           (SELECT id FROM sys_environment WHERE slug = 'prod'), 'schema', 1),
                    '$.environment.slug') AS deployed_with_force;

-- Members and what their roles allow.
SELECT json_extract(envdb_add_environment_member((SELECT id FROM sys_environment WHERE slug = 'dev'),
                                                 'ada', 'env_admin'), '$.member.role') AS ada,
       json_extract(envdb_add_environment_member((SELECT id FROM sys_environment WHERE slug = 'dev'),
                                                 'bob', 'env_viewer'), '$.member.role') AS bob;
SELECT m.user_id AS user, m.role,
       envdb_check_environment_access(m.environment_id, m.user_id, 'read') AS can_read,
       envdb_check_environment_access(m.environment_id, m.user_id, 'deploy') AS can_deploy
  FROM sys_environment_member m ORDER BY m.user_id;

-- Rotation with an overlap window: the previous token stays valid for 300 s.
SELECT json_extract(r, '$.credential.status') AS new_credential,
       json_extract(r, '$.previous.status') AS previous_credential,
       json_extract(r, '$.previous.expiresAt') IS NOT NULL AS previous_expires
  FROM (SELECT envdb_rotate_credential((SELECT d.id FROM sys_environment_database d
                                          JOIN sys_environment e ON e.id = d.environment_id
                                         WHERE e.slug = 'dev'), 'readwrite', 300) AS r);

-- The lifecycle: suspend dev; archiving protected prod needs force.
SELECT json_extract(envdb_set_environment_status((SELECT id FROM sys_environment WHERE slug = 'dev'),
                                                 'suspended'), '$.environment.status') AS dev;
SELECT json_extract(envdb_archive_environment((SELECT id FROM sys_environment WHERE slug = 'prod'), 1),
                    '$.revokedCredentials') AS prod_credentials_revoked;
SELECT slug, env_type, status, is_default FROM sys_environment ORDER BY created_at;

-- No token is stored in plaintext; the audit trail has every change.
SELECT e.slug AS environment, c.scope, c.status, c.kms_key_id, length(c.token_cipher) AS sealed_bytes
  FROM sys_database_credential c JOIN sys_environment_database d ON d.id = c.database_id
  JOIN sys_environment e ON e.id = d.environment_id ORDER BY c.issued_at, c.id;
SELECT action, count(*) AS events FROM sys_audit_event GROUP BY action ORDER BY action;
