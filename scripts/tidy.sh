#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over the core's .cpp files, the files git tracks
# under shared/ (so a moved or new file is covered without a list here), JOBS
# at a time (default 2). Any warning fails its file; the core's headers are
# checked with the files that include them. Ends with "N passed, M failed"
# (one per file) for make check's tally; each file's output is in
# build-tidy/tidy/<path>.log.
#
# The compile database comes from its own CMake configure in build-tidy/
# (configured only, nothing is built): make's default build is a unity build,
# whose compile_commands.json names the batched unity sources rather than the
# core's files. CLANG_TIDY names the binary (default clang-tidy).
set -uo pipefail
cd "$(dirname "$0")/.."
clang_tidy=${CLANG_TIDY:-clang-tidy}
jobs=${JOBS:-2}
build=${TIDY_BUILD:-build-tidy}
out=$build/tidy
t0=$(date +%s)
command -v "$clang_tidy" >/dev/null || { echo "tidy: $clang_tidy not found (apt-get install clang-tidy)"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p "$out"
if ! cmake -S . -B "$build" -DENVDB_UNITY=OFF -DENVDB_TESTS=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
     >"$out/configure.log" 2>&1; then
  tail -20 "$out/configure.log"; echo "0 passed, 1 failed"; exit 1
fi

# git's pathspec '*' also matches '/', so this takes the core's subfolders too.
mapfile -t files < <(git ls-files -- 'shared/*.cpp')
[ "${#files[@]}" -gt 0 ] || { echo "tidy: no core files found"; echo "0 passed, 1 failed"; exit 1; }

# One line a file: "<exit status> <file>". -Wno-unknown-warning-option: the
# database holds GCC's flags, some of which clang does not know.
tidy_one() {
  local log="$out/$1.log"
  mkdir -p "$(dirname "$log")"
  "$clang_tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option "$1" >"$log" 2>&1
  echo "$? $1"
}
export -f tidy_one
export clang_tidy build out
results=$(printf '%s\0' "${files[@]}" | xargs -0 -r -n 1 -P "$jobs" bash -c 'tidy_one "$1"' _)

failed=$(awk '$1 != 0 { print $2 }' <<<"$results" | sort)
n_failed=$(grep -c . <<<"$failed")
for f in $failed; do
  echo "--- $f"
  grep -E 'warning:|error:' "$out/$f.log" | grep -v 'warnings generated' | head -20
done
echo "tidy: ${#files[@]} core files in $(( $(date +%s) - t0 )) s, $n_failed with warnings (logs in $out/)"
echo "$(( ${#files[@]} - n_failed )) passed, $n_failed failed"
[ "$n_failed" -eq 0 ]
