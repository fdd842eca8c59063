-- Deploy acme: safe to run again (if_not_exists).
BEGIN;
SELECT json_extract(envdb_provision_organization(
  json_object('slug', 'acme', 'name', 'Acme', 'ifNotExists', json('true'))), '$.organization.id');
COMMIT;
