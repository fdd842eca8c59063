-- Revert envdb: uninstall. Every organization still here is deprovisioned with
-- force (its environment files deleted), then envdb's tables and view go.
SELECT json_extract(envdb_deprovision_organization(id, 1), '$.organization.slug') FROM sys_organization WHERE deprovisioned_at IS NULL;
PRAGMA foreign_keys = OFF;
DROP VIEW IF EXISTS sys_tenant_database;
DROP TABLE IF EXISTS sys_environment_backup;
DROP TABLE IF EXISTS sys_environment_usage;
DROP TABLE IF EXISTS sys_environment_hostname;
DROP TABLE IF EXISTS sys_audit_event;
DROP TABLE IF EXISTS sys_provisioning_job;
DROP TABLE IF EXISTS sys_environment_member;
DROP TABLE IF EXISTS sys_database_credential;
DROP TABLE IF EXISTS sys_environment_database;
DROP TABLE IF EXISTS sys_database_host;
DROP TABLE IF EXISTS sys_environment;
DROP TABLE IF EXISTS sys_organization;
DROP TABLE IF EXISTS sys_config;
