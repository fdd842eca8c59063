"""check([repair]) looks at the real servers: a revoked credential's login that a superuser enabled
again behind envdb's back is found on the local server and on a registered host (a second cluster
started here), check(true) disables both with an audit event each, and an unreachable host is
reported, not taken for clean. Needs shared_preload_libraries = 'envdb' (the worker creates the
databases) and root (the second cluster runs as postgres)."""
import json
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import free_port  # noqa: E402
from test_pg_driver import SECOND_PASSWORD, ControlPlane, SecondServer, preloaded  # noqa: E402

second = None


def setUpModule():
    global second
    if preloaded() and os.geteuid() == 0:
        second = SecondServer()


def tearDownModule():
    if second:
        second.stop()


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def can_login(conn, role):
    cur = conn.cursor()
    cur.execute("select rolcanlogin from pg_roles where rolname = %s", (role,))
    return cur.fetchone()[0]


@unittest.skipUnless(preloaded(), "needs a cluster started with shared_preload_libraries = 'envdb'")
@unittest.skipUnless(os.geteuid() == 0, "the second server runs as postgres")
class CheckSeesServers(unittest.TestCase):
    def setUp(self):
        self.cp = ControlPlane(f"checksrv{id(self) % 100000}")
        self.addCleanup(self.cp.close)

    def readwrite(self, env_id):
        return next(c for c in self.cp.environment(env_id)["credentials"]
                    if c["scope"] == "readwrite" and c["status"] == "active")

    def test_a_login_enabled_behind_envdbs_back_is_found_and_fixed_on_both_servers(self):
        import psycopg2
        cp = self.cp
        org = cp.call("provision_organization", "acme-check", "Acme", None, None, "postgres")
        org_id = org["organization"]["id"]
        local_env = org["defaultEnvironment"]["environment"]["id"]
        cp.wait_status(local_env, "active")
        cp.call("add_database_host", "second", "eu", "127.0.0.1", second.port, "postgres", SECOND_PASSWORD,
                "postgres")
        remote_env = cp.call("provision_environment", org_id, "remote", None, None, "eu", "postgres")
        remote_env = remote_env["environment"]["id"]
        cp.wait_status(remote_env, "active")
        self.assertEqual(cp.call("check"), {"ok": True, "repaired": 0, "findings": []})

        remote = psycopg2.connect(dbname="postgres", **second.connect_args())
        remote.autocommit = True
        self.addCleanup(remote.close)
        victims = {}
        revoked = []
        for env_id, conn in ((local_env, cp.conn), (remote_env, remote)):
            cred = self.readwrite(env_id)
            cp.call("revoke_credential", cred["id"])
            cp.wait_jobs_done(env_id)
            revoked.append((env_id, conn, cred))
        for env_id, conn, cred in revoked:
            self.assertTrue(wait_for(lambda: not can_login(conn, cred["username"])))
        # The worker converges every login every few seconds and would undo
        # the superuser's change before check() sees it: keep it away from this
        # control plane (no new connection to it) while check() is tested.
        self.hold_off_worker()
        for env_id, conn, cred in revoked:
            # A superuser undoes the revocation on the server.
            conn.cursor().execute(f'ALTER ROLE "{cred["username"]}" LOGIN')
            victims[cred["id"]] = (conn, cred["username"])

        report = cp.call("check")
        self.assertFalse(report["ok"])
        found = {f["id"]: f for f in report["findings"]}
        self.assertEqual(set(found), set(victims))
        for f in found.values():
            self.assertEqual((f["kind"], f["table"], f["repaired"]), ("login_mismatch", "sys_database_credential",
                                                                       False))
            self.assertIn("can log in", f["detail"])
        self.assertIn("database host 'second'", found[self.readwrite_id(remote_env, victims)]["detail"])
        # Reporting changed nothing.
        for conn, role in victims.values():
            self.assertTrue(can_login(conn, role))

        fixed = cp.call("check", True)
        self.assertEqual(fixed["repaired"], 2, fixed)
        self.assertTrue(fixed["ok"])
        for conn, role in victims.values():
            self.assertFalse(can_login(conn, role))
        events = cp.one("select count(*) from envdb.sys_audit_event where action = 'check.repair' "
                        "and detail->>'kind' = 'login_mismatch'")[0]
        self.assertEqual(events, 2)
        self.assertEqual(cp.call("check"), {"ok": True, "repaired": 0, "findings": []})

        # A host that cannot be reached is a finding, whatever repair says.
        # The error names the host and says what failed, never the password.
        cp.call("add_database_host", "gone", "nowhere", "127.0.0.1", free_port(), "postgres",
                "pw-never-shown-7731", "postgres", None, False)  # registered untested
        report = cp.call("check", True)
        self.assertFalse(report["ok"])
        self.assertEqual([(f["kind"], f["repaired"]) for f in report["findings"]], [("server_unreachable", False)])
        self.assertIn("database host 'gone'", report["findings"][0]["detail"])
        self.assertIn("cannot connect to database host 'gone': ", report["findings"][0]["detail"])
        self.assertNotIn("pw-never-shown-7731", json.dumps(report))
        cp.call("remove_database_host", "gone")

    def hold_off_worker(self):
        """No worker connects to the control plane until the test ends (this
        session stays connected); returns once none is connected (the one
        connected is ended)."""
        import psycopg2
        admin = psycopg2.connect(dbname="postgres", **self.cp.connect_args)  # not the database it alters
        admin.autocommit = True
        self.addCleanup(admin.close)
        cur = admin.cursor()
        cur.execute(f'ALTER DATABASE "{self.cp.dbname}" ALLOW_CONNECTIONS false')
        self.addCleanup(lambda: cur.execute(f'ALTER DATABASE "{self.cp.dbname}" ALLOW_CONNECTIONS true'))

        def no_worker():
            # The database worker stays connected between passes: ended here,
            # it cannot come back.
            cur.execute("select pg_terminate_backend(pid) from pg_stat_activity where datname = %s "
                        "and backend_type = 'envdb database worker'", (self.cp.dbname,))
            cur.execute("select count(*) from pg_stat_activity where datname = %s "
                        "and backend_type <> 'client backend'", (self.cp.dbname,))
            return cur.fetchone()[0] == 0
        self.assertTrue(wait_for(no_worker), "a worker stayed connected to the control plane")

    def readwrite_id(self, env_id, victims):
        usernames = {c["username"]: c["id"] for c in self.cp.environment(env_id)["credentials"]}
        return next(cid for cid, (_, role) in victims.items() if role in usernames)

    def test_roles_left_by_a_drop_are_dropped(self):
        cp = self.cp
        org = cp.call("provision_organization", "acme-left", "Acme", None, None, "postgres")
        org_id = org["organization"]["id"]
        env = cp.call("provision_environment", org_id, "gone", None, None, None, "postgres")["environment"]["id"]
        cp.wait_status(env, "active")
        name = cp.environment(env)["database"]["databaseName"]
        cp.call("archive_environment", env)
        cp.wait_jobs_done(env)
        cp.call("drop_environment_database", env, True)
        cp.wait_jobs_done(env)
        # Someone makes a role with the dropped database's name back.
        leftover = f"{name}_readwrite"
        cp.conn.cursor().execute(f'CREATE ROLE "{leftover}" LOGIN')
        report = cp.call("check")
        self.assertEqual([(f["kind"], f["id"]) for f in report["findings"]], [("role_leftover", leftover)])
        self.assertTrue(cp.call("check", True)["ok"])
        self.assertIsNone(cp.one("select 1 from pg_roles where rolname = %s", (leftover,)))


if __name__ == "__main__":
    unittest.main()
