// The one difference between the engines: envdb.<fn> with named arguments in
// Postgres, envdb_<fn> with positional ones in SQLite (the same order).
'use strict';

const isPg = (knex) => knex.client.config.client === 'pg';

// fn(knex, 'provision_environment', [a, b]) -> knex.raw of the call, every value bound.
function fn(knex, name, args) {
  const call = `${isPg(knex) ? 'envdb.' : 'envdb_'}${name}(${args.map(() => '?').join(', ')})`;
  return knex.raw(`select ${call} as result`, args).then((r) => {
    const row = isPg(knex) ? r.rows[0] : r[0];
    const v = row.result;
    return typeof v === 'string' && (v[0] === '{' || v[0] === '[') ? JSON.parse(v) : v;
  });
}

const table = (knex, name) => (isPg(knex) ? `envdb.${name}` : name);

async function organizationId(knex, slug) {
  const row = await knex(table(knex, 'sys_organization')).where({ slug }).first('id');
  return row ? row.id : null;
}

module.exports = { fn, isPg, table, organizationId };
