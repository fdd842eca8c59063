"""Helpers for the SQLite end-to-end suites: connections that load the built
extension (build/envdb.so, or the one ENVDB_SQLITE_EXTENSION names, e.g. the
ASan build's build-asan/envdb.so), and the documented function list."""
import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from envdb_calls import sqlite_statement  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# SQLite adds .so itself; the file name must stay envdb (entry point sqlite3_envdb_init).
EXTENSION = os.environ.get("ENVDB_SQLITE_EXTENSION") or os.path.join(ROOT, "build", "envdb")
REFERENCE = os.path.join(ROOT, "docs", "reference.md")


def connect(path=":memory:", init=True):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(EXTENSION)
    db.enable_load_extension(False)
    if init:
        db.execute("select envdb_init()")
    return db


def call(db, name, *args):
    """envdb_<name>(args) marshalled as test/envdb_calls.py does; SQLite's own
    exception on an error (the suites here assert on it)."""
    sql, values = sqlite_statement(name, args)
    return db.execute(sql, values).fetchone()[0]


def call_json(db, name, *args):
    return json.loads(call(db, name, *args))


def documented_functions():
    """Function names in docs/reference.md's tables, with where they live:
    "both" (extension envdb and SQLite), "data" (extension envdb_data and SQLite), "sqlite",
    "postgres-data" (extension envdb_data only)."""
    found = {}
    for line in open(REFERENCE, encoding="utf-8"):
        m = re.match(r"^\| `([a-z_]+)\(.*?\)`\s*\|(.*)", line)
        if m:
            notes = m.group(2)
            hosts = ("sqlite" if "SQLite only" in notes else "postgres-data" if "envdb_data in Postgres only" in notes
                     else "data" if "envdb_data in Postgres" in notes else "both")
            found[m.group(1)] = hosts
    return found
