-- Revert acme: every environment archived and its file deleted; the slug is free again.
BEGIN;
SELECT json_extract(envdb_deprovision_organization((SELECT id FROM sys_organization WHERE slug = 'acme'), 1),
                    '$.organization.deprovisionedAt');
COMMIT;
