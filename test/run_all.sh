#!/usr/bin/env bash
# make check: every suite, then one summary line "N passed, M failed".
#   0. the format (scripts/format.sh --check, one count a file)
#   1. core unit tests (GoogleTest under CTest)
#   2. the same under AddressSanitizer + UndefinedBehaviorSanitizer
#   3. every parser fuzzed briefly (libFuzzer, clang)
#   4. SQLite end-to-end tests against the built build/envdb.so, real clients
#      loading it (test/clients, after scripts/setup-clients.sh), then the
#      suite again against the ASan + UBSan build (build-asan/envdb.so)
#   5. packaging: make dist's tarball, make install into a DESTDIR and with
#      another PG_CONFIG, the upgrade-script generator's refusals
#   6. Postgres: install, then pg_regress and the cross-host suites against a
#      throwaway cluster (pg_virtualenv, envdb preloaded), including a
#      non-superuser run, and the real Postgres clients (psql, libpq, node pg,
#      psycopg2); clang-tidy over the core (scripts/tidy.sh, one count a core
#      file) runs beside this stage
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${JOBS:-2}
werror=$([ -n "${CI:-}" ] && echo ON || echo OFF)
log=build/check
mkdir -p "$log"
export ENVDB_NO_SKIPS=1  # test/pyrun.py: a skipped test fails here
passed=0 failed=0
t0=$(date +%s)
stage() { echo "== $1 (at $(( $(date +%s) - t0 )) s)"; }

tally() {  # tally <suite> <passed> <failed>
  printf '%-28s %5d passed, %d failed\n' "$1" "$2" "$3" | tee -a "$log/summary"
  passed=$((passed + $2)); failed=$((failed + $3))
}

ctest_counts() {  # from "... tests passed, N tests failed out of M"
  local line total bad
  line=$(grep -E 'tests failed out of' "$1" | tail -1)
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line"); bad=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  echo "$(( ${total:-0} - ${bad:-0} )) ${bad:-1}"
}

py_counts() {  # from "N passed, M failed"
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -1)
  [ -n "$line" ] && sed -E 's/([0-9]+) passed, ([0-9]+) failed/\1 \2/' <<<"$line" || echo "0 1"
}

: >"$log/summary"
stage "build"
if ! make --no-print-directory all ENVDB_WERROR=$([ "$werror" = ON ] && echo 1 || echo 0) >"$log/build.log" 2>&1; then
  tail -40 "$log/build.log"; echo "0 passed, 1 failed"; exit 1
fi

stage "architecture (test/arch: the documented tiers against the includes)"
/usr/bin/python3 test/pyrun.py test/arch >"$log/arch.log" 2>&1
tally "architecture" $(py_counts "$log/arch.log")

stage "format (clang-format)"
scripts/format.sh --check >"$log/format.log" 2>&1
tally "format" $(py_counts "$log/format.log")
grep -q '^format: all' "$log/format.log" || head -20 "$log/format.log"

stage "core unit tests"
(cd build && ctest -j"$jobs" --output-on-failure) >"$log/unit.log" 2>&1
tally "core unit" $(ctest_counts "$log/unit.log")

stage "core unit tests under ASan + UBSan"
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DENVDB_SANITIZE=ON -DENVDB_WERROR=$werror >"$log/asan-build.log" 2>&1 &&
   cmake --build build-asan -j"$jobs" --target envdb_unit_tests envdb_static_test envdb_sqlite >>"$log/asan-build.log" 2>&1; then
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -j"$jobs" --output-on-failure) >"$log/asan.log" 2>&1
  tally "core unit (asan+ubsan)" $(ctest_counts "$log/asan.log")
else
  tail -30 "$log/asan-build.log"; tally "core unit (asan+ubsan)" 0 1
fi

# npm ci for the Node.js clients spends most of a minute compiling SQLite's
# amalgamation (one file, one core) for better-sqlite3: it runs beside the
# fuzzers, which use one core once their build is done.
scripts/setup-clients.sh >"$log/clients-setup.log" 2>&1 &
clients_setup=$!

stage "fuzzing (${FUZZ_SECONDS:-10} s per parser; make fuzz runs longer)"
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh >"$log/fuzz.log" 2>&1
tally "fuzz" $(py_counts "$log/fuzz.log")

stage "SQLite end-to-end"
/usr/bin/python3 test/pyrun.py test/sqlite >"$log/sqlite.log" 2>&1
tally "sqlite e2e" $(py_counts "$log/sqlite.log")

