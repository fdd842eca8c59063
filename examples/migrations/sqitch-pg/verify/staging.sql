-- Verify staging: fails unless acme has a staging environment that is not archived.
SELECT envdb.get_environment((SELECT e.id FROM envdb.sys_environment e JOIN envdb.sys_organization o
  ON o.id = e.organization_id WHERE o.slug = 'acme' AND e.slug = 'staging' AND e.status <> 'archived'))->'environment'->>'id';
