-- Verify staging: fails unless acme has an active staging environment.
SELECT json_extract(envdb_get_environment((SELECT e.id FROM sys_environment e JOIN sys_organization o
  ON o.id = e.organization_id WHERE o.slug = 'acme' AND e.slug = 'staging' AND e.status = 'active')), '$.environment.id');
