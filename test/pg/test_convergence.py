"""Convergence of the postgres driver: the background worker makes every login
on the server obey the catalog on time, whatever happens in between (needs the
server started with shared_preload_libraries = 'envdb', as make check does).

Every timing is measured by this test's own clock while it polls the server;
no sleep stands in for an assertion."""
import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import Seconds  # noqa: E402
from test_pg_driver import (SECOND_PASSWORD, ControlPlane, SecondServer, login, preloaded,  # noqa: E402
                            wait_for)

# kill -9 of the database worker in the middle of a job, this many times
# (make check keeps it modest; raise it for a longer soak).
KILLS = int(os.environ.get("ENVDB_CONVERGE_KILLS", "10"))


def can_login(url, credential):
    import psycopg2
    try:
        login(url, credential).close()
        return True
    except psycopg2.OperationalError:
        return False


def session_ended(conn):
    import psycopg2
    try:
        conn.cursor().execute("select 1")
        return False
    except psycopg2.Error:
        return True


def elapsed_until(what, probe, limit):
    """Polls probe until it holds; returns the seconds it took (fails past
    limit + a margin, so the assertion reports the real figure)."""
    started = time.monotonic()
    wait_for(what, probe, timeout=limit + 20)
    return time.monotonic() - started


@unittest.skipUnless(preloaded(), "needs a server started with shared_preload_libraries = 'envdb'")
class Convergence(unittest.TestCase):
    serial = 0

    def setUp(self):
        Convergence.serial += 1
        self.cp = ControlPlane(f"conv{Convergence.serial}")
        org = self.call("provision_organization", f"conv{self.serial}", "Conv", None, None, "turso")
        self.org_id = org["organization"]["id"]

    def tearDown(self):
        self.cp.close()

    def call(self, *args, **kw):
        return self.cp.call(*args, **kw)

    def provision(self, slug):
        out = self.call("provision_environment", self.org_id, slug, None, None, None, "postgres")
        env_id = out["environment"]["id"]
        self.cp.wait_status(env_id, "active")
        self.cp.wait_jobs_done(env_id)
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        return env_id, out["database"]["id"], out["database"]["databaseName"], url

    def credential(self, env_id, scope):
        return self.call("resolve_environment", env_id, scope)["credential"]

    def expire_calls(self):
        return self.cp.one("select count(*) from envdb.sys_audit_event where action = 'credential.expire'")[0]

    def test_revoke_refuses_the_login_and_ends_its_session_within_10_s(self):
        env_id, _, _, url = self.provision("dev")
        admin = self.credential(env_id, "admin")
        session = login(url, admin)
        self.call("revoke_credential", admin["id"])
        took = elapsed_until("the revoked login to be refused and its session ended",
                             lambda: session_ended(session) and not can_login(url, admin), 10)
        self.assertLess(took, 10)

    def test_a_rotation_grace_ends_on_its_own(self):
        env_id, db_id, _, url = self.provision("dev")
        old = self.credential(env_id, "readwrite")
        session = login(url, old)
        before = self.expire_calls()
        self.call("rotate_credential", db_id, "readwrite", Seconds(3))
        started = time.monotonic()
        new = self.credential(env_id, "readwrite")
        wait_for("the new login", lambda: can_login(url, new))
        self.assertFalse(session_ended(session))  # within the grace the old one still works
        status = "select status from envdb.sys_database_credential where id = %s"
        # Nobody calls expire_credentials(): the worker revokes it (with its
        # audit event), refuses the login and ends its session.
        wait_for("the old credential revoked, its login refused and its session ended",
                 lambda: self.cp.one(status, (old["id"],))[0] == "revoked" and session_ended(session)
                 and not can_login(url, old), timeout=40)
        took = time.monotonic() - started
        self.assertLess(took, 3 + 10)
        self.assertEqual(self.expire_calls(), before + 1)
        self.assertTrue(can_login(url, new))

    def test_suspend_disables_every_login_and_resume_enables_the_valid_ones(self):
        env_id, db_id, _, url = self.provision("dev")
        admin, rw = self.credential(env_id, "admin"), self.credential(env_id, "readwrite")
        ro = self.call("issue_credential", db_id, "readonly")["credential"]
        wait_for("the readonly login", lambda: can_login(url, self.credential(env_id, "readonly")))
        ro = self.credential(env_id, "readonly")
        sessions = [login(url, c) for c in (admin, rw, ro)]
        self.call("set_environment_status", env_id, "suspended")
        took = elapsed_until("every login of the suspended environment to be refused",
                             lambda: all(map(session_ended, sessions))
                             and not any(can_login(url, c) for c in (admin, rw, ro)), 10)
        self.assertLess(took, 10)
        # Revoked while suspended: stays refused after the resume.
        self.call("revoke_credential", ro["id"])
        self.call("set_environment_status", env_id, "active")
        took = elapsed_until("the still-valid logins to connect again",
                             lambda: can_login(url, admin) and can_login(url, rw), 10)
        self.assertLess(took, 10)
        self.assertFalse(can_login(url, ro))

    def test_a_revoke_during_a_stalled_create_database_wins(self):
        import psycopg2
        blocker = psycopg2.connect(dbname="postgres")
        blocker.autocommit = False
        try:
            # The worker cannot create a role while this is held.
            blocker.cursor().execute("LOCK pg_catalog.pg_authid IN EXCLUSIVE MODE")
            out = self.call("provision_environment", self.org_id, "dev", None, None, None, "postgres")
            env_id, dbname = out["environment"]["id"], out["database"]["databaseName"]
            wait_for("the worker to be stalled on the job",
                     lambda: self.cp.one("select count(*) from pg_stat_activity where backend_type = "
                                         "'envdb database worker' and wait_event_type = 'Lock'")[0] > 0)
            self.assertEqual(self.cp.environment(env_id)["environment"]["status"], "provisioning")
            admin_id = self.cp.one("select c.id from envdb.sys_database_credential c join "
                                   "envdb.sys_environment_database d on d.id = c.database_id where "
                                   "d.environment_id = %s and c.scope = 'admin'", (env_id,))[0]
            self.call("revoke_credential", admin_id)
        finally:
            blocker.rollback()
            blocker.close()
        released = time.monotonic()
        self.cp.wait_status(env_id, "active")
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        admin = {"username": self.cp.one("select username from envdb.sys_database_credential where id = %s",
                                         (admin_id,))[0], "token": "whatever"}
        role = "select rolcanlogin from pg_roles where rolname = %s"

        def admin_cannot_log_in():
            row = self.cp.one(role, (admin["username"],))
            return row is None or row[0] is False
        wait_for("the revoked admin login to be unable to log in", admin_cannot_log_in, timeout=30)
        self.assertLess(time.monotonic() - released, 15)
        # The live one works; the revoked one stays off on later passes.
        self.assertTrue(can_login(url, self.credential(env_id, "readwrite")))
        self.assertTrue(admin_cannot_log_in())
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0], 1)

    def test_a_reader_holding_advisory_locks_cannot_block_the_worker(self):
        import psycopg2
        env_id, _, _, url = self.provision("dev")
        # A second environment whose job fails (a database of its name exists
        # already), so its job id is known before it is queued again.
        tx = self.cp.connect()
        tx.autocommit = False
        out = self.call("provision_environment", self.org_id, "blocked", None, None, None, "postgres", conn=tx)
        env2, dbname2 = out["environment"]["id"], out["database"]["databaseName"]
        other = psycopg2.connect(dbname="postgres")
        other.autocommit = True
        other.cursor().execute(f'CREATE DATABASE "{dbname2}"')
        tx.commit()
        tx.close()
        self.cp.wait_status(env2, "failed")
        other.cursor().execute(f'DROP DATABASE "{dbname2}"')
        other.close()

        self.cp.one("do $$ begin if not exists (select from pg_roles where rolname = 'conv_reader') then "
                    "create role conv_reader nologin in role envdb_reader; end if; end $$; select 1")
        attacker = self.cp.connect()
        cur = attacker.cursor()
        cur.execute("set role conv_reader")
        # Every key it could derive from what it can see: each job id, in
        # every advisory-lock form (the old worker's class, 32- and 64-bit).
        c2 = self.cp.conn.cursor()
        c2.execute("select id from envdb.sys_provisioning_job")
        ids = [r[0] for r in c2.fetchall()]
        for job_id in ids:
            cur.execute("select pg_advisory_lock(1701737060, hashtext(%s)), pg_advisory_lock(hashtext(%s)::bigint), "
                        "pg_advisory_lock(0, hashtext(%s))", (job_id, job_id, job_id))
        try:
            started = time.monotonic()
            self.call("retry_environment", env2)
            admin = self.credential(env_id, "admin")
            session = login(url, admin)
            self.call("revoke_credential", admin["id"])
            wait_for("the revoked login to be refused", lambda: session_ended(session)
                     and not can_login(url, admin), timeout=30)
            self.cp.wait_status(env2, "active", timeout=30)
            self.assertLess(time.monotonic() - started, 15)
        finally:
            attacker.close()

    def test_a_drop_finishes_when_a_login_owns_a_large_object_in_postgres(self):
        env_id, _, dbname, url = self.provision("dev")
        admin = self.credential(env_id, "admin")
        elsewhere = login(url.rsplit("/", 1)[0] + "/postgres", admin)
        cur = elsewhere.cursor()
        cur.execute("select lo_create(0)")
        oid = cur.fetchone()[0]
        elsewhere.close()
        self.call("archive_environment", env_id, True)
        self.call("drop_environment_database", env_id, True)
        self.cp.wait_jobs_done(env_id)
        env = self.cp.environment(env_id)
        self.assertIsNotNone(env["database"]["droppedAt"])
        self.assertEqual(self.cp.one("select count(*) from pg_database where datname = %s", (dbname,))[0], 0)
        self.assertEqual(self.cp.one("select count(*) from pg_roles where starts_with(rolname, %s)",
                                     (dbname + "_",))[0], 0)
        import psycopg2
        with psycopg2.connect(dbname="postgres") as pg:
            c = pg.cursor()
            c.execute("select count(*) from pg_largeobject_metadata where oid = %s", (oid,))
            self.assertEqual(c.fetchone()[0], 0)
        self.assertTrue(self.call("check")["ok"])

    @unittest.skipUnless(os.geteuid() == 0, "signals the server's worker process")
    def test_kill_9_of_the_worker_mid_job_converges(self):
        """KILLS times: start a job (create, rotate, revoke, suspend/resume),
        kill -9 the database worker while it runs; afterwards every job is
        done, every login matches the catalog and check() is clean."""
        kinds = ["create", "rotate", "revoke", "suspend"]
        envs = []
        killed = 0
        for i in range(KILLS):
            kind = kinds[i % len(kinds)] if envs else "create"
            if kind == "create":
                out = self.call("provision_environment", self.org_id, f"k{i}", None, None, None, "postgres")
                envs.append((out["environment"]["id"], out["database"]["id"]))
            else:
                env_id, db_id = envs[i % len(envs)]
                status = self.cp.environment(env_id)["environment"]["status"]
                if status == "suspended":
                    self.call("set_environment_status", env_id, "active")
                elif status != "active":
                    pass  # still being created: the next kill hits that job
                elif kind == "rotate":
                    self.call("rotate_credential", db_id, "readwrite", Seconds(1))
                elif kind == "revoke":
                    self.call("issue_credential", db_id, "readonly")
                    ro = self.cp.one("select id from envdb.sys_database_credential where database_id = %s and "
                                     "scope = 'readonly' and status = 'active'", (db_id,))[0]
                    self.call("revoke_credential", ro)
                else:
                    self.call("set_environment_status", env_id, "suspended")
            pid = None
            deadline = time.monotonic() + 5
            while pid is None and time.monotonic() < deadline:
                row = self.cp.one("select pid from pg_stat_activity where backend_type = 'envdb database worker' "
                                  "and datname = current_database()")
                pid = row[0] if row else None
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
                self.cp.conn = wait_for("the server after the crash", self._reconnect, timeout=60)
        self.assertGreater(killed, 0)
        for env_id, _ in envs:
            if self.cp.environment(env_id)["environment"]["status"] == "suspended":
                self.call("set_environment_status", env_id, "active")
        for env_id, _ in envs:
            self.cp.wait_status(env_id, "active", timeout=90)
            self.cp.wait_jobs_done(env_id, timeout=90)

        def converged():
            # Every login as the catalog says (the rule of converge.hpp).
            cur = self.cp.conn.cursor()
            cur.execute("select c.username, c.status in ('active', 'rotating') and (c.expires_at is null or "
                        "c.expires_at > now()) and e.status = 'active', coalesce(r.rolcanlogin, false) "
                        "from envdb.sys_database_credential c join envdb.sys_environment_database d on "
                        "d.id = c.database_id join envdb.sys_environment e on e.id = d.environment_id "
                        "left join pg_roles r on r.rolname = c.username where d.driver = 'postgres' "
                        "and d.dropped_at is null")
            return all(live == can for _, live, can in cur.fetchall())
        wait_for("every login to match the catalog", converged, timeout=30)
        self.assertTrue(self.call("check")["ok"])

    def _reconnect(self):
        try:
            conn = self.cp.connect()
            conn.cursor().execute("select 1")
            return conn
        except Exception:
            return None


