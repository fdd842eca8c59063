// The knex example migrations (examples/migrations/knex) round trip:
// latest -> verify -> down (staging) -> latest again -> verify -> down to the
// catalog (check() ok, no environment database left) -> down (nothing left).
//
//   node migrations_knex.js sqlite   CLIENT_DIR, ENVDB_EXTENSION, ENVDB_KEYRING (run.sh's sqlite_client)
//   node migrations_knex.js pg       PG* of a role that may CREATE EXTENSION, an empty database whose
//                                    envdb.keyring_file is set, a server preloaded with envdb
'use strict';
const fs = require('fs');
const path = require('path');

const engine = process.argv[2];
if (engine !== 'sqlite' && engine !== 'pg') {
  console.error('usage: node migrations_knex.js sqlite|pg');
  process.exit(2);
}
process.env.ENVDB_ENGINE = engine;
const root = path.resolve(__dirname, '..', '..', '..');
const control = engine === 'sqlite' ? path.join(process.env.CLIENT_DIR, 'control.db') : null;
if (control) process.env.ENVDB_SQLITE_FILE = control;
const knex = require('knex')(require(path.join(root, 'examples/migrations/knex/knexfile.js')));
const pg = engine === 'pg';
const t = (name) => (pg ? `envdb.${name}` : name);
const label = `knex-${engine}`;

function check(condition, what) {
  if (!condition) throw new Error(`${label}: ${what}`);
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function waitFor(what, probe) {
  for (let i = 0; i < 600; i += 1) {
    if (await probe()) return;
    await sleep(200);
  }
  throw new Error(`${label}: timed out waiting for ${what}`);
}
async function scalar(sql, args = []) {
  const r = await knex.raw(sql, args);
  const row = pg ? r.rows[0] : r[0];
  return Object.values(row)[0];
}
// Environment databases left: sqlite files under the control file's directory, or
// env-... databases and roles on the server.
async function envLeft() {
  if (!pg) {
    const dir = path.join(process.env.CLIENT_DIR, 'envdb_environments');
    return fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.startsWith('env-')).length : 0;
  }
  return Number(await scalar("select (select count(*) from pg_database where datname like 'env-%') + "
    + "(select count(*) from pg_roles where rolname like 'env-%') as n"));
}
async function staging() {
  return knex(t('sys_environment')).where({ slug: 'staging' }).first('id', 'status');
}
async function settle() {
  if (!pg) return;
  await waitFor('environments to be active', async () => Number(await scalar(
    `select count(*) as n from envdb.sys_environment where status = 'provisioning'`)) === 0);
  await waitFor('archived databases to be dropped', async () => Number(await scalar(
    `select count(*) as n from envdb.sys_environment_database d join envdb.sys_environment e
       on e.id = d.environment_id where e.status = 'archived' and d.dropped_at is null`)) === 0);
}

(async () => {
  const before = await envLeft();
  await knex.migrate.latest();
  await settle();
  const first = await staging();
  check(first && first.status === 'active', `staging after latest: ${JSON.stringify(first)}`);
  check(await envLeft() > before, 'no environment database was made');

  await knex.migrate.down();  // staging
  await settle();
  check((await staging()).status === 'archived', 'staging not archived by down');
  await knex.migrate.latest();
  await settle();
  const second = await staging();
  check(second.status === 'active' && second.id !== first.id, 'staging not provisioned anew');

  await knex.migrate.down();  // staging
  await knex.migrate.down();  // acme
  await settle();
  const report = await scalar(pg ? 'select envdb.check() as r' : 'select envdb_check() as r');
  const ok = (typeof report === 'string' ? JSON.parse(report) : report).ok;
  check(ok === true, `check() after reverting acme: ${JSON.stringify(report)}`);
  check(await envLeft() === before, `environment databases left: ${await envLeft()}`);

  await knex.migrate.down();  // envdb itself
  check(await envLeft() === before, 'environment databases left after the full revert');
  const left = Number(await scalar(pg
    ? "select count(*) as n from pg_namespace where nspname = 'envdb'"
    : "select count(*) as n from sqlite_master where name like 'sys!_%' escape '!'"));
  check(left === 0, `envdb objects left: ${left}`);
  console.log(`${label}: latest, down, latest again, down to nothing: nothing left, check() ok on the way`);
  await knex.destroy();
})().catch(async (e) => {
  console.error(e.stack || String(e));
  await knex.destroy();
  process.exit(1);
});
