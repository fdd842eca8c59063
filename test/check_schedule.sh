#!/usr/bin/env bash
# Every pg_regress input in sql/ is listed in sql/schedule, and every listed
# test has an expected output.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for f in sql/*.sql; do
  t=$(basename "$f" .sql)
  grep -qE "^test: *$t\$" sql/schedule || { echo "sql/$t.sql is not in sql/schedule"; status=1; }
  [ -f "expected/$t.out" ] || { echo "expected/$t.out is missing"; status=1; }
done
exit $status
