#!/usr/bin/env bash
# make bench: builds envdb optimised in its own build directory, measures
# envdb next to a baseline in the same run, and prints the side-by-side tables
# (also written to bench/results/latest.md).
#
#   1. build-bench/ (Release, ENVDB_BENCH=ON, no unit tests); the Postgres
#      extension is installed from it (make install BUILD=build-bench), so both
#      hosts run the same optimised core
#   2. bench_crypto (Google Benchmark): envdb seal/open vs raw OpenSSL EVP
#   3. driver_sqlite: the built envdb.so loaded into a plain sqlite3 connection
#   4. driver_pg under pg_virtualenv with the preload: libpq against the
#      installed extension, pgcrypto in the same server
#   4b. bench/copy_bench.py: copy_environment of a 100 MB sqlite environment
#      vs a bare VACUUM INTO (bench/results/copy.md)
#   5. bench/pg_driver_bench.py under pg_virtualenv with the preload: the
#      postgres driver's provision-to-active time vs the same roles, database,
#      grants, logins and schema as a bare psql script, and 100 environments
#      at once (environments per second) vs that script run 100 times
#      (BENCH_PG_DRIVER_MANY; bench/results/pg-provisioning.md)
#   6. bench/copy_pg_bench.py under pg_virtualenv with the preload: a Postgres
#      copy_environment vs a bare CREATE DATABASE ... TEMPLATE
#      (bench/results/copy-pg.md)
#   7. bench/report.py: the tables
#
# Sizes can be lowered for a quick look, e.g.
#   BENCH_SCALES=1000,10000,100000 BENCH_ROTATIONS=5000 make bench
# Needs root (or a writable PostgreSQL installation) for make install, and
# about 2 GB free on tmpfs (/dev/shm, or BENCH_TMPFS=dir) for the SQLite
# catalog of a million environments.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)

