-- Deploy staging: an archived staging of an earlier deploy does not hold the slug.
BEGIN;
SELECT json_extract(envdb_provision_environment(json_object(
  'organizationId', (SELECT id FROM sys_organization WHERE slug = 'acme'),
  'slug', 'staging', 'envType', 'development', 'ifNotExists', json('true'))), '$.environment.status');
COMMIT;
