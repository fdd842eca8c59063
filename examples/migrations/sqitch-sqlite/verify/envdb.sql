-- Verify envdb: fails (no such table) without the catalog.
SELECT count(*) FROM sys_organization;
