#!/usr/bin/env bash
# Profiles of the resolve path with and without the resolve cache, as text
# under bench/results/ (the "before" side is the same build with the cache
# off, which is the read path as it was before the cache):
#   SQLite:   callgrind of driver_sqlite --only profile (1k environments,
#             BENCH_PROFILE_CALLS resolves), callgrind_annotate inclusive
#   Postgres: perf of one backend (bench/profile_resolve.py)
# Usage (after make bench has built build-bench/ and installed it, or with
# BENCH_BUILD=build after make + make install):  bench/profile_resolve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BENCH_BUILD:-build-bench}
out=bench/results
calls=${BENCH_PROFILE_CALLS:-20000}
work=$(mktemp -d /dev/shm/envdb-profile.XXXXXX)
trap 'rm -rf "$work"' EXIT
g++ -O2 -g -DNDEBUG -std=c++17 -Ishared -Ibench bench/driver_sqlite.cpp "$B/libenvdb_core.a" \
  -lsqlite3 -lcrypto -o "$work/driver_sqlite"
for side in before after; do
  entries=10000
  [ "$side" = before ] && entries=0
  ENVDB_RESOLVE_CACHE_ENTRIES=$entries valgrind --tool=callgrind --collect-atstart=no \
    --toggle-collect='*profile_envdb_loop*' --callgrind-out-file="$work/cg.$side" \
    "$work/driver_sqlite" --ext "$B/envdb.so" --work "$work" --only profile --calls "$calls" \
    >/dev/null 2>"$work/cg.$side.log"
  {
    echo "# SQLite, $side: $calls resolves (envdb_resolve_environment, one prepared statement)"
    echo "# ENVDB_RESOLVE_CACHE_ENTRIES=$entries; valgrind --tool=callgrind, inclusive cost"
    echo
    callgrind_annotate --inclusive=yes --threshold=97 "$work/cg.$side" | sed -n '1,90p'
  } >"$out/profile-resolve-sqlite-$side.txt"
done
if command -v perf >/dev/null; then
  pg_virtualenv -t /usr/bin/python3 bench/profile_resolve.py "$out"
fi
