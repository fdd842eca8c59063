"""pgbouncer (the Debian package, started here on a free loopback port) in
front of envdb, as docs/guides/pgbouncer.md sets it up:

- the control plane in transaction pooling: the router pattern
  (set_active_environment + resolve_environment in one transaction) keeps its
  context to that transaction, even when the next client gets the same
  server connection;
- environment databases with auth_query = envdb.login_verifier($1), run by an
  auth_user that is no superuser (a member of envdb_auth only): an
  environment's login authenticates; a superuser, an unrelated role and
  another environment's login get no verifier, so pgbouncer refuses them;
- a revoked login: new connections are refused at once, an open client gets
  an error (after query_wait_timeout at most)."""
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import as_postgres, free_port, postgres_workdir  # noqa: E402
from test_pg_driver import ControlPlane, preloaded  # noqa: E402

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
AUTH_PASSWORD = "auth-user-password"
ROUTER_PASSWORD = "router-password"
QUERY_WAIT = 4
AUTH_QUERY = "SELECT $1::text AS usename, v AS passwd FROM envdb.login_verifier($1) AS v WHERE v IS NOT NULL"


def superuser_sql(sql, params=(), dbname="postgres"):
    import psycopg2
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall() if cur.description else None
    finally:
        conn.close()


@unittest.skipUnless(preloaded() and os.path.exists(PGBOUNCER),
                     "needs pgbouncer and a server started with shared_preload_libraries = 'envdb'")
