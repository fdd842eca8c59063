-- Revert staging: archived, then a drop_database job queued now (force skips drop_grace_seconds).
BEGIN;
SELECT envdb.archive_environment(e.id)->'environment'->>'status'
  FROM envdb.sys_environment e JOIN envdb.sys_organization o ON o.id = e.organization_id
 WHERE o.slug = 'acme' AND e.slug = 'staging' AND e.status <> 'archived';
SELECT envdb.drop_environment_database(e.id, force => true)->'job'->>'kind'
  FROM envdb.sys_environment e JOIN envdb.sys_organization o ON o.id = e.organization_id
  JOIN envdb.sys_environment_database d ON d.environment_id = e.id
 WHERE o.slug = 'acme' AND e.slug = 'staging' AND d.dropped_at IS NULL
   AND NOT EXISTS (SELECT FROM envdb.sys_provisioning_job j WHERE j.database_id = d.id
                   AND j.kind = 'drop_database' AND j.status IN ('pending', 'running'));
COMMIT;
