// envdb from Node.js with pg: provision an environment on the turso driver,
// act as the provisioning worker (claim the job, complete it with the token
// the database service minted), resolve it the way a request router does,
// and use it as the transaction's tenant context.
//
// Connection from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. Every value
// is a bind parameter ($1, $2, ...); no token is ever part of a statement.
'use strict';
const crypto = require('crypto');
const { Client } = require('pg');

const label = 'node-pg';

function check(condition, what) {
  if (!condition) throw new Error(`${label}: ${what}`);
}

async function main() {
  const client = new Client();
  await client.connect();
  try {
    // pg decodes jsonb results into objects.
    const one = async (sql, params) => (await client.query(sql, params)).rows[0].r;

    const org = await one('SELECT envdb.provision_organization($1::jsonb) AS r',
      [{ slug: 'acme', name: 'Acme', driver: 'turso' }]);
    const dev = await one('SELECT envdb.provision_environment($1::jsonb) AS r', [{
      organizationId: org.organization.id, slug: 'dev', name: 'Development',
      envType: 'development', driver: 'turso',
    }]);
    const envId = dev.environment.id;
    const dbName = dev.database.databaseName;
    check(dev.environment.status === 'provisioning', `new turso environment is ${dev.environment.status}`);
    check(dev.job && dev.job.id, 'no provisioning job queued');

    // The worker: claim the queued jobs, complete this environment's one.
    const jobs = await one('SELECT envdb.claim_provisioning_jobs($1, 10, $2) AS r', ['turso', 'node-pg-worker']);
    const job = jobs.find((j) => j.environmentId === envId);
    check(job && job.id === dev.job.id, 'job not claimed');
    const token = crypto.randomBytes(32).toString('base64url');  // as Turso would mint it
    const url = `libsql://${dbName}.turso.example`;
    const done = await one('SELECT envdb.complete_provisioning_job($1, $2, $3::jsonb) AS r',
      [job.id, url, { readwrite: token }]);
    check(done.environment.status === 'active', `completed environment is ${done.environment.status}`);

    // The router: resolve the environment to its database and credential.
    const route = await one('SELECT envdb.resolve_environment($1, $2) AS r', [envId, 'readwrite']);
    check(route.status === 'active', `resolved status ${route.status}`);
    check(route.environmentId === envId, 'resolved another environment');
    check(/^env-[a-z2-7]{26}$/.test(route.databaseName) && route.databaseName === dbName,
      `databaseName ${route.databaseName}`);
    check(route.databaseUrl === url, `databaseUrl ${route.databaseUrl}`);
    check(route.credential.scope === 'readwrite', 'credential scope');
    check(route.credential.token === token, 'resolved token differs from the minted one');

    // Use it: the environment as this transaction's tenant context.
    await client.query('BEGIN');
    const context = await one('SELECT envdb.set_active_environment($1) AS r', [envId]);
    check(context.databaseName === dbName, `context databaseName ${context.databaseName}`);
    check(await one('SELECT envdb.current_environment_id() AS r') === envId, 'current_environment_id');
    await client.query('COMMIT');
    check(await one('SELECT envdb.current_environment_id() AS r') === null, 'context outlived its transaction');

    console.log(`${label}: ${envId} active, ${dbName}, token resolved`);
  } finally {
    await client.end();
  }
}

main().catch((e) => {
  console.error(e.message.startsWith(label) ? e.message : `${label}: ${e.message}`);
  process.exit(1);
});
