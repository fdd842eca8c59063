#!/usr/bin/env bash
# Run by `make` before CMake: names every missing build dependency of the
# requested target at once and the one command that installs them, instead of
# stopping inside CMake at the first one. Exits 0 when everything is there.
#   scripts/check-deps.sh pg    what `make install` / `make pg` needs: the
#                               compilers, CMake, OpenSSL, nlohmann-json and
#                               the PostgreSQL server headers and libpq
#   scripts/check-deps.sh [all] what `make` needs: that, SQLite's headers and
#                               GoogleTest. ENVDB_TESTS=OFF / ENVDB_SQLITE=OFF
#                               (CMake flags in CMAKE_FLAGS) drop their checks.
set -uo pipefail
target=${1:-all}
case "$target" in all|pg) ;; *) echo "usage: $0 [all|pg]" >&2; exit 2 ;; esac
cxx=${CXX:-c++}
pg_config=${PG_CONFIG:-pg_config}
missing=()

for cmd in cmake "$cxx" cc make; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd (command)")
done

header() {  # header <include> <what>: compiles nothing, only preprocesses
  command -v "$cxx" >/dev/null 2>&1 || return 0
  printf '#include <%s>\n' "$1" | "$cxx" -std=c++17 -E -x c++ - ${2:+-I"$2"} >/dev/null 2>&1 ||
    missing+=("$1 (header)")
}
header openssl/evp.h
header nlohmann/json.hpp
if [ "$target" = all ]; then
  flags=" ${CMAKE_FLAGS:-} "
  tests=on sqlite=on
  case "$flags" in *ENVDB_TESTS=OFF*) tests=off ;; esac
  case "$flags" in *ENVDB_SQLITE=OFF*) sqlite=off ;; esac
  # The unit tests run on the sqlite3 store, so they need SQLite too.
  { [ $sqlite = on ] || [ $tests = on ]; } && header sqlite3.h
  [ $tests = on ] && header gtest/gtest.h
fi

if command -v "$pg_config" >/dev/null 2>&1; then
  server=$("$pg_config" --includedir-server 2>/dev/null)
  [ -f "$server/postgres.h" ] || missing+=("postgres.h (PostgreSQL server headers)")
  header libpq-fe.h "$("$pg_config" --includedir 2>/dev/null)"
else
  missing+=("$pg_config (command, PostgreSQL server headers)")
fi

[ ${#missing[@]} -eq 0 ] && exit 0
{
  echo "make: envdb cannot be built, these build dependencies are missing:"
  printf '  %s\n' "${missing[@]}"
  echo "Install them with:  make setup   (scripts/setup.sh: the Debian 12 packages; root or sudo)"
} >&2
exit 1
