"""The postgres driver end to end: the background worker creates and secures
each environment database (needs the server started with
shared_preload_libraries = 'envdb', as make check does).

A second server, started here on another port (as user postgres), is both a
registered database host of the first one and a control plane of its own
that is killed in the middle of a job."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import (TEST_KEY, TEST_KEY_ID, HostError, PG_BIN as BIN, Seconds, as_postgres,  # noqa: E402
                   free_port, pg_call, postgres_available, postgres_workdir)

KEYRING_COMMAND = f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'"
TIMEOUT = 60
SECOND_PASSWORD = "second-server-password"


def preloaded():
    if not postgres_available():
        return False
    import psycopg2
    with psycopg2.connect(dbname="postgres") as conn:
        cur = conn.cursor()
        cur.execute("show shared_preload_libraries")
        return "envdb" in cur.fetchone()[0]


def wait_for(what, probe, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class ControlPlane:
    """A control-plane database whose server keyring reaches the worker
    (a per-database setting: the worker reads it when it connects)."""

    def __init__(self, serial, **connect):
        import psycopg2
        self.psycopg2, self.connect_args = psycopg2, connect
        self.dbname = f"envdb_pgdriver_{os.getpid()}_{serial}"
        admin = psycopg2.connect(dbname="postgres", **connect)
        admin.autocommit = True
        cur = admin.cursor()
        cur.execute(f'DROP DATABASE IF EXISTS "{self.dbname}"')
        cur.execute(f'CREATE DATABASE "{self.dbname}"')
        cur.execute(f'ALTER DATABASE "{self.dbname}" SET envdb.keyring_command = %s', (KEYRING_COMMAND,))
        admin.close()
        self.conn = self.connect()
        self.conn.cursor().execute("CREATE EXTENSION envdb")

    def connect(self):
        conn = self.psycopg2.connect(dbname=self.dbname, **self.connect_args)
        conn.autocommit = True
        return conn

    def call(self, fn, *args, conn=None):
        return pg_call(conn or self.conn, fn, *args)

    def one(self, sql, params=()):
        cur = self.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchone()

    def environment(self, env_id):
        return self.call("get_environment", env_id)

    def wait_status(self, env_id, status, timeout=TIMEOUT):
        def probe():
            got = self.environment(env_id)["environment"]["status"]
            if got == status:
                return True
            if got == "failed" and status != "failed":
                job = self.one("select last_error from envdb.sys_provisioning_job where environment_id = %s "
                               "order by created_at desc limit 1", (env_id,))
                raise AssertionError(f"environment failed: {job[0] if job else '?'}")
            return False
        wait_for(f"environment {env_id} to be {status}", probe, timeout)

    def wait_jobs_done(self, env_id, timeout=TIMEOUT):
        def probe():
            rows = self.conn.cursor()
            rows.execute("select status, last_error from envdb.sys_provisioning_job where environment_id = %s",
                         (env_id,))
            states = rows.fetchall()
            bad = [e for s, e in states if s == "failed" and not (e or "").startswith("cancelled")]
            if bad:
                raise AssertionError(f"a job failed: {bad}")
            return all(s in ("done", "failed") for s, _ in states)
        wait_for(f"the jobs of {env_id}", probe, timeout)

    def close(self):
        self.conn.close()
        admin = self.psycopg2.connect(dbname="postgres", **self.connect_args)
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        admin.close()


class SecondServer:
    """A throwaway cluster on another port, preloaded with envdb and its
    keyring in postgresql.conf, password authentication over TCP."""

    def __init__(self):
        self.workdir = postgres_workdir("envdb-second-")
        self.datadir = os.path.join(self.workdir, "data")
        self.port = free_port()
        pwfile = os.path.join(self.workdir, "pw")
        with open(pwfile, "w") as f:
            f.write(SECOND_PASSWORD + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        init = as_postgres([f"{BIN}/initdb", "-D", self.datadir, "-U", "postgres", "--pwfile", pwfile,
                            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                            "--locale=C.UTF-8"], capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            raise RuntimeError(init.stderr + init.stdout)
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                    f"unix_socket_directories = '{self.workdir}'\nshared_buffers = 16MB\n"
                    "shared_preload_libraries = 'envdb'\n"
                    f"envdb.keyring_command = '{KEYRING_COMMAND.replace(chr(39), chr(39) * 2)}'\n")
        self.started = False
        self.start()

    def start(self):
        run = as_postgres([f"{BIN}/pg_ctl", "-D", self.datadir, "-l", os.path.join(self.workdir, "log"), "-w",
                           "-t", "60", "start"], capture_output=True, text=True, timeout=90)
        if run.returncode != 0:
            raise RuntimeError(run.stderr + run.stdout)
        self.started = True

    def kill(self):
        as_postgres([f"{BIN}/pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop"],
                    capture_output=True, timeout=60)
        self.started = False

    def connect_args(self):
        return dict(host="127.0.0.1", port=self.port, user="postgres", password=SECOND_PASSWORD)

    def stop(self):
        if self.started:
            self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


second = None


def setUpModule():
    global second
    if preloaded() and os.geteuid() == 0:
        second = SecondServer()


def tearDownModule():
    if second:
        second.stop()


def login(database_url, credential, host=None, port=None):
    import psycopg2
    dbname = database_url.rsplit("/", 1)[1]
    conn = psycopg2.connect(host=host or os.environ.get("PGHOST", "localhost"),
                            port=port or os.environ["PGPORT"], dbname=dbname,
                            user=credential["username"], password=credential["token"], connect_timeout=10)
    conn.autocommit = True
    return conn


def refused(test, database_url, credential, **kw):
    import psycopg2
    with test.assertRaises(psycopg2.OperationalError):
        login(database_url, credential, **kw).close()


@unittest.skipUnless(preloaded(), "needs a server started with shared_preload_libraries = 'envdb'")
class PostgresDriver(unittest.TestCase):
    serial = 0

    def setUp(self):
        PostgresDriver.serial += 1
        self.cp = ControlPlane(PostgresDriver.serial)
        self.org = self.call("provision_organization", f"acme{self.serial}", "Acme", None, None, "turso")
        self.org_id = self.org["organization"]["id"]

    def tearDown(self):
        self.cp.close()

    def call(self, *args, **kw):
        return self.cp.call(*args, **kw)

    def provision(self, slug, region=None):
        out = self.call("provision_environment", self.org_id, slug, None, None, region, "postgres")
        self.assertEqual(out["environment"]["status"], "provisioning")
        return out["environment"]["id"], out["database"]["id"], out["database"]["databaseName"]

    def test_provision_creates_a_secured_database_with_a_login_per_scope(self):
        started = time.time()
        env_id, db_id, dbname = self.provision("dev")
        self.cp.wait_status(env_id, "active")
        self.assertLess(time.time() - started, TIMEOUT)
        env = self.cp.environment(env_id)
        port = os.environ["PGPORT"]
        self.assertRegex(env["database"]["databaseUrl"], rf"^postgresql://[^/]+:{port}/{dbname}$")
        url = env["database"]["databaseUrl"]

        admin = self.call("resolve_environment", env_id, "admin")["credential"]
        rw = self.call("resolve_environment", env_id, "readwrite")["credential"]
        self.assertTrue(admin["username"].startswith(dbname + "_a_"))
        self.assertTrue(rw["username"].startswith(dbname + "_w_"))
        self.assertLessEqual(len(admin["username"]), 63)

        # The schema initializer ran inside, with this environment's identity.
        a = login(url, admin)
        cur = a.cursor()
        cur.execute("select environment_id, database_name from envdb.sys_environment_info")
        self.assertEqual(cur.fetchone(), (env_id, dbname))
        # admin: DDL, and the table belongs to the admin scope role.
        cur.execute("create table notes (id serial primary key, body text)")
        cur.execute("insert into notes (body) values ('from admin')")
        cur.execute("select tableowner from pg_tables where tablename = 'notes'")
        self.assertEqual(cur.fetchone()[0], f"{dbname}_admin")

        # readwrite: reads and writes a table created after it, no DDL.
        w = login(url, rw)
        cur = w.cursor()
        cur.execute("insert into notes (body) values ('from readwrite') returning id")
        cur.execute("select count(*) from notes")
        self.assertEqual(cur.fetchone()[0], 2)
        import psycopg2
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("create table nope (x int)")
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("drop table notes")

        # readonly: issued now, its login made by a create_login job.
        ro_id = self.call("issue_credential", db_id, "readonly")["credential"]["id"]
        self.cp.wait_jobs_done(env_id)
        ro = self.call("resolve_environment", env_id, "readonly")["credential"]
        self.assertEqual(ro["id"], ro_id)
        r = login(url, ro)
        cur = r.cursor()
        cur.execute("select count(*) from notes")
        self.assertEqual(cur.fetchone()[0], 2)
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("insert into notes (body) values ('no')")
        with self.assertRaises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("create table nope (x int)")

        # Server side: CONNECT is not PUBLIC's, logins expire with their credential.
        self.assertFalse(self.cp.one("select has_database_privilege('public', %s, 'CONNECT')", (dbname,))[0])
        row = self.cp.one("select rolcanlogin, rolvaliduntil is null or rolvaliduntil = 'infinity' "
                          "from pg_roles where rolname = %s", (admin["username"],))
        self.assertEqual(row, (True, True))
        for c in (a, w, r):
            c.close()

    def test_rotation_and_revocation_close_old_logins(self):
        env_id, db_id, dbname = self.provision("dev")
        self.cp.wait_status(env_id, "active")
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        old = self.call("resolve_environment", env_id, "readwrite")["credential"]
        session = login(url, old)
        session.cursor().execute("select 1")

        self.call("rotate_credential", db_id, "readwrite", Seconds(0))
        self.cp.wait_jobs_done(env_id)
        new = self.call("resolve_environment", env_id, "readwrite")["credential"]
        self.assertNotEqual(new["username"], old["username"])
        login(url, new).close()
        refused(self, url, old)
        import psycopg2
        with self.assertRaises(psycopg2.Error):  # its open session was ended
            session.cursor().execute("select 1")

        # Revocation: the login is refused and its sessions end.
        admin = self.call("resolve_environment", env_id, "admin")["credential"]
        session = login(url, admin)
        self.call("revoke_credential", admin["id"])
        self.cp.wait_jobs_done(env_id)
        refused(self, url, admin)
        with self.assertRaises(psycopg2.Error):
            session.cursor().execute("select 1")
        self.assertFalse(self.cp.one("select rolcanlogin from pg_roles where rolname = %s",
                                     (admin["username"],))[0])

        # Archiving: every login goes; the database stays.
        self.call("archive_environment", env_id, True)
        self.cp.wait_jobs_done(env_id)
        refused(self, url, new)
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0], 1)
        roles = "select count(*) from pg_roles where starts_with(rolname, %s)"
        self.assertGreaterEqual(self.cp.one(roles, (dbname + "_",))[0], 7)  # 4 roles, 3+ logins

        # Dropping it (force: no grace period): the worker drops the database,
        # its logins and its roles; the environment stays archived.
        out = self.call("drop_environment_database", env_id, True)
        self.assertEqual((out["job"]["kind"], out["job"]["status"]), ("drop_database", "pending"))
        self.assertIsNone(out["database"]["droppedAt"])
        self.cp.wait_jobs_done(env_id)
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0], 0)
        self.assertEqual(self.cp.one(roles, (dbname + "_",))[0], 0)
        env = self.cp.environment(env_id)
        self.assertEqual(env["environment"]["status"], "archived")
        self.assertIsNotNone(env["database"]["droppedAt"])
        self.assertEqual(self.call("check")["ok"], True)

    def test_a_foreign_database_fails_the_job_and_retry_resumes(self):
        import psycopg2
        # Provision inside a transaction, and create a database of that name
        # before it commits: the worker finds it there and not envdb's.
        tx = self.cp.connect()
        tx.autocommit = False
        out = self.call("provision_environment", self.org_id, "dev", None, None, None, "postgres", conn=tx)
        env_id, dbname = out["environment"]["id"], out["database"]["databaseName"]
        other = psycopg2.connect(dbname="postgres")
        other.autocommit = True
        other.cursor().execute(f'CREATE DATABASE "{dbname}"')
        tx.commit()
        tx.close()
        try:
            self.cp.wait_status(env_id, "failed")
            job = self.cp.one("select status, last_error from envdb.sys_provisioning_job "
                              "where environment_id = %s", (env_id,))
            self.assertEqual(job[0], "failed")
            self.assertIn("already exists", job[1])
            self.assertNotIn("SCRAM", job[1])
        finally:
            other.cursor().execute(f'DROP DATABASE IF EXISTS "{dbname}"')
            other.close()
        # The roles made by the first attempt are reused.
        self.assertEqual(self.cp.one("select count(*) from pg_roles where rolname = %s", (dbname + "_admin",))[0], 1)
        self.call("retry_environment", env_id)
        self.cp.wait_status(env_id, "active")
        env = self.cp.environment(env_id)
        login(env["database"]["databaseUrl"], self.call("resolve_environment", env_id, "admin")["credential"]).close()
        # Retrying an active environment's work again is harmless: a new login job.
        self.call("issue_credential", env["database"]["id"], "readonly")
        self.cp.wait_jobs_done(env_id)

    @unittest.skipUnless(os.geteuid() == 0, "the second server runs as postgres")
    def test_placement_on_a_registered_host_by_region(self):
        self.assertIsNotNone(second)
        host = self.call("add_database_host", "second", "eu", "127.0.0.1", second.port, "postgres",
                         SECOND_PASSWORD, "postgres")["host"]
        self.assertTrue(host["hasPassword"])
        self.assertNotIn("password", host)
        # The sealed password is not readable as text anywhere in the catalog.
        self.assertIsNone(self.cp.one("select 1 from envdb.sys_database_host where "
                                      "position(%s::bytea in password_cipher) > 0", (SECOND_PASSWORD,)))
        env_id, db_id, dbname = self.provision("eu-dev", region="eu")
        self.cp.wait_status(env_id, "active")
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        self.assertEqual(url, f"postgresql://127.0.0.1:{second.port}/{dbname}")
        # It lives on the second server, not on this one.
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0], 0)
        admin = self.call("resolve_environment", env_id, "admin")["credential"]
        conn = login(url, admin, host="127.0.0.1", port=second.port)
        cur = conn.cursor()
        cur.execute("select environment_id from envdb.sys_environment_info")
        self.assertEqual(cur.fetchone()[0], env_id)
        conn.close()
        hosts = self.call("list_database_hosts")
        self.assertEqual([(h["name"], h["databases"]) for h in hosts], [("second", 1)])
        with self.assertRaises(HostError) as e:
            self.call("remove_database_host", "second")
        self.assertIn("conflict", str(e.exception))
        # Another region stays on this server.
        env2, _, dbname2 = self.provision("local")
        self.cp.wait_status(env2, "active")
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname2,))[0], 1)

    @unittest.skipUnless(os.geteuid() == 0, "the second server runs as postgres")
    def test_a_server_killed_mid_job_completes_it_after_restart(self):
        self.assertIsNotNone(second)
        cp = ControlPlane(f"crash{self.serial}", **second.connect_args())
        try:
            org = cp.call("provision_organization", "crash", "Crash", None, None, "turso")["organization"]["id"]
            holder = cp.connect()
            out = cp.call("provision_environment", org, "dev", None, None, None, "postgres")
            env_id, dbname = out["environment"]["id"], out["database"]["databaseName"]
            # Hold the environment row: the worker creates the database, then
            # waits to record the result.
            holder.autocommit = False
            holder.cursor().execute("select 1 from envdb.sys_environment where id = %s for update", (env_id,))
            wait_for("the database to be created",
                     lambda: cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0] == 1)
            wait_for("the job to be running",
                     lambda: cp.one("select status from envdb.sys_provisioning_job where environment_id = %s",
                                    (env_id,))[0] == "running")
            time.sleep(0.5)
            second.kill()
            for c in (holder, cp.conn):
                try:
                    c.close()
                except Exception:
                    pass
            second.start()
            cp.conn = wait_for("the restarted server", lambda: _try_connect(cp))
            cp.wait_status(env_id, "active")
            job = cp.one("select status, attempts from envdb.sys_provisioning_job where environment_id = %s",
                         (env_id,))
            self.assertEqual(job, ("done", 2))
            admin = cp.call("resolve_environment", env_id, "admin")["credential"]
            login(cp.environment(env_id)["database"]["databaseUrl"], admin, host="127.0.0.1",
                  port=second.port).close()
        finally:
            try:
                cp.close()
            except Exception:
                pass

    def test_a_job_queued_during_a_pass_is_taken_by_the_same_worker(self):
        # The first job is held while it runs (its environment row locked: the
        # worker waits to record the result), so the second is committed in
        # the middle of a pass: that worker takes it (in its claim loop, or in
        # the pass its commit asked for), with no new worker and no tick.
        first, _, _ = self.provision("first")
        holder = self.cp.connect()
        holder.autocommit = False
        holder.cursor().execute("select 1 from envdb.sys_environment where id = %s for update", (first,))
        job = "select status, worker from envdb.sys_provisioning_job where environment_id = %s"
        try:
            running = wait_for("the first job to run",
                               lambda: (lambda r: r if r and r[0] == "running" else None)(self.cp.one(job, (first,))))
            second, _, _ = self.provision("second")
        finally:
            holder.rollback()
            holder.close()
        self.cp.wait_status(first, "active")
        self.cp.wait_status(second, "active")
        self.assertEqual(self.cp.one(job, (first,)), ("done", running[1]))
        self.assertEqual(self.cp.one(job, (second,)), ("done", running[1]))

    def worker_pids(self, dbname=None):
        cur = self.cp.conn.cursor()
        cur.execute("select pid from pg_stat_activity where backend_type = 'envdb database worker' "
                    "and datname = %s", (dbname or self.cp.dbname,))
        return [r[0] for r in cur.fetchall()]

    def test_the_worker_stays_between_passes_and_takes_the_next_job(self):
        # A new worker costs a job about 60 ms before its claim (start,
        # connection, the first read of each catalog table): between passes
        # the worker stays, and the next commit's job is claimed by the same
        # process, here after several of the launcher's 2-second periods.
        first, _, _ = self.provision("first")
        self.cp.wait_status(first, "active")
        job = "select worker from envdb.sys_provisioning_job where environment_id = %s"
        worker = self.cp.one(job, (first,))[0]
        time.sleep(5)
        self.assertEqual(self.worker_pids(), [int(worker.rsplit(" ", 1)[1])])
        second, _, _ = self.provision("second")
        self.cp.wait_status(second, "active")
        self.assertEqual(self.cp.one(job, (second,))[0], worker)

    def test_a_session_that_wants_the_control_plane_to_itself_is_not_refused_by_the_worker(self):
        # CREATE DATABASE ... TEMPLATE, ALTER DATABASE ... RENAME and DROP
        # DATABASE (no FORCE) wait up to 5 s for the database's other sessions
        # to go, then fail: the worker waiting there between passes sees the
        # lock they hold and makes way.
        env, _, _ = self.provision("dev")
        self.cp.wait_status(env, "active")
        wait_for("the worker to wait between passes", self.worker_pids)
        self.cp.conn.close()
        import psycopg2
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        cur = admin.cursor()
        name = self.cp.dbname
        try:
            cur.execute(f'CREATE DATABASE "{name}_t" TEMPLATE "{name}"')
            cur.execute(f'DROP DATABASE "{name}_t"')
            cur.execute(f'ALTER DATABASE "{name}" RENAME TO "{name}_r"')
            cur.execute(f'ALTER DATABASE "{name}_r" RENAME TO "{name}"')
            # The worker comes back for the next job, and makes way again.
            self.cp.conn = self.cp.connect()
            again, _, _ = self.provision("again")
            self.cp.wait_status(again, "active")
            wait_for("the worker to wait between passes", self.worker_pids)
            self.cp.conn.close()
            cur.execute(f'DROP DATABASE "{name}"')
            cur.execute("select count(*) from pg_database where datname = %s", (name,))
            self.assertEqual(cur.fetchone()[0], 0)
        finally:
            admin.close()

    def test_a_control_plane_beyond_the_worker_slots_gets_one(self):
        # Two database workers run at a time. With two control planes' workers
        # waiting between passes, a third control plane's job is not left
        # waiting: they make way, and each control plane's jobs still run.
        others = [ControlPlane(f"{self.serial}_{i}") for i in (2, 3)]
        try:
            planes = [self.cp] + others
            orgs = [self.org_id] + [cp.call("provision_organization", f"other{i}", "Other", None, None,
                                            "turso")["organization"]["id"] for i, cp in enumerate(others)]
            for round_ in range(2):
                for cp, org in zip(planes, orgs):
                    out = cp.call("provision_environment", org, f"r{round_}", None, None, None, "postgres")
                    cp.wait_status(out["environment"]["id"], "active")
        finally:
            for cp in others:
                cp.close()


def _try_connect(cp):
    try:
        return cp.connect()
    except Exception:
        return None


if __name__ == "__main__":
    unittest.main()
