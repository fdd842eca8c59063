-- Revert envdb: uninstall. DROP EXTENSION alone would keep every env-...
-- database and its roles (server objects, not part of the extension): every
-- organization still here is deprovisioned with force, the worker drops their
-- databases and roles, and only then does the extension go.
SELECT envdb.deprovision_organization(id, force => true)->'organization'->>'slug'
  FROM envdb.sys_organization WHERE deprovisioned_at IS NULL;
DO $$
DECLARE
  deadline timestamptz := clock_timestamp() + interval '120 seconds';
BEGIN
  -- Each statement sees the worker's commits (READ COMMITTED).
  WHILE EXISTS (SELECT FROM envdb.sys_environment_database WHERE dropped_at IS NULL AND driver = 'postgres') LOOP
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION 'environment databases were not dropped within 120 s: is the server preloaded with envdb?';
    END IF;
    PERFORM pg_sleep(0.2);
  END LOOP;
END $$;
DROP EXTENSION envdb;
-- The schema CREATE EXTENSION made is not a member of the extension; this
-- refuses (and the revert fails) if anything else was put in it.
DROP SCHEMA envdb;
