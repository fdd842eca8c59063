-- Verify acme: get_environment fails (environment_id is required) unless acme
-- has an active default environment.
SELECT json_extract(envdb_get_environment((SELECT e.id FROM sys_environment e JOIN sys_organization o
  ON o.id = e.organization_id WHERE o.slug = 'acme' AND e.is_default AND e.status = 'active')), '$.environment.id');
