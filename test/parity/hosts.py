"""One calling convention for both hosts, so a scenario can run against SQLite
(the built build/envdb.so, or the one ENVDB_SQLITE_EXTENSION names: see
test/sqlite/envdb_sqlite.py, whose connect() this uses) and Postgres (the installed extension, in the
pg_virtualenv cluster) and their answers can be compared. The arguments are
marshalled, and errors read, by test/envdb_calls.py (HostError, Seconds and
Request are imported from there by the suites through this module)."""
import base64
import os
import pwd
import re
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sqlite"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from envdb_calls import HostError, Raw, Request, Seconds, decode, pg_call, sqlite_call  # noqa: E402,F401
from envdb_sqlite import connect  # noqa: E402

TEST_KEY_ID = "k1"
TEST_KEY = base64.b64encode(bytes(range(32))).decode()
SECOND_KEY_ID = "k2"
SECOND_KEY = base64.b64encode(bytes(range(32, 64))).decode()

CATALOG_TABLES = ["sys_organization", "sys_environment", "sys_environment_database",
                  "sys_database_credential", "sys_environment_member", "sys_provisioning_job",
                  "sys_audit_event", "sys_config", "sys_environment_hostname",
                  "sys_environment_usage"]


class SqliteHost:
    name = "sqlite"

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = connect(os.path.join(self.dir.name, "control.db"))
        self.db.execute("select envdb_keyring_add(?, ?)", (TEST_KEY_ID, TEST_KEY))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (os.path.join(self.dir.name, "envs"),))

    def call(self, fn, *args):
        return decode(sqlite_call(self.db, fn, *args))

    def sql(self, statement, params=()):
        return self.db.execute(statement.replace("envdb.", ""), params).fetchall()

    def load_keys(self, keys, active):
        """A fresh connection whose keyring holds exactly `keys` (id -> base64)."""
        path = os.path.join(self.dir.name, "control.db")
        self.db.close()
        self.db = connect(path)
        for key_id, key in keys.items():
            self.db.execute("select envdb_keyring_add(?, ?)", (key_id, key))
        if active:
            self.db.execute("select envdb_keyring_use(?)", (active,))

    def counts(self):
        return {t: self.sql(f"select count(*) from {t}")[0][0] for t in CATALOG_TABLES}

    def close(self):
        self.db.close()
        self.dir.cleanup()


def scratch_database(dbname):
    """Creates the Postgres database `dbname` afresh (dropping one left by an
    earlier run) and returns its name."""
    import psycopg2
    admin = psycopg2.connect(dbname="postgres")
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{dbname}"')
    admin.cursor().execute(f'CREATE DATABASE "{dbname}"')
    admin.close()
    return dbname


def local_rows(dbname, sql, retry_seconds=0):
    """The rows of `sql` in database `dbname` of the local server, read as the
    superuser on a connection of its own. With retry_seconds (read-only
    queries only), a connection the server closes is tried again for that
    long: right after a kill -9 the postmaster may still be ending every
    session for its crash restart."""
    import time
    import psycopg2
    deadline = time.monotonic() + retry_seconds
    while True:
        try:
            conn = psycopg2.connect(dbname=dbname)
            conn.autocommit = True
            try:
                cur = conn.cursor()
                cur.execute(sql)
                return cur.fetchall()
            finally:
                conn.close()
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class PostgresHost:
    name = "postgres"
    _serial = 0

    def __init__(self, prefix="envdb_parity", create_extension="CREATE EXTENSION envdb", keyring=True):
        """A scratch database of its own, with `create_extension` run in it and,
        unless keyring is false, the test keyring set for the session."""
        import psycopg2
        self.psycopg2 = psycopg2
        PostgresHost._serial += 1
        self.dbname = scratch_database(f"{prefix}_{os.getpid()}_{PostgresHost._serial}")
        self.conn = psycopg2.connect(dbname=self.dbname)
        self.conn.autocommit = True
        cur = self.conn.cursor()
        cur.execute(create_extension)
        if keyring:
            cur.execute("SELECT set_config('envdb.keyring_command', %s, false)",
                        (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))

    def call(self, fn, *args):
        return decode(pg_call(self.conn, fn, *args))

    def sql(self, statement, params=()):
        cur = self.conn.cursor()
        cur.execute(statement.replace("?", "%s"), params)
        if not cur.description:
            return []
        return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in cur.fetchall()]

    def counts(self):
        return {t: self.sql(f"select count(*) from envdb.{t}")[0][0] for t in CATALOG_TABLES}

    def load_keys(self, keys, active):
        lines = "".join(f"{k} {v}\\n" for k, v in keys.items())
        self.sql("select set_config('envdb.keyring_command', %s, false)", (f"printf '{lines}'",))
        self.sql("select set_config('envdb.active_key_id', %s, false)", (active or "",))

    def close(self):
        self.conn.close()
        import psycopg2
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')
        admin.close()


