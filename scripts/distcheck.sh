#!/usr/bin/env bash
# make distcheck: the source tarball builds and works on its own. Unpacks
# envdb-<version>.tar.gz in a scratch directory, builds there (core, SQLite
# extension, static library, unit tests, Postgres scripts), runs the unit
# tests, the static-library program and the SQLite end-to-end suite against
# that build. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-2}
scratch=$(mktemp -d /tmp/envdb-distcheck-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
tarball=$(make --no-print-directory dist DISTDIR="$scratch")
tar -xzf "$tarball" -C "$scratch"
src="$scratch/$(basename "$tarball" .tar.gz)"
echo "== building $src"
cmake -S "$src" -B "$src/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DENVDB_TESTS=ON -DENVDB_SQLITE=ON >"$scratch/build.log" 2>&1
cmake --build "$src/build" -j"$jobs" >>"$scratch/build.log" 2>&1 || { tail -40 "$scratch/build.log"; exit 1; }
for f in envdb.so libenvdb_sqlite.a libenvdb_core.a pg/envdb--0.1.0--"$(sed -n 's/.*kVersion = "\(.*\)".*/\1/p' "$src/shared/core/version.hpp")".sql; do
  test -e "$src/build/$f" || { echo "distcheck: the unpacked build made no build/$f"; exit 1; }
done
echo "== unit tests and the static-library program"
(cd "$src/build" && ctest -j"$jobs" --output-on-failure) | tail -3
echo "== SQLite end-to-end"
/usr/bin/python3 "$src/test/pyrun.py" "$src/test/sqlite" | tail -1
echo "distcheck: $(basename "$tarball") builds and passes"
