#!/usr/bin/env bash
# Runs inside pg_virtualenv (PGHOST, PGPORT, PGUSER, PGPASSWORD set): the
# pg_regress suite, then the Python suites that drive the same server.
# Each suite ends with a line "SUITE <name> <passed> <failed>".
set -uo pipefail
root=$1
cd "$root"
mkdir -p build/regress

make --no-print-directory -C pg_ext installcheck REGRESS_OUTPUT="$root/build/regress" \
  >build/regress/installcheck.log 2>&1
cat build/regress/installcheck.log
total=$(grep -cE '^(ok|not ok) ' build/regress/installcheck.log)
bad=$(grep -cE '^not ok ' build/regress/installcheck.log)
if [ "$total" -eq 0 ]; then  # older pg_regress output style
  total=$(grep -cE '^(test | +)[a-z_0-9]+ +\.\.\. ' build/regress/installcheck.log)
  bad=$(grep -cE '\.\.\. FAILED' build/regress/installcheck.log)
fi
[ "$total" -eq 0 ] && bad=1
echo "SUITE pg_regress $((total - bad)) $bad"

/usr/bin/python3 test/pyrun.py test/pg test/parity >build/regress/python.log 2>&1
cat build/regress/python.log
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' build/regress/python.log | tail -1)
if [ -n "$line" ]; then
  echo "SUITE postgres+parity $(sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line")"
else
  echo "SUITE postgres+parity 0 1"
fi

test/clients/run.sh pg >build/regress/clients.log 2>&1
cat build/regress/clients.log
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' build/regress/clients.log | tail -1)
echo "SUITE clients-pg $( [ -n "$line" ] && sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line" || echo 0 1)"

# The documentation's runnable postgres blocks (test/doctest/run_docs.py).
/usr/bin/python3 test/doctest/run_docs.py --host postgres >build/regress/docs.log 2>&1
cat build/regress/docs.log
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' build/regress/docs.log | tail -1)
echo "SUITE docs-postgres $( [ -n "$line" ] && sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line" || echo 0 1)"