def postgres_available():
    return bool(os.environ.get("PGHOST") or os.environ.get("PGPORT"))


class AcmeScenario:
    """A test mixin (with unittest.TestCase and a host_class): a fresh host
    holding acme with its default environment and a 'dev' environment, on the
    turso driver (no file, no server). Sets self.h, self.org, self.default_env,
    self.default_db, self.dev and self.dev_db."""
    host_class = None

    def setUp(self):
        self.h = self.host_class()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.org = org["organization"]["id"]
        self.default_env = org["defaultEnvironment"]["environment"]["id"]
        self.default_db = org["defaultEnvironment"]["database"]["id"]
        dev = self.h.call("provision_environment", self.org, "dev", None, None, None, "turso")
        self.dev = dev["environment"]["id"]
        self.dev_db = dev["database"]["id"]

    def tearDown(self):
        self.h.close()


# Second servers the suites start themselves (a placement target, a replica).
# The server programs of the throwaway clusters tests start themselves;
# ENVDB_PG_BIN points at another installation (a private copy with its own
# envdb, so a long run does not hold the shared one).
PG_BIN = os.environ.get("ENVDB_PG_BIN", "/usr/lib/postgresql/15/bin")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(args, **kw):
    """Runs a server program as the postgres user (initdb and pg_ctl refuse root)."""
    return subprocess.run(["runuser", "-u", "postgres", "--"] + args, **kw)


def postgres_workdir(prefix):
    """A temporary directory the postgres user owns."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    owner = pwd.getpwnam("postgres")
    os.chown(workdir, owner.pw_uid, owner.pw_gid)
    return workdir


UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")
DBNAME_RE = re.compile(r"^env-[a-z2-7]{26}$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class Normalizer:
    """Replaces what legitimately differs between runs (generated ids, names
    derived from them, timestamps, durations) with stable placeholders."""

    def __init__(self):
        self.names = {}

    def _name(self, kind, value):
        key = (kind, value)
        if key not in self.names:
            self.names[key] = f"<{kind}{sum(1 for k in self.names if k[0] == kind) + 1}>"
        return self.names[key]

    def __call__(self, value, key=None):
        if isinstance(value, dict):
            # Sorted: jsonb reorders keys, and placeholders are numbered in visiting order.
            return {k: self(value[k], k) for k in sorted(value)}
        if isinstance(value, list):
            return [self(v) for v in value]
        if key == "durationMs":
            return "<ms>"
        if isinstance(value, bool):  # SQLite's booleans are the integers 1 and 0
            return int(value)
        if isinstance(value, str):
            if UUID_RE.match(value):
                return self._name("id", value)
            if DBNAME_RE.match(value):
                return self._name("db", value)
            if TS_RE.match(value):
                return "<ts>"
            for m in re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", value):
                value = value.replace(m, self._name("id", m))
        return value