@unittest.skipUnless(preloaded() and os.geteuid() == 0, "a second server, run as postgres")
class RegisteredHostIsolation(unittest.TestCase):
    def test_environment_logins_connect_only_to_their_own_database_on_a_registered_host(self):
        import psycopg2
        server = SecondServer()
        cp = None
        try:
            with psycopg2.connect(dbname="postgres", **server.connect_args()) as pg:
                pg.cursor().execute("CREATE ROLE conv_app LOGIN PASSWORD 'conv-app-pw'")
            cp = ControlPlane("isolation")
            org = cp.call("provision_organization", "iso", "Iso", None, None, "turso")["organization"]["id"]
            cp.call("add_database_host", "second", "eu", "127.0.0.1", server.port, "postgres", SECOND_PASSWORD,
                    "postgres")
            out = cp.call("provision_environment", org, "eu-dev", None, None, "eu", "postgres")
            env_id = out["environment"]["id"]
            cp.wait_status(env_id, "active")
            url = cp.environment(env_id)["database"]["databaseUrl"]
            admin = cp.call("resolve_environment", env_id, "admin")["credential"]
            where = dict(host="127.0.0.1", port=server.port)
            login(url, admin, **where).close()
            for other in ("postgres", "template1"):
                with self.assertRaisesRegex(psycopg2.OperationalError, "permission denied for database"):
                    login(url.rsplit("/", 1)[0] + "/" + other, admin, **where)
            # A role that could connect before still can.
            psycopg2.connect(dbname="postgres", user="conv_app", password="conv-app-pw", **where).close()
        finally:
            if cp:
                cp.close()
            server.stop()


if __name__ == "__main__":
    unittest.main()
