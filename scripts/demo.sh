#!/usr/bin/env bash
# make demo: envdb on the embedded default, SQLite, with no server. Runs
# scripts/demo.sql in the sqlite3 shell against a fresh control database in a
# temporary folder, with a throwaway key.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
umask 077
printf 'demo-key %s\n' "$(head -c 32 /dev/urandom | base64)" >keyring
export ENVDB_KEYRING="$work/keyring"
sed "s|@ENVDB@|$root/build/envdb|" "$root/scripts/demo.sql" >demo.sql
# The part between "-- @refusal@" and "-- @end refusal@" is meant to fail: it runs
# on its own, without -bail, and its error is shown; the rest stops at any error.
header=$(sed -n '1,/^\.mode/p' demo.sql)
sed -n '1,/^-- @refusal@$/p' demo.sql | sqlite3 -bail control.db
{ echo "$header"; sed -n '/^-- @refusal@$/,/^-- @end refusal@$/p' demo.sql; } |
  sqlite3 control.db 2>&1 | sed 's/^/(refused, as expected) /' || true
{ echo "$header"; sed -n '/^-- @end refusal@$/,$p' demo.sql; } | sqlite3 -bail control.db
echo
echo "environment files created:"
ls -1 environments 2>/dev/null | sed 's/^/  /' || true