B=${BENCH_BUILD:-build-bench}
jobs=${JOBS:-2}
scales=${BENCH_SCALES:-1000,100000,1000000}
pg_scales=${BENCH_PG_SCALES:-$scales}
runs=${BENCH_RUNS:-5}
rotations=${BENCH_ROTATIONS:-10000}
rewrap_runs=${BENCH_REWRAP_RUNS:-3}
bulk_at=${BENCH_BULK_AT:-50000}
out=$B/bench-out
mkdir -p "$out" bench/results
rm -f "$out"/*.txt "$out"/*.json
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

step() { printf '== %s (%ds)\n' "$1" $(( $(date +%s) - start )); }

step "build ($B, Release) and install the Postgres extension from it"
build_kind="from scratch"
[ -f "$B/CMakeCache.txt" ] && build_kind="incremental"
make_args=(BUILD="$B" CMAKE_BUILD_TYPE=Release ENVDB_WERROR=0 JOBS="$jobs"
           CMAKE_FLAGS="-DENVDB_BENCH=ON -DENVDB_TESTS=OFF")
make --no-print-directory core "${make_args[@]}" >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
# pg_ext/ is shared with the default build: make sure its envdb.so is linked
# against this optimised core, not whichever core was linked last.
touch "$B/libenvdb_core.a"
pg_ok=1
if ! make --no-print-directory install "${make_args[@]}" >>"$out/build.log" 2>&1; then
  tail -20 "$out/build.log"
  echo "make install failed (see $out/build.log): the Postgres part is skipped"
  pg_ok=0
fi

step "build the SQL-level drivers"
cxx=${CXX:-g++}
flags=(-O2 -DNDEBUG -std=c++17 -Wall -Wextra -Ishared -Ibench)
"$cxx" "${flags[@]}" bench/driver_sqlite.cpp "$B/libenvdb_core.a" -lsqlite3 -lcrypto \
  -o "$B/driver_sqlite" >"$out/driver_sqlite.build.log" 2>&1 &
sqlite_build=$!
pg_build=
if [ "$pg_ok" = 1 ]; then
  "$cxx" "${flags[@]}" -I"$(pg_config --includedir)" bench/driver_pg.cpp "$B/libenvdb_core.a" \
    -L"$(pg_config --libdir)" -lpq -lcrypto -o "$B/driver_pg" >"$out/driver_pg.build.log" 2>&1 &
  pg_build=$!
fi
wait "$sqlite_build" || { cat "$out/driver_sqlite.build.log"; exit 1; }
if [ -n "$pg_build" ] && ! wait "$pg_build"; then
  cat "$out/driver_pg.build.log"; echo "driver_pg did not build: the Postgres part is skipped"; pg_ok=0
fi

step "sealing in process (Google Benchmark, median of $runs repetitions)"
"$B/bench_crypto" --benchmark_repetitions="$runs" --benchmark_min_time=0.2 \
  --benchmark_report_aggregates_only=true --benchmark_format=console \
  --benchmark_out="$out/crypto.json" --benchmark_out_format=json >"$out/crypto.log" 2>&1 ||
  { cat "$out/crypto.log"; exit 1; }

step "SQLite"
work=$(mktemp -d "${BENCH_TMPFS:-/dev/shm}/envdb-bench.XXXXXX" 2>/dev/null || mktemp -d "$root/$B/bench-tmp.XXXXXX")
disk=$(mktemp -d "$root/$B/bench-disk.XXXXXX")
trap 'rm -rf "$work" "$disk"' EXIT
sqlite_ok=1
"$B/driver_sqlite" --ext "$B/envdb.so" --work "$work" --disk "$disk" --scales "$scales" \
  --runs "$runs" --calls "${BENCH_SQLITE_CALLS:-2000}" --prov "${BENCH_PROV:-500}" \
  --files-tmpfs "${BENCH_FILES_TMPFS:-100}" --files-disk "${BENCH_FILES_DISK:-20}" \
  --rotations "$rotations" --rewrap-runs "$rewrap_runs" --bulk-at "$bulk_at" >"$out/sqlite.txt" 2>"$out/sqlite.log" ||
  { cat "$out/sqlite.log"; sqlite_ok=0; }

step "SQLite environment copy (copy_environment vs VACUUM INTO, ${BENCH_COPY_MB:-100} MB)"
mkdir -p "$work/copy" "$disk/copy"
{ echo "# Copying a sqlite-driver environment"
  echo
  echo "\`make bench\` ($(date -u +%Y-%m-%d)): \`copy_environment(source, target, 'full')\` of a ${BENCH_COPY_MB:-100} MB"
  echo "environment next to a bare \`VACUUM INTO\` of the same file, median of ${BENCH_COPY_RUNS:-3} runs (bench/copy_bench.py)."
  echo "Goal: at most 1.3x the bare \`VACUUM INTO\`."
  echo
  /usr/bin/python3 bench/copy_bench.py "$B/envdb.so" "$work/copy" "$disk/copy" "${BENCH_COPY_MB:-100}" \
    "${BENCH_COPY_RUNS:-3}"; } >bench/results/copy.md 2>"$out/copy.log" || { cat "$out/copy.log"; sqlite_ok=0; }
rm -rf "$work/copy" "$disk/copy"

if [ "$pg_ok" = 1 ]; then
  step "Postgres (pg_virtualenv)"
  # -t: the cluster lives in a temporary directory, so a concurrent
  # `make check` (also pg_virtualenv) cannot collide with it.
  # The preload, as on a server that runs envdb's worker: the resolve's
  # last_accessed_at accesses are written by the database worker.
  if ! pg_virtualenv -t -o shared_preload_libraries=envdb -o shared_buffers=512MB -o max_wal_size=4GB \
       -o checkpoint_timeout=30min \
       "$B/driver_pg" --scales "$pg_scales" --runs "$runs" --calls "${BENCH_PG_CALLS:-1000}" \
       --prov "${BENCH_PG_PROV:-300}" --rotations "$rotations" --rewrap-runs "$rewrap_runs" \
       --bulk-at "$bulk_at" \
       --crypto-rows "${BENCH_CRYPTO_ROWS:-500}" >"$out/pg.txt" 2>"$out/pg.log"; then
    tail -30 "$out/pg.log"; pg_ok=0
  fi
fi

if [ "$pg_ok" = 1 ]; then
  step "Postgres driver (pg_virtualenv, preloaded)"
  if ! pg_virtualenv -t -o shared_preload_libraries=envdb \
       /usr/bin/python3 bench/pg_driver_bench.py "${BENCH_PG_DRIVER_RUNS:-9}" "${BENCH_PG_DRIVER_MANY:-100}" \
       >"$out/pg_driver.txt" 2>"$out/pg_driver.log"; then
    tail -30 "$out/pg_driver.log"; pg_ok=0
  fi
fi

# Key rotation at scale (bench/results/scale.md): rewrap_credentials against a
# hand-written UPDATE of the same column of the same rows, at each
# BENCH_REWRAP_SCALES (environments, two credentials each; 500000 = 1M
# credentials, which takes minutes: lower it for a quick look).
rewrap_scales=${BENCH_REWRAP_SCALES:-10000,100000,500000}
step "SQLite: rewrap at scale ($rewrap_scales environments)"
"$B/driver_sqlite" --ext "$B/envdb.so" --work "$work" --only rewrap-scale \
  --rewrap-scales "$rewrap_scales" --rewrap-runs "${BENCH_REWRAP_SCALE_RUNS:-1}" \
  >"$out/scale.txt" 2>"$out/scale.log" || { cat "$out/scale.log"; sqlite_ok=0; }
if [ "$pg_ok" = 1 ]; then
  step "Postgres: rewrap at scale ($rewrap_scales environments, pg_virtualenv, preloaded)"
  if ! pg_virtualenv -t -o shared_preload_libraries=envdb -o shared_buffers=512MB -o max_wal_size=4GB \
       -o checkpoint_timeout=30min \
       "$B/driver_pg" --only rewrap-scale --rewrap-scales "$rewrap_scales" \
       --rewrap-runs "${BENCH_REWRAP_SCALE_RUNS:-1}" >"$out/scale_pg.txt" 2>"$out/scale_pg.log"; then
    tail -30 "$out/scale_pg.log"; pg_ok=0
  fi
fi
if [ "$pg_ok" = 1 ]; then
  # Its own table in bench/results/copy-pg.md (the RESULT line is kept in $out).
  step "Postgres copy_environment vs CREATE DATABASE ... TEMPLATE (pg_virtualenv, preloaded)"
  if ! pg_virtualenv -t -o shared_preload_libraries=envdb \
       /usr/bin/python3 bench/copy_pg_bench.py "${BENCH_COPY_PG_RUNS:-3}" "${BENCH_COPY_PG_ROWS:-600000}" \
       >"$out/copy_pg.txt" 2>"$out/copy_pg.log"; then
    tail -30 "$out/copy_pg.log"
  fi
fi

step "report"
elapsed=$(( $(date +%s) - start ))
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
os=$(. /etc/os-release && echo "$PRETTY_NAME")
compiler=$("$cxx" --version | head -1)
openssl_v=$(openssl version 2>/dev/null | cut -d' ' -f1-2 || echo "OpenSSL ?")
python3 bench/report.py --out bench/results/latest.md \
  --machine "$(nproc) CPUs ($cpu), $mem RAM, $os, kernel $(uname -r), $compiler, $openssl_v" \
  --load "load average at start $load_start, at end $(cut -d' ' -f1-3 /proc/loadavg)" \
  --elapsed "$elapsed" --build "$build_kind" --crypto "$out/crypto.json" --sizes "SQLite scales $scales; Postgres scales $pg_scales; $runs runs per figure; rotations ($rotations) and rewraps ($rewrap_runs calls) on a catalog of $bulk_at environments" \
  "$out/sqlite.txt" $([ -f "$out/pg.txt" ] && echo "$out/pg.txt") \
  $([ -f "$out/pg_driver.txt" ] && echo "$out/pg_driver.txt")
python3 bench/report.py --out bench/results/scale.md --title "envdb benchmarks: scale" \
  --machine "$(nproc) CPUs ($cpu), $mem RAM, $os, kernel $(uname -r), $compiler, $openssl_v" \
  --load "load average at end $(cut -d' ' -f1-3 /proc/loadavg)" --elapsed "$elapsed" \
  --build "$build_kind" --sizes "rewrap at $rewrap_scales environments (two credentials each), SQLite and Postgres; sqlite-driver provisioning as in latest.md" \
  --sections "Rotation at scale,Provisioning" "$out/scale.txt" \
  $([ -f "$out/scale_pg.txt" ] && echo "$out/scale_pg.txt") "$out/sqlite.txt" >/dev/null
echo "(written to bench/results/latest.md and bench/results/scale.md; logs in $out/)"
[ "$sqlite_ok" = 1 ] && [ "$pg_ok" = 1 ]
