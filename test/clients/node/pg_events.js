// envdb's events from Node.js with pg, as a cache-invalidating router would
// follow them: LISTEN envdb_events on one connection, change things on
// another (provision, suspend, rotate, archive), and check that every change
// arrives as a notification, in commit order, that the notifications match
// events_since, and that no token is in any payload.
//
// Connection from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (a member of
// envdb_admin). Every value is a bind parameter.
'use strict';
const crypto = require('crypto');
const { Client } = require('pg');

const label = 'node-pg-events';

function check(condition, what) {
  if (!condition) throw new Error(`${label}: ${what}`);
}

async function main() {
  const listener = new Client();
  const admin = new Client();
  await listener.connect();
  await admin.connect();
  const payloads = [];
  listener.on('notification', (msg) => {
    if (msg.channel === 'envdb_events') payloads.push(msg.payload);
  });
  try {
    await listener.query('LISTEN envdb_events');
    const one = async (sql, params) => (await admin.query(sql, params)).rows[0].r;
    const start = (await one('SELECT envdb.events_since(0, 1000) AS r', [])).cursor;
    const tokens = [crypto.randomBytes(24).toString('base64url'),
      crypto.randomBytes(24).toString('base64url')];

    const org = await one('SELECT envdb.provision_organization($1::jsonb) AS r',
      [{ slug: 'events', name: 'Events', driver: 'turso' }]);
    const dev = await one('SELECT envdb.provision_environment($1::jsonb) AS r', [{
      organizationId: org.organization.id, slug: 'dev', driver: 'turso',
    }]);
    const jobs = await one("SELECT envdb.claim_provisioning_jobs('turso', 10) AS r", []);
    for (const job of jobs) {
      await admin.query('SELECT envdb.complete_provisioning_job($1, $2, $3::jsonb)',
        [job.id, 'libsql://dev', JSON.stringify({ readwrite: tokens[0] })]);
    }
    const envId = dev.environment.id;
    await admin.query("SELECT envdb.set_environment_status($1, 'suspended')", [envId]);
    await admin.query("SELECT envdb.set_environment_status($1, 'active')", [envId]);
    await admin.query("SELECT envdb.rotate_credential($1, 'readwrite', NULL, $2)",
      [dev.database.id, tokens[1]]);
    await admin.query('SELECT envdb.archive_environment($1, true)', [envId]);

    // Notifications come after each commit; wait for the last one.
    const since = await one('SELECT envdb.events_since($1, 1000) AS r', [start]);
    const deadline = Date.now() + 10000;
    while (payloads.length < since.events.length && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const events = payloads.map((p) => JSON.parse(p));
    check(events.length === since.events.length,
      `${events.length} notifications for ${since.events.length} events`);
    for (let i = 0; i < events.length; i++) {
      const { occurredAt, ...expected } = since.events[i];
      check(occurredAt, 'an event without occurredAt');
      // jsonb orders keys its own way: compare key by key.
      const keys = Object.keys(events[i]).sort();
      check(JSON.stringify(keys) === JSON.stringify(Object.keys(expected).sort()) &&
        keys.every((k) => events[i][k] === expected[k]),
        `notification ${JSON.stringify(events[i])} is not ${JSON.stringify(expected)}`);
      if (i > 0) check(events[i].seq > events[i - 1].seq, 'notifications out of order');
    }
    const actions = events.filter((e) => e.environmentId === envId).map((e) => e.action);
    for (const want of ['environment.provision', 'environment.status', 'credential.rotate',
      'environment.archive']) {
      check(actions.includes(want), `no ${want} event in ${actions}`);
    }
    const rotate = events.find((e) => e.action === 'credential.rotate');
    check(rotate.credentialId, 'credential.rotate names no credential');
    for (const p of payloads) {
      for (const t of tokens) check(!p.includes(t), 'a token in a notification');
      check(Buffer.byteLength(p) < 8000, 'a payload over NOTIFY\'s limit');
    }
    console.log(`${label}: ${events.length} events (${actions.join(', ')}) ok`);
  } finally {
    await listener.end();
    await admin.end();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
