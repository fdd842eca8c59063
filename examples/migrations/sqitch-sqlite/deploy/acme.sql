-- Deploy acme: safe to run again (if_not_exists).
BEGIN;
SELECT envdb_provision_organization(json_object('slug', 'acme', 'name', 'Acme', 'ifNotExists', json('true')));
COMMIT;
