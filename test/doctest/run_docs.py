#!/usr/bin/env python3
"""Runs the documentation: every fenced block in README.md and docs/**/*.md
that is marked runnable, in document order, against the built extensions.

A block is runnable when the line before its fence (blank lines aside) is
    <!-- doctest: sqlite -->      SQL (and dot-commands) in the sqlite3 shell
    <!-- doctest: postgres -->    SQL (and backslash commands) in psql
    <!-- doctest: shell -->       bash (set -euo pipefail), run with the SQLite part
Every other block is an illustration and is not run. A fence marked
    <!-- doctest: output -->
right after a runnable block is the output that block must print (a line
holding "..." matches any text at that place; blank lines are ignored).

Per document and host, the blocks share one session: one sqlite3 process on
one database file (and ENVDB_KEYRING, a fresh key file), or one psql process
on a fresh database with envdb's keyring set (psql -X -q -A -t: unaligned,
tuples only). Each runs in a scratch directory where ./build is the built
tree. A block fails when it prints an error or not what its output block
shows. Ends with "N passed, M failed" (one per runnable block).

  run_docs.py --host sqlite|postgres [files...]"""
import argparse
import base64
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
MARK = re.compile(r"^<!--\s*doctest:\s*([a-z-]+)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([A-Za-z0-9_+-]*)")
SENTINEL = "@@doctest-block-{}@@"
ERROR = re.compile(r"^(Parse error|Runtime error|Error:|psql:.*(ERROR|FATAL):|ERROR:|FATAL:)", re.M)
HOSTS = {"sqlite": ("sqlite", "shell"), "postgres": ("postgres",)}
KEY_ID = "doctest-key"


class Block:
    def __init__(self, path, line, kind, text):
        self.path, self.line, self.kind, self.text = path, line, kind, text
        self.expected = None

    def where(self):
        return f"{os.path.relpath(self.path, ROOT)}:{self.line}"


def parse(path):
    """The runnable blocks of one document, each with its expected output."""
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, mark, last, i = [], None, None, 0
    while i < len(lines):
        line = lines[i]
        m = MARK.match(line.strip())
        if m:
            mark = m.group(1)
            i += 1
            continue
        f = FENCE.match(line)
        if f:
            indent, fence = f.group(1), f.group(2)
            body, j = [], i + 1
            while j < len(lines) and not lines[j].strip().startswith(fence):
                body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
                j += 1
            text = "\n".join(body) + "\n"
            if mark == "output":
                if last is None:
                    raise SystemExit(f"{path}:{i + 1}: an output block follows no runnable block")
                last.expected = text
                last = None
            elif mark in ("sqlite", "postgres", "shell"):
                last = Block(path, i + 1, mark, text)
                blocks.append(last)
            elif mark is not None:
                raise SystemExit(f"{path}:{i + 1}: unknown doctest marker {mark!r}")
            else:
                last = None
            mark = None
            i = j + 1
            continue
        if line.strip():  # prose between a marker and its fence, or after a block
            mark = last = None
        i += 1
    return blocks


def matches(expected, got):
    want = [l.rstrip() for l in expected.split("\n") if l.strip()]
    have = [l.rstrip() for l in got.split("\n") if l.strip()]
    if len(want) != len(have):
        return False
    for w, h in zip(want, have):
        pattern = "^" + ".*".join(re.escape(part) for part in w.split("...")) + "$"
        if not re.match(pattern, h):
            return False
    return True


def run_session(command, blocks, script_of, cwd, env):
    """Feeds every block to one process, a sentinel after each; returns each
    block's share of the (merged, unbuffered) output."""
    script = ""
    for n, b in enumerate(blocks):
        script += script_of(b) + "\n" + sentinel_command(b.kind, n) + "\n"
    out = subprocess.run(["stdbuf", "-o0", "-e0", *command], input=script, capture_output=False,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd, env=env,
                         timeout=300).stdout
    parts = []
    for n in range(len(blocks)):
        marker = SENTINEL.format(n)
        head, sep, out = out.partition(marker + "\n")
        parts.append(head if sep else head + "\n(the session ended before this block finished)")
        if not sep:
            out = ""
    return parts


