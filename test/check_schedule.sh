#!/usr/bin/env bash
# Every pg_regress input in pg_ext/regress/sql/ is listed in its schedule, and
# every listed test has an expected output in pg_ext/regress/expected/.
set -euo pipefail
cd "$(dirname "$0")/../pg_ext/regress"
status=0
for f in sql/*.sql; do
  t=$(basename "$f" .sql)
  grep -qE "^test: *$t\$" sql/schedule ||
    { echo "pg_ext/regress/sql/$t.sql is not in sql/schedule"; status=1; }
  [ -f "expected/$t.out" ] || { echo "pg_ext/regress/expected/$t.out is missing"; status=1; }
done
while read -r t; do
  [ -f "sql/$t.sql" ] ||
    { echo "sql/schedule lists $t, which has no pg_ext/regress/sql/$t.sql"; status=1; }
done < <(sed -n 's/^test: *//p' sql/schedule)
exit $status
