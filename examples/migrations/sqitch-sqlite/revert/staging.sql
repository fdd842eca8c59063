-- Revert staging: archived, then its file deleted now (force skips drop_grace_seconds).
BEGIN;
SELECT json_extract(envdb_archive_environment(e.id), '$.environment.status')
  FROM sys_environment e JOIN sys_organization o ON o.id = e.organization_id
 WHERE o.slug = 'acme' AND e.slug = 'staging' AND e.status <> 'archived';
SELECT json_extract(envdb_drop_environment_database(e.id, 1), '$.database.droppedAt')
  FROM sys_environment e JOIN sys_organization o ON o.id = e.organization_id
  JOIN sys_environment_database d ON d.environment_id = e.id
 WHERE o.slug = 'acme' AND e.slug = 'staging' AND d.dropped_at IS NULL;
COMMIT;
