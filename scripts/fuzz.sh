#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets with clang and runs each for
# FUZZ_SECONDS (default 60) from the committed seed corpus (test/fuzz/corpus),
# growing a working copy of it under build-fuzz/. A crash leaves its input in
# build-fuzz/crash-* and fails the run: turn it into a unit test.
# Ends with "N passed, M failed" (one per target).
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ -DENVDB_FUZZ=ON \
  -DENVDB_TESTS=ON >"$build.log" 2>&1 &&
  cmake --build "$build" -j"${JOBS:-2}" --target fuzz_envelope fuzz_keyring fuzz_identifiers fuzz_request fuzz_json_bounds \
    >>"$build.log" 2>&1 \
  || { tail -30 "$build.log"; echo "0 passed, 1 failed"; exit 1; }
passed=0 failed=0
for target in envelope keyring identifiers request json_bounds; do
  work="$build/corpus/$target"
  mkdir -p "$work"
  cp -n test/fuzz/corpus/$target/* "$work/" 2>/dev/null || true
  if (cd "$build" && ./fuzz_$target -max_total_time="$seconds" -max_len=4096 -timeout=10 \
        -print_final_stats=1 "corpus/$target" >"fuzz_$target.log" 2>&1); then
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$build/fuzz_$target.log" | grep -oE '[0-9]+$')
    echo "fuzz $target: ok, ${runs:-?} inputs in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "fuzz $target: FAILED (see $build/fuzz_$target.log)"; tail -30 "$build/fuzz_$target.log"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