def sentinel_command(kind, n):
    return {"sqlite": ".print ", "postgres": "\\echo "}[kind] + SENTINEL.format(n)


def judge(block, output):
    if ERROR.search(output):
        return "it printed an error"
    if block.expected is not None and not matches(block.expected, output):
        return "its output differs from the output block"
    return None


def run_document(path, host, scratch, report):
    blocks = [b for b in parse(path) if b.kind in HOSTS[host]]
    if not blocks:
        return
    work = tempfile.mkdtemp(prefix="doc-", dir=scratch)
    os.chmod(work, 0o755)  # the Postgres server reads the key file in it
    os.symlink(os.path.join(ROOT, "build"), os.path.join(work, "build"))
    keyring = os.path.join(work, "keyring")
    with open(keyring, "w") as f:
        f.write(f"{KEY_ID} {base64.b64encode(os.urandom(32)).decode()}\n")
    os.chmod(keyring, 0o600)
    env = {**os.environ, "ENVDB_KEYRING": keyring, "ENVDB_ROOT": ROOT}
    if host == "sqlite":
        # The shell blocks run one by one; the SQL blocks share one sqlite3 process.
        sql = [b for b in blocks if b.kind == "sqlite"]
        outputs = dict(zip(map(id, sql), run_session(["sqlite3", "-batch", os.path.join(work, "doc.db")],
                                                     sql, lambda b: b.text, work, env))) if sql else {}
        for b in blocks:
            if b.kind == "shell":
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", b.text], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=300)
                out = r.stdout + r.stderr
                problem = f"it exited with {r.returncode}" if r.returncode else judge(b, r.stdout)
            else:
                out = outputs[id(b)]
                problem = judge(b, out)
            report(b, problem, out)
    else:
        dbname = f"envdb_doctest_{os.getpid()}_{abs(hash(path)) % 10**8}"
        admin = ["psql", "-X", "-q", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
        subprocess.run(admin + ["-c", f'DROP DATABASE IF EXISTS "{dbname}"', "-c", f'CREATE DATABASE "{dbname}"',
                                "-c", f"ALTER DATABASE \"{dbname}\" SET envdb.keyring_file = '{keyring}'"],
                       check=True, capture_output=True)
        if os.geteuid() == 0:
            shutil.chown(keyring, "postgres", "postgres")
        try:
            outs = run_session(["psql", "-X", "-q", "-A", "-t", "-d", dbname], blocks, lambda b: b.text, work, env)
            for b, out in zip(blocks, outs):
                report(b, judge(b, out), out)
        finally:
            subprocess.run(admin + ["-c", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'], capture_output=True)


def documents():
    return [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                                                recursive=True))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", choices=sorted(HOSTS), required=True)
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()
    counts = {"passed": 0, "failed": 0}

    def report(block, problem, output):
        if problem:
            counts["failed"] += 1
            print(f"FAIL {block.where()} ({block.kind}): {problem}")
            print("  --- block\n" + "".join(f"  | {l}\n" for l in block.text.rstrip().split("\n")))
            print("  --- printed\n" + "".join(f"  | {l}\n" for l in output.rstrip().split("\n")))
            if block.expected is not None:
                print("  --- expected\n" + "".join(f"  | {l}\n" for l in block.expected.rstrip().split("\n")))
        else:
            counts["passed"] += 1
            print(f"ok   {block.where()} ({block.kind})")

    scratch = tempfile.mkdtemp(prefix="envdb-doctest-")
    os.chmod(scratch, 0o755)
    try:
        for path in [os.path.abspath(f) for f in args.files] or documents():
            run_document(path, args.host, scratch, report)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{counts['passed']} passed, {counts['failed']} failed")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
