-- Deploy staging: an archived staging of an earlier deploy does not hold the slug.
BEGIN;
SELECT envdb_provision_environment(json_object(
  'organizationId', (SELECT id FROM sys_organization WHERE slug = 'acme'),
  'slug', 'staging', 'envType', 'development', 'ifNotExists', json('true')));
COMMIT;
