#!/usr/bin/env bash
# make check-fast: the everyday edit-test loop. Builds the core and the SQLite
# extension (no Postgres, no sanitizers, no fuzzing), checks the format (a
# couple of CPU seconds; clang-tidy takes minutes and is left to make check),
# then runs the core's unit tests, the architecture check (test/arch) and the
# SQLite end-to-end suite; ends with "N passed, M failed". make check runs
# these and everything else.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
log=build/check-fast
mkdir -p "$log"
t0=$(date +%s)
passed=0 failed=0
if ! make --no-print-directory core JOBS="$jobs" >"$log/build.log" 2>&1; then
  tail -40 "$log/build.log"; echo "0 passed, 1 failed"; exit 1
fi
scripts/format.sh --check >"$log/format.log" 2>&1
read -r p f < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/format.log" | tail -1 | sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
echo "format: ${p:-0} passed, ${f:-1} failed"
[ "${f:-1}" -eq 0 ] || head -20 "$log/format.log"
(cd build && ctest -j"$jobs" --output-on-failure) >"$log/unit.log" 2>&1
line=$(grep -E 'tests failed out of' "$log/unit.log" | tail -1)
total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); bad=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
passed=$((passed + ${total:-0} - ${bad:-0})); failed=$((failed + ${bad:-1}))
echo "core unit: $(( ${total:-0} - ${bad:-0} )) passed, ${bad:-1} failed"
/usr/bin/python3 test/pyrun.py test/arch >"$log/arch.log" 2>&1
read -r p f < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/arch.log" | tail -1 | sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
echo "architecture: ${p:-0} passed, ${f:-1} failed"
/usr/bin/python3 test/pyrun.py test/sqlite >"$log/sqlite.log" 2>&1
read -r p f < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/sqlite.log" | tail -1 | sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/')
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-1}))
echo "sqlite e2e: ${p:-0} passed, ${f:-1} failed"
[ "$failed" -eq 0 ] || { grep -hE -A12 'FAILED|^FAIL:|^ERROR:' "$log"/*.log | head -60; }
echo "make check-fast took $(( $(date +%s) - t0 )) s (logs in $log/)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
