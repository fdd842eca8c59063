-- Verify envdb: fails unless the extension is installed.
SELECT envdb.version();
