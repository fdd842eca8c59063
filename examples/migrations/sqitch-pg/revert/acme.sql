-- Revert acme: every environment archived and a drop_database job queued for
-- its database; the slug is free again.
BEGIN;
SELECT envdb.deprovision_organization((SELECT id FROM envdb.sys_organization WHERE slug = 'acme'), force => true)
       ->'organization'->>'deprovisionedAt';
COMMIT;
