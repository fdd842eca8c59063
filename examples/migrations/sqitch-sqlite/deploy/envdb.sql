-- Deploy envdb: the control-plane catalog (idempotent).
SELECT envdb_init();
