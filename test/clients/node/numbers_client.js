// JS numbers as envdb's SQLite arguments: better-sqlite3 (and libsql) bind
// every JS number as a REAL, so 60, 10, 1 and 3600 arrive as 60.0, 10.0, 1.0
// and 3600.0. envdb takes a whole-number REAL wherever an integer, a number
// of seconds or a boolean (0/1) is expected, and still refuses 1.5.
//
//   node numbers_client.js better-sqlite3|libsql
//
// Run by test/clients/run.sh with ENVDB_EXTENSION, ENVDB_KEYRING and
// CLIENT_DIR, like sqlite_client.js.
'use strict';
const path = require('path');

const driver = process.argv[2];
if (driver !== 'better-sqlite3' && driver !== 'libsql') {
  console.error('usage: node numbers_client.js better-sqlite3|libsql');
  process.exit(2);
}
const Database = require(driver);
const label = `node-${driver}-numbers`;

function check(condition, what) {
  if (!condition) {
    console.error(`${label}: ${what}`);
    process.exit(1);
  }
}

const db = new Database(path.join(process.env.CLIENT_DIR, 'control.db'));
db.loadExtension(process.env.ENVDB_EXTENSION);

function call(name, ...args) {
  const sql = `select envdb_${name}(${args.map(() => '?').join(', ')}) as v`;
  const v = db.prepare(sql).get(...args).v;
  return typeof v === 'string' && (v[0] === '{' || v[0] === '[') ? JSON.parse(v) : v;
}

function refused(what, fn) {
  try {
    fn();
  } catch (e) {
    return String(e.message);
  }
  check(false, `${what} was accepted`);
  return '';
}

call('init');
call('config', 'sqlite_data_dir', path.join(process.env.CLIENT_DIR, 'envs'));
// How this driver binds a JS number: REAL is what made these calls fail before.
const bound = db.prepare('select typeof(?) as t').get(60).t;

// The calls from the report, with plain JS numbers.
check(call('config', 'rotation_grace_seconds', 3600) === '3600', 'config with a number');
const org = call('provision_organization', 'acme', 'Acme', null, null, 'turso');
const dev = call('provision_environment', org.organization.id, 'dev', null, null, null, 'turso',
  0, 0, null, 100);
check(dev.database.storageLimitMb === 100, `storageLimitMb ${dev.database.storageLimitMb}`);
check(dev.environment.isProtected === false, 'is_protected 0 is false');
const jobs = call('claim_provisioning_jobs', 'turso', 10);
check(jobs.length === 2, `claimed ${jobs.length} jobs`);
const devJob = jobs.find((j) => j.environmentId === dev.environment.id);
call('complete_provisioning_job', devJob.id, 'libsql://dev', JSON.stringify({ readwrite: 'tok-1' }));
const rotated = call('rotate_credential', dev.database.id, 'readwrite', 60, 'tok-2');
check(rotated.previous.status === 'rotating', `previous credential is ${rotated.previous.status}`);
const report = call('check', 1);
check(report.ok === true, `check(1): ${JSON.stringify(report)}`);
check(call('check', 0).ok === true, 'check(0)');
// A fraction is still a mistake, named.
const m = refused('rotate with 1.5', () => call('rotate_credential', dev.database.id, 'readwrite', 1.5, 'tok-3'));
check(/^invalid_parameter: grace/.test(m), `1.5 refused with ${m}`);
const m2 = refused('config 1.5', () => call('config', 'rotation_grace_seconds', 1.5));
check(/invalid_parameter: .*rotation_grace_seconds/.test(m2), `config 1.5 refused with ${m2}`);
const m3 = refused('check(2)', () => call('check', 2));
check(/invalid_parameter: repair/.test(m3), `check(2) refused with ${m3}`);
console.log(`${label}: numbers bound as ${bound}; config, provision, claim, rotate, check accepted them; ` +
  'fractions refused');
