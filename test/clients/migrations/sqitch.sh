#!/usr/bin/env bash
# The sqitch example project (examples/migrations/sqitch-<engine>) round trip:
# deploy -> verify -> revert the last change -> deploy again -> verify ->
# revert to the catalog (check() ok, no environment database left) -> full
# revert (no catalog, no file / database / role left).
#
#   sqitch.sh sqlite   CLIENT_DIR, ENVDB_EXTENSION, ENVDB_KEYRING (run.sh's sqlite_client)
#   sqitch.sh pg       PG* of a role that may CREATE EXTENSION, in an empty database whose
#                      envdb.keyring_file is set, on a server preloaded with envdb
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
engine=${1:?usage: sqitch.sh sqlite|pg}
command -v sqitch >/dev/null || { echo "sqitch is missing: run scripts/setup.sh (Debian package sqitch)"; exit 1; }
export SQITCH_USER_CONFIG=/dev/null SQITCH_FULLNAME=envdb SQITCH_EMAIL=envdb@example.com
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$root/examples/migrations/sqitch-$engine/." "$work/"
cd "$work"

if [ "$engine" = sqlite ]; then
  control=$CLIENT_DIR/control.db
  target=db:sqlite:$control
  q() { sqlite3 -cmd ".load $ENVDB_EXTENSION" "$control" "$@"; }
  env_left() { find "$CLIENT_DIR" -name 'env-*' | wc -l; }
else
  target=db:pg:
  q() { psql -X -q -A -t -v ON_ERROR_STOP=1 -c "$@"; }
  # env-... databases and roles left on the server (each test run has its own server).
  env_left() {
    psql -X -A -t -d postgres -c "select (select count(*) from pg_database where datname like 'env-%')
      + (select count(*) from pg_roles where rolname like 'env-%')"
  }
  wait_active() {  # the worker carries out the create_database jobs
    for _ in $(seq 600); do
      [ "$(q "select count(*) from envdb.sys_environment where status = 'provisioning'")" = 0 ] && return
      sleep 0.2
    done
    echo "environments still provisioning"; return 1
  }
  wait_dropped() {
    for _ in $(seq 600); do
      [ "$(q "select count(*) from envdb.sys_environment_database where dropped_at is null and
              environment_id in (select id from envdb.sys_environment where status = 'archived')")" = 0 ] && return
      sleep 0.2
    done
    echo "databases not dropped"; return 1
  }
fi
step() { echo "== $*"; }
[ "$engine" = pg ] && before=$(env_left) || before=0

step deploy
sqitch deploy --verify "$target"
[ "$engine" = pg ] && wait_active
sqitch verify "$target"
schema=$( [ "$engine" = pg ] && echo envdb. || true)
staging1=$(q "select id from ${schema}sys_environment where slug = 'staging'")

step revert the last change
sqitch revert -y --to @HEAD^ "$target"
[ "$engine" = pg ] && wait_dropped

step deploy again
sqitch deploy --verify "$target"
[ "$engine" = pg ] && wait_active
sqitch verify "$target"
staging2=$(q "select id from ${schema}sys_environment where slug = 'staging'")
[ -n "$staging2" ] && [ "$staging2" != "$staging1" ] || { echo "staging was not provisioned anew"; exit 1; }

step revert to the catalog
sqitch revert -y --to envdb "$target"
[ "$engine" = pg ] && wait_dropped
ok=$(q "select $( [ "$engine" = pg ] && echo "envdb.check()->>'ok'" || echo "json_extract(envdb_check(), '\$.ok')")")
[ "$ok" = true ] || [ "$ok" = 1 ] || { echo "check() is not ok: $ok"; exit 1; }
[ "$(env_left)" = "$before" ] || { echo "environment databases left: $(env_left)"; exit 1; }

step full revert
sqitch revert -y "$target"
[ "$(env_left)" = "$before" ] || { echo "environment databases left after the full revert"; exit 1; }
if [ "$engine" = sqlite ]; then
  left=$(sqlite3 "$control" "select count(*) from sqlite_master where name like 'sys!_%' escape '!'")
else
  left=$(q "select count(*) from pg_namespace where nspname = 'envdb'")
fi
[ "$left" = 0 ] || { echo "envdb objects left: $left"; exit 1; }
echo "sqitch $engine: deploy, verify, revert, deploy again, full revert: nothing left"