class PgBouncer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        pid = os.getpid()
        cls.auth_user, cls.router = f"pgb_auth_{pid}", f"pgb_router_{pid}"
        cls.cp = ControlPlane(f"pgb{pid}")
        superuser_sql(f'CREATE ROLE "{cls.router}" LOGIN PASSWORD %s IN ROLE envdb_router', (ROUTER_PASSWORD,))
        org = cls.cp.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        cls.envs = {}
        for slug in ("dev", "qa"):
            out = cls.cp.call("provision_environment", org, slug, None, None, None, "postgres")
            cls.envs[slug] = (out["environment"]["id"], out["database"]["id"], out["database"]["databaseName"])
        for env_id, _, _ in cls.envs.values():
            cls.cp.wait_status(env_id, "active")
        # envdb_auth exists once envdb_data was installed somewhere on the server (here: by the worker).
        superuser_sql(f'CREATE ROLE "{cls.auth_user}" LOGIN PASSWORD %s IN ROLE envdb_auth', (AUTH_PASSWORD,))
        cls.start_pgbouncer()

    @classmethod
    def start_pgbouncer(cls):
        cls.workdir = postgres_workdir("envdb-pgbouncer-")
        cls.port = free_port()
        host, port = os.environ.get("PGHOST", "localhost"), os.environ["PGPORT"]
        if host.startswith("/"):
            host = "localhost"
        router_verifier = superuser_sql("select rolpassword from pg_authid where rolname = %s", (cls.router,))[0][0]
        with open(os.path.join(cls.workdir, "userlist.txt"), "w") as f:
            f.write(f'"{cls.auth_user}" "{AUTH_PASSWORD}"\n"{cls.router}" "{router_verifier}"\n')
        with open(os.path.join(cls.workdir, "pgbouncer.ini"), "w") as f:
            f.write(f"""[databases]
control = host={host} port={port} dbname={cls.cp.dbname}
* = host={host} port={port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {cls.port}
unix_socket_dir =
pidfile = {cls.workdir}/pgbouncer.pid
logfile = {cls.workdir}/pgbouncer.log
auth_type = scram-sha-256
auth_file = {cls.workdir}/userlist.txt
auth_user = {cls.auth_user}
auth_query = {AUTH_QUERY}
pool_mode = transaction
default_pool_size = 1
query_wait_timeout = {QUERY_WAIT}
server_login_retry = 1
""")
        for name in os.listdir(cls.workdir):
            shutil.chown(os.path.join(cls.workdir, name), "postgres", "postgres")
        cls.proc = subprocess.Popen(["runuser", "-u", "postgres", "--", PGBOUNCER,
                                     os.path.join(cls.workdir, "pgbouncer.ini")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 15
        import socket
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", cls.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError("pgbouncer did not start: " + cls.log())

    @classmethod
    def log(cls):
        try:
            return open(os.path.join(cls.workdir, "pgbouncer.log")).read()[-3000:]
        except OSError:
            return ""

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "proc", None):
            cls.proc.send_signal(signal.SIGINT)
            try:
                cls.proc.wait(10)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
            shutil.rmtree(cls.workdir, ignore_errors=True)
        cls.cp.close()
        for role in (cls.auth_user, cls.router):
            superuser_sql(f'DROP ROLE IF EXISTS "{role}"')

    def through(self, dbname, user, password):
        import psycopg2
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=dbname, user=user, password=password,
                                connect_timeout=10)
        conn.autocommit = True
        return conn

    def credential(self, slug, scope):
        return self.cp.call("resolve_environment", self.envs[slug][0], scope)["credential"]

    def test_the_auth_user_is_no_superuser_and_reads_no_catalog_of_passwords(self):
        row = superuser_sql("select rolsuper, rolcreaterole, rolbypassrls from pg_roles where rolname = %s",
                            (self.auth_user,))
        self.assertEqual(row, [(False, False, False)])
        import psycopg2
        conn = psycopg2.connect(dbname=self.envs["dev"][2], user=self.auth_user, password=AUTH_PASSWORD,
                                host="127.0.0.1", port=os.environ["PGPORT"])
        try:
            with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
                conn.cursor().execute("select rolpassword from pg_authid")
        finally:
            conn.close()

    def test_an_environment_login_authenticates_through_pgbouncer(self):
        dbname = self.envs["dev"][2]
        admin = self.credential("dev", "admin")
        conn = self.through(dbname, admin["username"], admin["token"])
        cur = conn.cursor()
        cur.execute("select current_database(), session_user, current_user")
        self.assertEqual(cur.fetchone(), (dbname, admin["username"], f"{dbname}_admin"))
        cur.execute("create table if not exists notes (body text)")
        cur.execute("select envdb.environment_schema_version()")  # granted to the environment's logins
        self.assertEqual(cur.fetchone()[0], 1)
        conn.close()
        # A wrong token is refused.
        import psycopg2
        with self.assertRaises(psycopg2.OperationalError):
            self.through(dbname, admin["username"], admin["token"] + "x").close()

    def test_the_lookup_answers_only_this_databases_envdb_logins(self):
        dbname = self.envs["dev"][2]
        own = self.credential("dev", "readwrite")["username"]
        other = self.credential("qa", "readwrite")["username"]
        import psycopg2
        conn = psycopg2.connect(dbname=dbname, user=self.auth_user, password=AUTH_PASSWORD,
                                host="127.0.0.1", port=os.environ["PGPORT"])
        conn.autocommit = True
        cur = conn.cursor()

        def lookup(login):
            cur.execute("select envdb.login_verifier(%s)", (login,))
            return cur.fetchone()[0]
        self.assertTrue(lookup(own).startswith("SCRAM-SHA-256$"))
        for refused in ("postgres", os.environ.get("PGUSER", "postgres"), self.router, self.auth_user, other,
                        f"{dbname}_admin", "no_such_role"):
            self.assertIsNone(lookup(refused), refused)
        # A role that borrows the name pattern but is not made by envdb (no scope role) gets nothing.
        fake = f"{dbname}_w_{'a' * 26}"
        superuser_sql(f'CREATE ROLE "{fake}" LOGIN PASSWORD %s', ("pw",))
        try:
            self.assertIsNone(lookup(fake))
        finally:
            superuser_sql(f'DROP ROLE "{fake}"')
        conn.close()
        # Only envdb_auth may run the lookup: the environment's own login may not.
        rw = self.credential("dev", "readwrite")
        direct = psycopg2.connect(dbname=dbname, user=rw["username"], password=rw["token"],
                                  host="127.0.0.1", port=os.environ["PGPORT"])
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
            direct.cursor().execute("select envdb.login_verifier(%s)", (own,))
        direct.close()
        # Through pgbouncer, a superuser or another environment's login cannot get into this database.
        with self.assertRaises(psycopg2.OperationalError):
            self.through(dbname, "postgres", os.environ.get("PGPASSWORD", "x")).close()
        qa = self.credential("qa", "readwrite")
        with self.assertRaises(psycopg2.OperationalError):
            self.through(dbname, qa["username"], qa["token"]).close()

    def test_router_pattern_in_transaction_pooling(self):
        env_id = self.envs["dev"][0]
        a = self.through("control", self.router, ROUTER_PASSWORD)
        b = self.through("control", self.router, ROUTER_PASSWORD)
        a.autocommit = False
        cur = a.cursor()
        cur.execute("select envdb.set_active_environment(%s)", (env_id,))
        cur.execute("select envdb.resolve_environment(envdb.current_environment_id(), 'readwrite'), "
                    "pg_backend_pid()")
        route, pid_a = cur.fetchone()
        self.assertEqual((route["environmentId"], route["status"]), (env_id, "active"))
        a.commit()
        # The pool has one server connection: b gets the same backend, without a's context.
        cur = b.cursor()
        cur.execute("select envdb.current_environment_id(), pg_backend_pid()")
        self.assertEqual(cur.fetchone(), (None, pid_a))
        a.close()
        b.close()

    def test_a_revoked_login_is_refused_and_its_open_client_gets_an_error(self):
        import psycopg2
        env_id, db_id, dbname = self.envs["qa"]
        cred = self.credential("qa", "admin")
        conn = self.through(dbname, cred["username"], cred["token"])
        conn.cursor().execute("select 1")
        self.cp.call("revoke_credential", cred["id"])
        self.cp.wait_jobs_done(env_id)
        started = time.time()
        with self.assertRaises(psycopg2.OperationalError) as refused:
            self.through(dbname, cred["username"], cred["token"]).close()
        self.assertLess(time.time() - started, 3, "a new connection waits instead of being refused")
        started = time.time()
        with self.assertRaises(psycopg2.Error) as ended:
            conn.cursor().execute("select 1")
        waited = time.time() - started
        self.assertLess(waited, QUERY_WAIT + 5)
        print(f"\n  [pgbouncer] revoked login: a new connection: {str(refused.exception).strip()!r}; "
              f"the open client after {waited:.1f} s: {str(ended.exception).strip()!r}", flush=True)
        conn.close()


if __name__ == "__main__":
    unittest.main()