stage "docs that run (SQLite) and the doc-test runner"
/usr/bin/python3 test/doctest/run_docs.py --host sqlite >"$log/docs-sqlite.log" 2>&1
tally "docs sqlite" $(py_counts "$log/docs-sqlite.log")
/usr/bin/python3 test/pyrun.py test/doctest >"$log/doctest-runner.log" 2>&1
tally "doctest runner" $(py_counts "$log/doctest-runner.log")

stage "real clients on SQLite (python sqlite3, better-sqlite3, libsql)"
if ! wait "$clients_setup"; then tail -20 "$log/clients-setup.log"; fi
test/clients/run.sh sqlite >"$log/clients-sqlite.log" 2>&1
tally "clients sqlite" $(py_counts "$log/clients-sqlite.log")

stage "SQLite end-to-end under ASan + UBSan"
# The sanitized extension runs inside /usr/bin/python3, which is not
# sanitized: the ASan and UBSan runtimes are preloaded so they come first.
# Python's own allocations live until exit by design, so leak detection is
# off (the unit tests above run with it on); any ASan or UBSan report stops
# the process (UBSan is built with -fno-sanitize-recover) and fails the suite.
if [ -f build-asan/envdb.so ]; then
  LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:halt_on_error=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ENVDB_SQLITE_EXTENSION="$root/build-asan/envdb" \
    /usr/bin/python3 test/pyrun.py test/sqlite >"$log/sqlite-asan.log" 2>&1
  read -r p f < <(py_counts "$log/sqlite-asan.log")
  reports=$(grep -cE 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' "$log/sqlite-asan.log")
  [ "$reports" -eq 0 ] || { grep -E -A20 'ERROR: AddressSanitizer|runtime error:' "$log/sqlite-asan.log" | head -40; f=$((f + 1)); }
  tally "sqlite e2e (asan+ubsan)" "$p" "$f"
else
  tally "sqlite e2e (asan+ubsan)" 0 1
fi

stage "packaging"
/usr/bin/python3 test/pyrun.py test/packaging >"$log/packaging.log" 2>&1
tally "packaging" $(py_counts "$log/packaging.log")

stage "Postgres, with clang-tidy on the core beside it"
# The Postgres suites mostly wait on the server and its worker, so clang-tidy
# (about 430 s of one core) runs beside them at the lowest priority instead of
# holding both cores for 215 s before them; the tests keep a core of their own.
nice -n 19 env JOBS=1 scripts/tidy.sh >"$log/tidy.log" 2>&1 &
tidy_pid=$!
if ! test/check_schedule.sh >"$log/schedule.log" 2>&1; then cat "$log/schedule.log"; tally "pg_regress schedule" 0 1; fi
if make --no-print-directory install >"$log/pg-install.log" 2>&1; then
  # -t: the throwaway cluster lives in a temporary directory with a free port,
  # so a leftover cluster called "regress" (an interrupted run) or a concurrent
  # `make bench` cannot make this run refuse to start.
  pg_virtualenv -t -o shared_preload_libraries=envdb test/pg/run.sh "$root" >"$log/pg.log" 2>&1
  while read -r suite p f; do tally "$suite" "$p" "$f"; done < <(grep -E '^SUITE ' "$log/pg.log" | cut -d' ' -f2-)
  grep -q '^SUITE ' "$log/pg.log" || { tail -30 "$log/pg.log"; tally "postgres" 0 1; }
else
  tail -30 "$log/pg-install.log"; tally "postgres install" 0 1
fi

wait "$tidy_pid"
tally "tidy (core)" $(py_counts "$log/tidy.log")
grep '^tidy: ' "$log/tidy.log"

if [ "$failed" -ne 0 ]; then
  echo; echo "== failures (logs in $log/)"
  for f in "$log"/*.log; do grep -lE 'FAILED|FAIL:|^FAIL |ERROR:|failed \(|regression.diffs|\*\*\*Failed' "$f" >/dev/null && { echo "--- $f"; grep -E -B2 -A12 'FAILED|FAIL:|^FAIL |ERROR: |Traceback|\*\*\*Failed' "$f" | head -80; }; done
  [ -f build/regress/regression.diffs ] && { echo "--- regression.diffs"; head -100 build/regress/regression.diffs; }
fi
echo
cat "$log/summary"
echo "make check took $(( $(date +%s) - t0 )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
