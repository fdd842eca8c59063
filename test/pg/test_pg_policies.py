"""Policies the Postgres worker carries out on its own (needs the server started
with shared_preload_libraries = 'envdb', as make check does): a trial is
suspended at its end (its logins refused through the convergence path) and
archived after its grace, with nobody calling enforce_policies(); a database
over its storage limit refuses writes through its readwrite login and takes
them again once under.

Every timing is measured by this test's own clock while it polls."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from test_convergence import can_login  # noqa: E402
from test_pg_driver import ControlPlane, login, preloaded, wait_for  # noqa: E402


def ms_of(iso):
    import datetime
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


@unittest.skipUnless(preloaded(), "needs a server started with shared_preload_libraries = 'envdb'")
class PolicyWorker(unittest.TestCase):
    serial = 0

    def setUp(self):
        PolicyWorker.serial += 1
        self.cp = ControlPlane(f"pol{PolicyWorker.serial}")
        org = self.call("provision_organization", f"pol{self.serial}", "Pol", None, None, "turso")
        self.org_id = org["organization"]["id"]

    def tearDown(self):
        self.cp.close()

    def call(self, *args, **kw):
        return self.cp.call(*args, **kw)

    def status(self, env_id):
        return self.cp.environment(env_id)["environment"]["status"]

    def audit(self, env_id):
        cur = self.cp.conn.cursor()
        cur.execute("select action from envdb.sys_audit_event where environment_id = %s "
                    "order by occurred_at, id", (env_id,))
        return [a for (a,) in cur.fetchall()]

    def test_a_two_second_trial_is_suspended_by_the_worker_then_archived_after_its_grace(self):
        self.call("config", "trial_seconds", "2")
        self.call("config", "trial_grace_seconds", "3")
        # Created as a development environment, so the 2 s start once its
        # database exists: converting it makes it a trial ending 2 s later.
        out = self.call("provision_environment", self.org_id, "trial", None, None, None, "postgres")
        env_id = out["environment"]["id"]
        self.cp.wait_status(env_id, "active")
        self.cp.wait_jobs_done(env_id)
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        rw = self.call("resolve_environment", env_id, "readwrite")["credential"]
        self.assertTrue(can_login(url, rw))
        converted = self.call("set_environment_type", env_id, "trial")["environment"]
        end = ms_of(converted["expiresAt"])
        self.assertLess(abs(end - time.time() - 2), 1.5)
        # Nobody calls enforce_policies(): the worker's pass does it.
        wait_for("the trial suspended", lambda: self.status(env_id) == "suspended", timeout=30)
        self.assertLess(time.time() - end, 10, "suspended more than 10 s after the trial's end")
        wait_for("the suspended trial's login refused", lambda: not can_login(url, rw), timeout=20)
        wait_for("the trial archived after its grace", lambda: self.status(env_id) == "archived", timeout=30)
        self.assertGreaterEqual(time.time() - end, 3)
        self.assertLess(time.time() - end, 3 + 10)
        actions = self.audit(env_id)
        self.assertIn("environment.trial_expire", actions)
        self.assertLess(actions.index("environment.trial_expire"), actions.index("environment.archive"))

    def test_over_its_limit_the_readwrite_login_refuses_writes_and_takes_them_again_once_under(self):
        import psycopg2
        out = self.call("provision_environment", self.org_id, "metered", None, None, None, "postgres")
        env_id = out["environment"]["id"]
        self.cp.wait_status(env_id, "active")
        self.cp.wait_jobs_done(env_id)
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        admin = self.call("resolve_environment", env_id, "admin")["credential"]
        rw = self.call("resolve_environment", env_id, "readwrite")["credential"]
        conn = login(url, admin)
        conn.autocommit = True
        conn.cursor().execute("create table t (id serial primary key, v text)")
        conn.close()

        def writes():
            try:
                c = login(url, rw)
                c.autocommit = True
                c.cursor().execute("insert into t (v) values ('x')")
                c.close()
                return True
            except psycopg2.errors.InsufficientPrivilege:
                return False

        wait_for("the readwrite login writes", writes)
        measured = self.call("measure_environment_usage", env_id)["database"]
        self.assertGreater(measured["usageBytes"], 1024 * 1024)  # an empty database is several MB
        self.assertFalse(measured["storageReadOnly"])
        started = time.monotonic()
        limited = self.call("set_storage_limit", env_id, 1)["database"]
        self.assertTrue(limited["storageReadOnly"])
        wait_for("the readwrite login refused writes", lambda: not writes(), timeout=20)
        self.assertLess(time.monotonic() - started, 10)
        # Reading still works.
        c = login(url, rw)
        cur = c.cursor()
        cur.execute("select count(*) from t")
        self.assertGreaterEqual(cur.fetchone()[0], 1)
        c.close()
        started = time.monotonic()
        self.assertFalse(self.call("set_storage_limit", env_id, 100000)["database"]["storageReadOnly"])
        wait_for("the readwrite login writing again", writes, timeout=20)
        self.assertLess(time.monotonic() - started, 10)
        actions = self.audit(env_id)
        self.assertIn("database.storage_read_only", actions)
        self.assertIn("database.storage_writable", actions)
        self.assertGreaterEqual(self.cp.one("select count(*) from envdb.sys_environment_usage where "
                                            "environment_id = %s", (env_id,))[0], 1)


if __name__ == "__main__":
    unittest.main()
