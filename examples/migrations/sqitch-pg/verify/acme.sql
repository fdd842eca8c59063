-- Verify acme: get_environment fails (environment_id is required) unless acme
-- has a default environment that is not archived.
SELECT envdb.get_environment((SELECT e.id FROM envdb.sys_environment e JOIN envdb.sys_organization o
  ON o.id = e.organization_id WHERE o.slug = 'acme' AND e.is_default AND e.status <> 'archived'))->'environment'->>'id';
