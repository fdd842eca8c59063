// knex configuration for the envdb example migrations, for either engine:
//
//   ENVDB_ENGINE=sqlite  better-sqlite3 on ENVDB_SQLITE_FILE, loading ENVDB_EXTENSION (envdb.so) on every
//                        connection; ENVDB_KEYRING names the key file the extension reads
//   ENVDB_ENGINE=pg      node-postgres with the usual PG* environment variables (a role that may
//                        CREATE EXTENSION envdb, for the first migration)
'use strict';
const path = require('path');

const engine = process.env.ENVDB_ENGINE || 'sqlite';
const migrations = { directory: path.join(__dirname, 'migrations') };

module.exports = engine === 'pg'
  ? { client: 'pg', connection: {}, migrations }
  : {
    client: 'better-sqlite3',
    connection: { filename: process.env.ENVDB_SQLITE_FILE },
    useNullAsDefault: true,
    pool: {
      // Every connection loads envdb (its keyring is read from ENVDB_KEYRING when it loads).
      afterCreate(conn, done) {
        conn.loadExtension(process.env.ENVDB_EXTENSION);
        done();
      },
    },
    migrations,
  };
