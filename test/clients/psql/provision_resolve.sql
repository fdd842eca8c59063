-- envdb from psql: provision an environment on the turso driver, act as the
-- provisioning worker (claim the job, complete it with the token the database
-- service minted), resolve it the way a request router does, and use it as the
-- transaction's tenant context.
--
--   psql -X -q -A -t -v ON_ERROR_STOP=1 -f provision_resolve.sql
--
-- in a database with CREATE EXTENSION envdb and a keyring (envdb.keyring_file
-- or envdb.keyring_command). Ids travel through psql variables (\gset, then
-- :'name', which psql quotes as literals); the token never appears in a
-- statement or a variable: it is minted and handed over inside one statement,
-- and afterwards only its SHA-256 is compared. Each check prints "ok: ..."
-- or stops the script with an error; test/clients/run.sh compares the output
-- with provision_resolve.out.
\set ON_ERROR_STOP 1

CREATE FUNCTION pg_temp.expect(ok boolean, what text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF ok IS NOT TRUE THEN
    RAISE EXCEPTION 'check failed: %', what;
  END IF;
  RETURN 'ok: ' || what;
END $$;

-- 1. An organization and a development environment, on the turso driver.
SELECT r->'organization'->>'id' AS org_id
  FROM envdb.provision_organization('{"slug": "acme", "name": "Acme", "driver": "turso"}'::jsonb) r \gset
SELECT r->'environment'->>'id' AS env_id,
       r->'environment'->>'status' AS env_status,
       r->'database'->>'databaseName' AS db_name,
       r->'job'->>'id' AS job_id
  FROM envdb.provision_environment(jsonb_build_object(
         'organizationId', :'org_id'::text, 'slug', 'dev', 'name', 'Development',
         'envType', 'development', 'driver', 'turso')) r \gset
SELECT pg_temp.expect(:'env_status' = 'provisioning', 'a new turso environment waits for its job');
SELECT pg_temp.expect(:'db_name' ~ '^env-[a-z2-7]{26}$', 'database name has the env-<base32> form');

-- 2. The worker: claim the queued jobs, complete this environment's one.
SELECT pg_temp.expect(count(*) = 1, 'the job is claimed')
  FROM jsonb_array_elements(envdb.claim_provisioning_jobs('turso', 10, 'psql-worker')) j
 WHERE j->>'id' = :'job_id';
\set url 'libsql://' :db_name '.turso.example'
SELECT r->'environment'->>'status' AS done_status,
       encode(sha256(convert_to(t.token, 'UTF8')), 'hex') AS token_sha256
  FROM (SELECT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') AS token) t,
       LATERAL envdb.complete_provisioning_job(:'job_id', :'url', jsonb_build_object('readwrite', t.token)) r \gset
SELECT pg_temp.expect(:'done_status' = 'active', 'completing the job makes the environment active');

-- 3. The router: resolve the environment to its database and credential.
SELECT r->>'status' AS route_status,
       r->>'databaseName' AS route_db_name,
       r->>'databaseUrl' AS route_url,
       r->'credential'->>'scope' AS route_scope,
       encode(sha256(convert_to(r->'credential'->>'token', 'UTF8')), 'hex') AS route_token_sha256
  FROM envdb.resolve_environment(:'env_id', 'readwrite') r \gset
SELECT pg_temp.expect(:'route_status' = 'active', 'resolved status is active');
SELECT pg_temp.expect(:'route_db_name' = :'db_name', 'resolved databaseName is the provisioned one');
SELECT pg_temp.expect(:'route_url' = :'url', 'resolved databaseUrl is the one the worker reported');
SELECT pg_temp.expect(:'route_scope' = 'readwrite', 'resolved credential has scope readwrite');
SELECT pg_temp.expect(:'route_token_sha256' = :'token_sha256', 'resolved token is the minted one');

-- 4. Use it: the environment as this transaction's tenant context.
BEGIN;
SELECT pg_temp.expect(envdb.set_active_environment(:'env_id')->>'databaseName' = :'db_name',
                      'set_active_environment returns the environment''s context');
SELECT pg_temp.expect(envdb.current_environment_id() = :'env_id', 'current_environment_id inside the transaction');
COMMIT;
SELECT pg_temp.expect(envdb.current_environment_id() IS NULL, 'the context ends with the transaction');
