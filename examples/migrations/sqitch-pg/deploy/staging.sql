-- Deploy staging: an archived staging of an earlier deploy does not hold the slug.
BEGIN;
SELECT envdb.provision_environment((SELECT id FROM envdb.sys_organization WHERE slug = 'acme'), 'staging',
                                   if_not_exists => true)->'environment'->>'status';
COMMIT;
