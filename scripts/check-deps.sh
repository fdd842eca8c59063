#!/usr/bin/env bash
# Run by `make` before CMake: names every missing build dependency at once and
# the one command that installs them, instead of stopping inside CMake at the
# first one. Exits 0 when everything is there. ENVDB_TESTS=OFF (a CMake flag
# in CMAKE_FLAGS) drops the GoogleTest check.
set -uo pipefail
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
header sqlite3.h
header nlohmann/json.hpp
case " ${CMAKE_FLAGS:-} " in *ENVDB_TESTS=OFF*) ;; *) header gtest/gtest.h ;; esac

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
