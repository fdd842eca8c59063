-- Deploy acme: safe to run again (if_not_exists).
BEGIN;
SELECT envdb.provision_organization('acme', 'Acme', if_not_exists => true)->'organization'->>'id';
COMMIT;
