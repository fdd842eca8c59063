-- The extension installs, reports its version, and turns core errors into
-- Postgres errors with the contract's code words and SQLSTATEs, after which
-- the session keeps working.
CREATE EXTENSION envdb;
SELECT envdb.version() ~ '^[0-9]+\.[0-9]+\.[0-9]+$' AS semver;
SELECT envdb.build_info() ->> 'host' AS host,
       (envdb.build_info() ->> 'version') = envdb.version() AS same_version;

-- Settings: defaults, a change, and refusals.
SELECT envdb.config('default_driver');
SELECT envdb.config('rotation_grace_seconds', '3600');
SELECT envdb.config('rotation_grace_seconds');
SELECT envdb.config('no_such_setting');
SELECT envdb.config('rotation_grace_seconds', 'soon');
SELECT envdb.config('default_driver', 'oracle');

-- The contract's SQLSTATE arrives with the code word.
\set VERBOSITY sqlstate
SELECT envdb.config('no_such_setting');
\set VERBOSITY default

-- A failed call left nothing behind, and the session still serves.
SELECT key, value FROM envdb.sys_config ORDER BY key;
SELECT 1 AS still_serving;

-- The catalog is registered for pg_dump.
SELECT count(*) AS dumped_tables
  FROM pg_catalog.pg_extension e, unnest(e.extconfig) AS c
 WHERE e.extname = 'envdb';

-- Every function runs with a pinned search_path and as its owner.
SELECT count(*) AS unhardened
  FROM pg_catalog.pg_proc p
 WHERE p.pronamespace = 'envdb'::regnamespace
   AND (p.proconfig IS NULL OR NOT 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig));
