-- Deploy envdb: the extension (a superuser, or the database owner with envdb
-- trusted, runs this change). The server needs shared_preload_libraries =
-- 'envdb' for the postgres driver's worker and a keyring (envdb.keyring_file
-- or envdb.keyring_command).
BEGIN;
CREATE EXTENSION IF NOT EXISTS envdb;
COMMIT;
