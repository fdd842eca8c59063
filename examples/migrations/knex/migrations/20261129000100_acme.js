// The acme organization. up is safe to run again (if_not_exists); down
// deprovisions it with force, which frees the slug for the next up.
'use strict';
const { fn, organizationId } = require('../envdb');

exports.up = async (knex) => {
  await fn(knex, 'provision_organization', ['acme', 'Acme', null, null, null, null, null, 1]);
};

exports.down = async (knex) => {
  const id = await organizationId(knex, 'acme');
  if (id) await fn(knex, 'deprovision_organization', [id, 1]);
};
