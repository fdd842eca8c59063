// acme's staging environment. An archived staging of an earlier up does not
// hold the slug; down archives it and drops its database now (force).
'use strict';
const { fn, organizationId, table } = require('../envdb');

exports.up = async (knex) => {
  const org = await organizationId(knex, 'acme');
  await fn(knex, 'provision_environment', [org, 'staging', null, 'development', null, null, null, null,
    null, null, null, null, 1]);
};

exports.down = async (knex) => {
  const org = await organizationId(knex, 'acme');
  const env = await knex(table(knex, 'sys_environment'))
    .where({ organization_id: org, slug: 'staging' }).whereNot({ status: 'archived' }).first('id');
  if (!env) return;
  await fn(knex, 'archive_environment', [env.id]);
  await fn(knex, 'drop_environment_database', [env.id, 1]);
};
