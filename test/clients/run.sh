#!/usr/bin/env bash
# Real clients against the built extensions. Each one provisions an
# environment and resolves it through its own driver, passing every value as a
# driver parameter (never spliced into SQL by hand), and checks the answer.
#
#   test/clients/run.sh sqlite   python sqlite3, better-sqlite3, libsql, loading build/envdb.so (and the
#                                sqlite3 shell for REAL arguments)
#   test/clients/run.sh pg       psql, a libpq C program, node pg (and its LISTEN of envdb_events), psycopg2, the sqitch and knex
#                                migration examples (as the superuser); inside pg_virtualenv
#                                after `make install` (PGHOST, PGPORT, PGUSER, PGPASSWORD of a
#                                superuser, who sets up; the clients log in as a member of envdb_admin)
#
# Prints "PASS <client>" or "FAIL <client>" with the client's output, then
# "N passed, M failed". The Node.js clients need `scripts/setup-clients.sh`
# (npm ci in test/clients/node) first.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
group=${1:-}
case "$group" in sqlite | pg) ;; *) echo "usage: $0 sqlite|pg" >&2; exit 2 ;; esac

logs=$root/build/clients
mkdir -p "$logs"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# A fresh 32-byte key, in a key file only its owner can read.
key_file=$tmp/keyring
(umask 077; printf 'k1 %s\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$key_file")

run() {  # run <client> <command...>: the client passes when the command exits 0
  local name=$1 start end
  shift
  start=$(date +%s%N)
  # Shell functions too (exported below), each under a time limit.
  if timeout 300 bash -c '"$@"' client "$@" >"$logs/$name.log" 2>&1; then
    end=$(date +%s%N)
    printf 'PASS %-22s %5d ms  %s\n' "$name" $(((end - start) / 1000000)) "$(tail -1 "$logs/$name.log")"
    passed=$((passed + 1))
  else
    printf 'FAIL %s\n' "$name"
    sed 's/^/    /' "$logs/$name.log" | tail -20
    failed=$((failed + 1))
  fi
}

node_client() {  # a hint instead of a bare "Cannot find module" when npm ci has not run
  if [ ! -d "$here/node/node_modules" ]; then
    echo "test/clients/node/node_modules is missing: run scripts/setup-clients.sh"
    return 1
  fi
  node "$@"
}

sqlite_client() {  # sqlite_client <name> <command...>: with an empty CLIENT_DIR and the key file
  local name=$1
  shift
  mkdir -p "$tmp/$name"
  ENVDB_EXTENSION="$root/build/envdb.so" ENVDB_KEYRING="$key_file" CLIENT_DIR="$tmp/$name" run "$name" "$@"
}

psql_client() {  # the script's output must match the expected checks line for line
  psql -X -q -A -t -v ON_ERROR_STOP=1 -f "$here/psql/provision_resolve.sql" >"$tmp/psql.out" 2>&1 || {
    cat "$tmp/psql.out"; return 1; }
  diff -u "$here/psql/provision_resolve.out" "$tmp/psql.out" || return 1
  echo "psql: $(grep -c '^ok: ' "$tmp/psql.out") checks ok"
}

c_client() {  # compiled here, warnings as errors, then run
  cc -std=c11 -Wall -Wextra -Werror -I"$(pg_config --includedir)" -o "$logs/provision_resolve" \
    "$here/c/provision_resolve.c" -lpq && "$logs/provision_resolve"
}

pg_client() {  # pg_client <name> <command...>: in a database of its own with envdb and a key file,
  local name=$1 db=envdb_client_${1//-/_}  # connected as a login role in envdb_admin, not a superuser
  shift
  if ! psql -X -q -d postgres -v ON_ERROR_STOP=1 -v db="$db" -v key_file="$pg_key_file" -v password="$pg_password" \
    >"$logs/$name.setup.log" 2>&1 <<'SQL'
DROP DATABASE IF EXISTS :"db";
CREATE DATABASE :"db";
\connect :"db"
CREATE EXTENSION envdb;
ALTER DATABASE :"db" SET envdb.keyring_file = :'key_file';
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'envdb_client') AS new_role \gset
\if :new_role
CREATE ROLE envdb_client LOGIN PASSWORD :'password' IN ROLE envdb_admin;
\endif
SQL
  then
    printf 'FAIL %s (database set-up)\n' "$name"; sed 's/^/    /' "$logs/$name.setup.log"
    failed=$((failed + 1)); return
  fi
  PGDATABASE=$db PGUSER=envdb_client PGPASSWORD=$pg_password run "$name" "$@"
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1
}

pg_migrations() {  # pg_migrations <name> <command...>: as the superuser, in an empty database whose
  local name=$1 db=envdb_migrate_${1//-/_}  # keyring is set; the migrations create and drop envdb
  shift
  if ! psql -X -q -d postgres -v ON_ERROR_STOP=1 -v db="$db" -v key_file="$pg_key_file" \
    >"$logs/$name.setup.log" 2>&1 <<'SQL'
DROP DATABASE IF EXISTS :"db";
CREATE DATABASE :"db";
ALTER DATABASE :"db" SET envdb.keyring_file = :'key_file';
SQL
  then
    printf 'FAIL %s (database set-up)\n' "$name"; sed 's/^/    /' "$logs/$name.setup.log"
    failed=$((failed + 1)); return
  fi
  PGDATABASE=$db run "$name" "$@"
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1
}

export here logs tmp
export -f node_client psql_client c_client

if [ "$group" = sqlite ]; then
  sqlite_client python-sqlite3 /usr/bin/python3 "$here/python/sqlite_client.py"
  sqlite_client node-better-sqlite3 node_client "$here/node/sqlite_client.js" better-sqlite3
  sqlite_client node-libsql node_client "$here/node/sqlite_client.js" libsql
  # JS numbers (bound as REAL) and REAL literals where integers, seconds and booleans are expected.
  sqlite_client python-numbers /usr/bin/python3 "$here/python/numbers_client.py"
  sqlite_client node-better-sqlite3-numbers node_client "$here/node/numbers_client.js" better-sqlite3
  sqlite_client node-libsql-numbers node_client "$here/node/numbers_client.js" libsql
  # Migration tools: deploy, revert, deploy again, full revert leaves nothing (docs/guides/migrations.md).
  sqlite_client sqitch-sqlite "$here/migrations/sqitch.sh" sqlite
  sqlite_client knex-sqlite node_client "$here/node/migrations_knex.js" sqlite
else
  # The server reads the key file itself: it must belong to the server's OS user.
  pg_key_file=$tmp/pg/keyring
  mkdir -p "$tmp/pg" && chmod 755 "$tmp" "$tmp/pg" && cp "$key_file" "$pg_key_file"
  owner=$(stat -c %U "$(psql -X -A -t -d postgres -c 'SHOW data_directory')")
  [ "$(id -un)" = "$owner" ] || chown "$owner" "$pg_key_file"
  pg_password=$(head -c 18 /dev/urandom | base64 -w0 | tr -d '+/=')
  psql -X -q -d postgres -c 'DROP ROLE IF EXISTS envdb_client' >/dev/null 2>&1
  pg_client psql psql_client
  pg_client c-libpq c_client
  pg_client python-psycopg2 /usr/bin/python3 "$here/python/psycopg2_client.py"
  pg_client node-pg node_client "$here/node/pg_client.js"
  pg_client node-pg-events node_client "$here/node/pg_events.js"
  pg_migrations sqitch-pg "$here/migrations/sqitch.sh" pg
  pg_migrations knex-pg node_client "$here/node/migrations_knex.js" pg
  psql -X -q -d postgres -c 'DROP ROLE IF EXISTS envdb_client' >/dev/null 2>&1
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
