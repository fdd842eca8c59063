// envdb's catalog: CREATE EXTENSION in Postgres, envdb_init() in SQLite. Down
// is the uninstall: every organization left is deprovisioned with force (its
// sqlite files deleted now; its Postgres databases and roles dropped by the
// worker, which down waits for) before the catalog goes.
'use strict';
const { fn, isPg, table } = require('../envdb');

exports.up = async (knex) => {
  if (isPg(knex)) await knex.raw('CREATE EXTENSION IF NOT EXISTS envdb');
  else await fn(knex, 'init', []);
};

exports.down = async (knex) => {
  const live = await knex(table(knex, 'sys_organization')).whereNull('deprovisioned_at').select('id');
  for (const { id } of live) await fn(knex, 'deprovision_organization', [id, 1]);
  if (isPg(knex)) {
    const deadline = Date.now() + 120000;
    for (;;) {
      const left = await knex(table(knex, 'sys_environment_database'))
        .whereNull('dropped_at').where({ driver: 'postgres' }).count({ n: '*' });
      if (Number(left[0].n) === 0) break;
      if (Date.now() > deadline) throw new Error('environment databases not dropped within 120 s');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await knex.raw('DROP EXTENSION envdb');
    await knex.raw('DROP SCHEMA envdb');  // made by CREATE EXTENSION, but not a member of it
    return;
  }
  await knex.raw('PRAGMA foreign_keys = OFF');
  await knex.raw('DROP VIEW IF EXISTS sys_tenant_database');
  for (const t of ['sys_environment_backup', 'sys_environment_usage', 'sys_environment_hostname',
    'sys_audit_event', 'sys_provisioning_job', 'sys_environment_member',
    'sys_database_credential', 'sys_environment_database', 'sys_database_host', 'sys_environment',
    'sys_organization', 'sys_config']) {
    await knex.raw(`DROP TABLE IF EXISTS ${t}`);
  }
  await knex.raw('PRAGMA foreign_keys = ON');
};

// Postgres: waiting for the worker cannot happen inside a transaction that
// holds the deprovision (the jobs start at its commit).
exports.config = { transaction: false };
