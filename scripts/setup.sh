#!/usr/bin/env bash
# Installs the Debian packages envdb's build and tests need, when missing, so
# that on a fresh Debian 12 machine `make check` / `make demo` are the whole
# set-up. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libssl-dev libsqlite3-dev sqlite3 nlohmann-json3-dev libpq-dev
  libgtest-dev libbenchmark-dev
  clang libclang-rt-14-dev
  clang-format clang-tidy                     # scripts/format.sh, scripts/tidy.sh
  postgresql-15 postgresql-server-dev-15 postgresql-common postgresql-contrib
  python3 python3-psycopg2
  sqitch libdbd-pg-perl libdbd-sqlite3-perl
  pgbouncer                                   # test/pg/test_pgbouncer.py
  debhelper postgresql-server-dev-all dpkg-dev  # debian/ (test/packaging/test_debian.py)
  libpq-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "envdb setup: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "envdb setup: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
