#!/usr/bin/env bash
# The code's format (.clang-format) over every C and C++ file of ours: the
# files git tracks (so a moved or new file is covered without a list here),
# minus vendored code (a vendor/, third_party/ or external/ folder).
#
#   scripts/format.sh           rewrites the files that differ, in place
#   scripts/format.sh --check   changes nothing; lists each file that differs
#                               with the number of its lines clang-format would
#                               change, and exits 1 if any does
#
# Both end with "N passed, M failed" (one per file) for make check's tally.
# CLANG_FORMAT names the binary (default clang-format); the style was measured
# with clang-format 14, and another major version may format a few lines
# differently.
set -uo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format}
check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: scripts/format.sh [--check]" >&2; exit 2 ;;
esac
command -v "$clang_format" >/dev/null || { echo "format: $clang_format not found (apt-get install clang-format)"; echo "0 passed, 1 failed"; exit 1; }

mapfile -t files < <(git ls-files -- '*.c' '*.h' '*.cpp' '*.hpp' | grep -vE '(^|/)(vendor|third_party|external)/')

# One line a file that differs: "<lines clang-format would change> <file>",
# from clang-format's own dry run (a warning per change, naming file:line).
# One process at a time: it takes a second or two of CPU for the whole tree,
# and parallel runs would interleave their warnings.
report=$(printf '%s\0' "${files[@]}" | xargs -0 -r "$clang_format" --style=file --dry-run 2>&1 |
  sed -nE 's/^(.*):([0-9]+):[0-9]+: warning: .*\[-Wclang-format-violations\]$/\1 \2/p' | sort -u |
  awk '{ n[$1]++ } END { for (f in n) print n[f], f }')

differ=$(sort -k2 <<<"$report")
n_files=${#files[@]}
n_differ=$(grep -c . <<<"$differ")
lines=$(awk '{ s += $1 } END { print s + 0 }' <<<"$differ")

if [ "$check" = 1 ]; then
  if [ "$n_differ" -gt 0 ]; then
    echo "format: $n_differ of $n_files files differ from .clang-format ($lines lines); run scripts/format.sh"
    awk '{ printf "  %s (%d lines)\n", $2, $1 }' <<<"$differ"
  else
    echo "format: all $n_files files match .clang-format"
  fi
  echo "$((n_files - n_differ)) passed, $n_differ failed"
  [ "$n_differ" -eq 0 ]
else
  if [ "$n_differ" -gt 0 ]; then
    awk '{ print $2 }' <<<"$differ" | xargs -r "$clang_format" --style=file -i
    echo "format: rewrote $n_differ of $n_files files ($lines lines changed)"
  else
    echo "format: all $n_files files already match .clang-format"
  fi
  echo "$n_files passed, 0 failed"
fi
