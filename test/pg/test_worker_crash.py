"""The crash series of the postgres driver's worker: the database worker is
caught in the middle of each kind of work it does, then killed (kill -9, which
makes the postmaster reset every backend) or the whole server is stopped with
`pg_ctl stop -m immediate` and started again. Afterwards the server converges
on the catalog on its own and check() is clean.

The kinds of work, and where the worker is held (a superuser session holding a
table lock the worker's next statement needs; pg_blocking_pids shows the
worker waiting on that session, and its pg_stat_activity.query names the job
or the convergence pass it is in):

  create_database  in the roles step (LOCK pg_authid) or in CREATE DATABASE
                   after the roles exist (LOCK pg_database)
  create_login     issue_credential's job, creating the login (pg_authid)
  converge         the convergence pass that no job asks for: a suspension
                   or a resumption (pg_authid)
  disable_login    revoke_credential's job, disabling the login (pg_authid)
  drop_database    in DROP DATABASE (pg_database) or, the database gone, in
                   dropping its roles (pg_authid)

One round is one environment's whole life, each kind once, each step with a
crash; ENVDB_WORKER_CRASH_ROUNDS rounds per crash mode (make check-crash: 50,
so 50 crashes per kind and mode). The control plane is a throwaway cluster
started here (it is stopped and killed, so not the suite's shared server).
Every wait polls with the test's own clock and is bounded."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import PG_BIN, Seconds, as_postgres, postgres_available  # noqa: E402
from test_pg_driver import ControlPlane, SecondServer, login  # noqa: E402

ROUNDS = int(os.environ.get("ENVDB_WORKER_CRASH_ROUNDS", "2"))
CONVERGE_LIMIT = 60  # seconds from the crash until the server matches the catalog
STALL_LIMIT = 30     # seconds until the worker is seen waiting inside the work
KINDS = ("create_database", "create_login", "converge", "disable_login", "drop_database")


def enabled():
    return os.geteuid() == 0 and (postgres_available() or "ENVDB_PG_BIN" in os.environ)


def poll(what, probe, timeout):
    """probe() until it returns something true; its value. Errors of a
    server still restarting count as not yet."""
    import psycopg2
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = probe()
            if value:
                return value
        except psycopg2.Error as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                                 + (f" (last error: {last})" if last else ""))
        time.sleep(0.1)


server = None


def setUpModule():
    global server
    if enabled():
        server = SecondServer()
        # The crashes stop postgres, never the machine: fsync buys nothing here.
        with open(os.path.join(server.datadir, "postgresql.conf"), "a") as f:
            f.write("fsync = off\nfull_page_writes = off\n")
        server.kill()
        server.start()


def tearDownModule():
    if server:
        server.stop()


@unittest.skipUnless(enabled(), "starts and crashes its own cluster (make check runs it as root)")
class WorkerCrash(unittest.TestCase):
    serial = 0

    def setUp(self):
        WorkerCrash.serial += 1
        self.cp = ControlPlane(f"crash{self.serial}", **server.connect_args())
        org = self.call("provision_organization", f"crash{self.serial}", "Crash", None, None, "turso")
        self.org_id = org["organization"]["id"]
        self.timings = {k: [] for k in KINDS}
        self.outside = 0  # stalls that happened in the pass instead of the job (redone)

    def tearDown(self):
        try:
            self.cp.close()
        except Exception:
            pass

    # ---- plumbing ----------------------------------------------------------

    def call(self, *args):
        return self.cp.call(*args)

    def one(self, sql, params=()):
        return self.cp.one(sql, params)

    def rows(self, sql, params=()):
        cur = self.cp.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()

    def superuser(self, dbname="postgres"):
        import psycopg2
        conn = psycopg2.connect(dbname=dbname, **server.connect_args())
        conn.autocommit = True
        return conn

    def reconnect(self):
        def probe():
            conn = self.cp.connect()
            conn.cursor().execute("select 1")
            return conn
        self.cp.conn = poll("the server to accept connections again", probe, CONVERGE_LIMIT)

    def worker_pid(self):
        row = self.one("select pid from pg_stat_activity where backend_type = 'envdb database worker' "
                       "and datname = current_database()")
        return row[0] if row else None

    def hold(self, table):
        """A superuser transaction holding `table` in EXCLUSIVE mode: reads go
        on, the worker's next write to it waits."""
        blocker = self.superuser()
        blocker.autocommit = False
        cur = blocker.cursor()
        cur.execute(f"LOCK pg_catalog.{table} IN EXCLUSIVE MODE")
        cur.execute("select pg_backend_pid()")
        return blocker, cur.fetchone()[0]

    def stalled(self, blocker_pid, activity):
        """The database worker's pid once it waits on the blocker while its
        pg_stat_activity.query starts with `activity`; None before."""
        row = self.one("select pid, query from pg_stat_activity where backend_type = 'envdb database worker' "
                       "and datname = current_database() and wait_event_type = 'Lock' and "
                       "%s = any(pg_blocking_pids(pid))", (blocker_pid,))
        if not row:
            return None
        if not row[1].startswith(activity):
            return ("elsewhere", row[0], row[1])
        return ("inside", row[0], row[1])

    def crash(self, mode, pid):
        if mode == "kill":
            os.kill(pid, signal.SIGKILL)
            # The postmaster ends every backend (this session's too) and
            # restarts: wait for the old session to go before reconnecting.
            def gone():
                try:
                    self.cp.conn.cursor().execute("select 1")
                    return False
                except Exception:
                    return True
            poll("the crash restart to end the old sessions", gone, CONVERGE_LIMIT)
        else:
            stop = as_postgres([f"{PG_BIN}/pg_ctl", "-D", server.datadir, "-m", "immediate", "-w", "stop"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(stop.returncode, 0, stop.stderr)
            server.start()
        self.reconnect()

    def job(self, env_id, kind):
        return self.one("select id, status, worker, last_error from envdb.sys_provisioning_job where "
                        "environment_id = %s and kind = %s order by created_at desc, id desc limit 1",
                        (env_id, kind))

    def caught(self, mode, table, act, activity, job_of=None):
        """Holds `table`, runs act(), waits until the worker waits on the
        lock inside the work named by `activity` (a job: also running, in
        the catalog, under this worker), then crashes the server that way.
        Returns True when it was caught inside; False when the worker was
        stopped elsewhere (a pass that began before the job was queued):
        the crash still happened, the caller does the kind again."""
        blocker, blocker_pid = self.hold(table)
        try:
            act()
            where = poll(f"the worker to wait inside {activity}", lambda: self.stalled(blocker_pid, activity),
                         STALL_LIMIT)
            state, pid, _ = where
            if state == "inside" and job_of:
                job = self.job(*job_of())
                self.assertEqual(job[1], "running", job)
                self.assertEqual(job[2], f"envdb bgworker {pid}", job)
            started = time.monotonic()
            self.crash(mode, pid)
        finally:
            try:
                blocker.close()
            except Exception:
                pass
        self.crashed_at = started
        return state == "inside"

    # ---- what the server must look like -----------------------------------

    def mismatches(self):
        """Every way the server differs from the catalog: databases that
        should exist and do not (or the reverse), roles a drop left, logins
        whose LOGIN differs from the rule of converge.hpp."""
        out = []
        for name, dropped, status, exists, roles in self.rows(
                "select d.database_name, d.dropped_at is not null, e.status, exists (select from pg_database p "
                "where p.datname = d.database_name), (select count(*) from pg_roles r where "
                "starts_with(r.rolname, d.database_name || '_')) from envdb.sys_environment_database d join "
                "envdb.sys_environment e on e.id = d.environment_id where d.driver = 'postgres'"):
            if dropped and (exists or roles):
                out.append(f"{name}: dropped, but database {exists} / {roles} roles left")
            if not dropped and status not in ("provisioning", "failed") and not exists:
                out.append(f"{name}: {status}, database missing")
        for user, live, can in self.rows(
                "select c.username, c.status in ('active', 'rotating') and (c.expires_at is null or "
                "c.expires_at > now()) and e.status in ('active', 'provisioning'), coalesce(r.rolcanlogin, false) "
                "from envdb.sys_database_credential c join envdb.sys_environment_database d on "
                "d.id = c.database_id join envdb.sys_environment e on e.id = d.environment_id "
                "left join pg_roles r on r.rolname = c.username where d.driver = 'postgres' "
                "and d.dropped_at is null"):
            if live != can:
                out.append(f"login {user}: catalog says {'LOGIN' if live else 'NOLOGIN'}")
        return out

    def converge(self, kind, done):
        """After a crash: polls until done() and the server matches the
        catalog with no job left to do; then check() must be clean."""
        def probe():
            if not done():
                return False
            busy = self.one("select count(*) from envdb.sys_provisioning_job where status in "
                            "('pending', 'running') and driver = 'postgres'")[0]
            return busy == 0 and not self.mismatches()
        try:
            poll(f"the server to converge after a crash in {kind}", probe, CONVERGE_LIMIT)
        except AssertionError:
            jobs = self.rows("select kind, status, attempts, last_error from envdb.sys_provisioning_job "
                             "where status <> 'done'")
            raise AssertionError(f"{kind}: not converged within {CONVERGE_LIMIT} s; mismatches "
                                 f"{self.mismatches()}; unfinished jobs {jobs}") from None
        self.timings[kind].append(time.monotonic() - self.crashed_at)
        report = self.call("check")
        self.assertEqual(report, {"ok": True, "repaired": 0, "findings": []}, f"check() after {kind}")

    def failed_jobs(self):
        return self.rows("select kind, last_error from envdb.sys_provisioning_job where status = 'failed' "
                         "and coalesce(last_error, '') not like 'cancelled%%'")

    def credential(self, env_id, scope):
        return self.call("resolve_environment", env_id, scope)["credential"]

    def connects(self, url, credential):
        import psycopg2
        try:
            login(url, credential, host="127.0.0.1", port=server.port).close()
            return True
        except psycopg2.OperationalError:
            return False

    # ---- one environment's life, a crash in each kind ---------------------

    def life(self, mode, n):
        # create_database: stopped in the roles step or in CREATE DATABASE.
        table = "pg_authid" if n % 2 == 0 else "pg_database"
        made = {}

        def create():
            out = self.call("provision_environment", self.org_id, f"c{n}", None, None, None, "postgres")
            made.update(env=out["environment"]["id"], db=out["database"]["id"])
        self.assertTrue(self.caught(mode, table, create, "envdb: postgres job create_database",
                                    job_of=lambda: (made["env"], "create_database")))
        env_id, db_id = made["env"], made["db"]
        self.converge("create_database",
                      lambda: self.call("get_environment", env_id)["environment"]["status"] == "active")
        url = self.call("get_environment", env_id)["database"]["databaseUrl"]
        for scope in ("admin", "readwrite"):
            self.assertTrue(self.connects(url, self.credential(env_id, scope)), scope)

        # create_login: issue_credential's job, creating the new login.
        for _ in range(3):
            inside = self.caught(mode, "pg_authid", lambda: self.call("issue_credential", db_id, "readonly"),
                                 "envdb: postgres job create_login", job_of=lambda: (env_id, "create_login"))
            self.converge("create_login", lambda: True)
            if inside:
                break
            self.outside += 1
        else:
            self.fail("create_login: the worker was never caught inside the job")
        self.assertTrue(self.connects(url, self.credential(env_id, "readonly")))

        # converge: the pass with no job, enforcing a suspension (even
        # rounds) or a resumption (odd ones); the other direction uncrashed.
        def suspend():
            self.call("set_environment_status", env_id, "suspended")

        def resume():
            self.call("set_environment_status", env_id, "active")
        crashed, plain = (suspend, resume) if n % 2 == 0 else (resume, suspend)
        admin = self.credential(env_id, "admin")  # resolve_environment refuses a suspended one
        if crashed is resume:
            plain()
            self.converge("converge", lambda: True)
            self.timings["converge"].pop()
        self.assertTrue(self.caught(mode, "pg_authid", crashed, "envdb: converging logins"))
        self.converge("converge", lambda: True)
        if crashed is suspend:
            self.assertFalse(self.connects(url, admin))
            plain()
            poll("the resumed logins", lambda: not self.mismatches(), CONVERGE_LIMIT)
        self.assertTrue(self.connects(url, admin))

        # disable_login: revoke_credential's job, disabling the login.
        for _ in range(3):
            readonly = self.credential(env_id, "readonly")
            inside = self.caught(mode, "pg_authid", lambda: self.call("revoke_credential", readonly["id"]),
                                 "envdb: postgres job disable_login", job_of=lambda: (env_id, "disable_login"))
            self.converge("disable_login", lambda: True)
            self.assertFalse(self.connects(url, readonly))
            if inside:
                break
            self.outside += 1
            self.call("issue_credential", db_id, "readonly")
            poll("the readonly login", lambda: not self.mismatches(), CONVERGE_LIMIT)
        else:
            self.fail("disable_login: the worker was never caught inside the job")

        # drop_database: archived first (its disable_login job done), then
        # stopped in DROP DATABASE or, the database gone, dropping the roles.
        self.call("archive_environment", env_id, True)
        poll("the archive's job", lambda: not self.mismatches() and self.one(
            "select count(*) from envdb.sys_provisioning_job where status in ('pending', 'running') "
            "and environment_id = %s", (env_id,))[0] == 0, CONVERGE_LIMIT)
        table = "pg_database" if n % 2 == 0 else "pg_authid"
        self.assertTrue(self.caught(mode, table, lambda: self.call("drop_environment_database", env_id, True),
                                    "envdb: postgres job drop_database", job_of=lambda: (env_id, "drop_database")))
        self.converge("drop_database",
                      lambda: self.call("get_environment", env_id)["database"]["droppedAt"] is not None)
        self.assertEqual(self.failed_jobs(), [])

    def series(self, mode):
        started = time.monotonic()
        for n in range(ROUNDS):
            self.life(mode, n)
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{k} {len(t)} (worst {max(t):.1f} s)" for k, t in self.timings.items() if t)
        print(f"\n  {mode}: {ROUNDS} round(s) in {elapsed:.0f} s; crashes and time to converge: {summary}"
              f"; stopped outside the job and redone: {self.outside}", file=sys.stderr)
        for kind in KINDS:
            self.assertGreaterEqual(len(self.timings[kind]), ROUNDS, kind)

    def test_kill_9_of_the_worker_in_the_middle_of_each_kind_of_work(self):
        self.series("kill")

    def test_immediate_stop_in_the_middle_of_each_kind_of_work(self):
        self.series("immediate")


if __name__ == "__main__":
    unittest.main()
