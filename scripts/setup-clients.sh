#!/usr/bin/env bash
# Installs the npm packages of the Node.js client tests (test/clients/node:
# pg, better-sqlite3 12, libsql, knex) with `npm ci`, exactly as package-lock.json
# pins them, into test/clients/node/node_modules. Skipped when that install is
# already there for this lock file and this Node.js. `make check` runs it.
#
# better-sqlite3 fetches a prebuilt binary from GitHub when it can, and
# otherwise compiles its bundled SQLite with node-gyp. node-gyp needs Node's
# headers; they are taken from the local installation, so nothing is fetched
# from nodejs.org.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
dir=$root/test/clients/node

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "envdb setup: $tool is missing; the Node.js clients need Node.js 20 or later with npm" >&2; exit 1; }
done
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "envdb setup: Node.js $(node --version) is too old; better-sqlite3 12 needs 20 or later" >&2; exit 1; }

stamp=$dir/node_modules/.envdb-installed
want="node $(node --version) lock $(sha256sum "$dir/package-lock.json" | cut -c1-64)"
loads() { (cd "$dir" && node -e "require('pg'); require('better-sqlite3'); require('libsql'); require('knex')") 2>/dev/null; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && loads; then
  exit 0
fi

# Node's headers: beside the binary (official and NodeSource builds), or
# Debian's libnode-dev layout, made to look like a Node installation.
prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
if [ -f "$prefix/include/node/node.h" ]; then
  export npm_config_nodedir=$prefix
elif [ -f /usr/include/nodejs/node.h ]; then
  mkdir -p "$root/build/node-headers/include"
  ln -sfn /usr/include/nodejs "$root/build/node-headers/include/node"
  export npm_config_nodedir=$root/build/node-headers
fi

echo "envdb setup: npm ci in test/clients/node (first time: a few minutes, better-sqlite3 may compile SQLite)"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
loads || { echo "envdb setup: the installed Node.js packages do not load" >&2; exit 1; }
echo "$want" >"$stamp"
