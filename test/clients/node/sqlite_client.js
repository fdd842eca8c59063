// envdb from Node.js on SQLite: load the extension with better-sqlite3 (or
// libsql, which has the same API), provision an environment with the sqlite
// driver, resolve it, and open the environment's own file.
//
//   node sqlite_client.js better-sqlite3|libsql
//
// Run by test/clients/run.sh with ENVDB_EXTENSION (build/envdb.so),
// ENVDB_KEYRING (key file read when the extension loads) and CLIENT_DIR (an
// empty directory). Every value reaches SQL as a bind parameter.
'use strict';
const fs = require('fs');
const path = require('path');

const driver = process.argv[2];
if (driver !== 'better-sqlite3' && driver !== 'libsql') {
  console.error('usage: node sqlite_client.js better-sqlite3|libsql');
  process.exit(2);
}
const Database = require(driver);
const label = `node-${driver}`;
const workdir = process.env.CLIENT_DIR;

function check(condition, what) {
  if (!condition) {
    console.error(`${label}: ${what}`);
    process.exit(1);
  }
}

function open(file) {
  const db = new Database(file);
  db.loadExtension(process.env.ENVDB_EXTENSION);
  return db;
}

// envdb_<name>(?, ?, ...) with every argument bound; JSON answers decoded.
function call(db, name, ...args) {
  const sql = `select envdb_${name}(${args.map(() => '?').join(', ')}) as v`;
  const v = db.prepare(sql).get(...args).v;
  return typeof v === 'string' && (v[0] === '{' || v[0] === '[') ? JSON.parse(v) : v;
}

const controlPath = path.join(workdir, 'control.db');
const control = open(controlPath);
call(control, 'init');
call(control, 'config', 'sqlite_data_dir', path.join(workdir, 'envs'));

const org = call(control, 'provision_organization',
  JSON.stringify({ slug: 'acme', name: 'Acme', driver: 'sqlite' }));
const dev = call(control, 'provision_environment', JSON.stringify({
  organizationId: org.organization.id, slug: 'dev', name: 'Development',
  envType: 'development', driver: 'sqlite',
}));
const envId = dev.environment.id;
check(dev.environment.status === 'active', `new environment is ${dev.environment.status}`);

const route = call(control, 'resolve_environment', envId, 'readwrite');
check(route.status === 'active', `resolved status ${route.status}`);
check(route.environmentId === envId, 'resolved another environment');
check(/^env-[a-z2-7]{26}$/.test(route.databaseName), `databaseName ${route.databaseName}`);
check(route.databaseName === dev.database.databaseName, 'databaseName differs from provisioning');
check(route.credential.scope === 'readwrite', 'credential scope');
check(typeof route.credential.token === 'string' && route.credential.token.length >= 32,
  'credential token missing');

// Open the environment's own database (the URL is file:<path>) and use it.
check(route.databaseUrl.startsWith('file:'), `databaseUrl ${route.databaseUrl}`);
const env = open(route.databaseUrl.slice('file:'.length));
const stamp = env.prepare('select environment_id, database_name from sys_environment_info').get();
check(stamp.environment_id === envId && stamp.database_name === route.databaseName,
  `environment stamp ${JSON.stringify(stamp)}`);
check(call(env, 'environment_schema_version') >= 1, 'environment schema not initialized');
env.exec('create table note (id integer primary key, body text)');
env.prepare('insert into note (body) values (?)').run(`hello from ${driver}`);
check(env.prepare('select count(*) as n from note').get().n === 1, 'write to environment');
env.close();

// The token is sealed in the control database, never stored in clear.
control.close();
check(!fs.readFileSync(controlPath).includes(route.credential.token), 'token stored in clear');
console.log(`${label}: ${envId} active, ${route.databaseName}, token resolved`);
