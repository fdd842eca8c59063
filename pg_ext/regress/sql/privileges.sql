-- A non-superuser sees what its purpose role allows, and nothing else.
CREATE ROLE envdb_test_nobody LOGIN;
CREATE ROLE envdb_test_admin LOGIN IN ROLE envdb_admin;
CREATE ROLE envdb_test_reader LOGIN IN ROLE envdb_reader;

-- PUBLIC can do nothing: not even see into schema envdb.
SET ROLE envdb_test_nobody;
SELECT envdb.version();
SELECT envdb.config('default_driver');
SELECT count(*) FROM envdb.sys_config;
RESET ROLE;

SET ROLE envdb_test_admin;
SELECT envdb.config('default_region', 'eu-west');
SELECT count(*) FROM envdb.sys_config;
RESET ROLE;

SET ROLE envdb_test_reader;
-- Without an active environment a reader sees no rows at all (fail closed).
SELECT key, value FROM envdb.sys_config WHERE key = 'default_region';
SELECT envdb.config('default_region', 'us-east');
SELECT token_cipher FROM envdb.sys_database_credential;
SELECT count(*) FROM envdb.sys_database_credential;
RESET ROLE;

DROP ROLE envdb_test_nobody;
DROP ROLE envdb_test_admin;
DROP ROLE envdb_test_reader;
