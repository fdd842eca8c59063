"""Database hosts you can operate, against a real server: the pg_virtualenv
cluster registered as a "remote" host of its own control planes (over TCP
with its password, as any registered host is reached).

- add_database_host tests the connection: a wrong password is refused with the
  server's reason, never the password; registered untested, the environment
  placed there waits; update_database_host fixes the password and the
  environment becomes active there; health follows (lastError, then
  lastContactAt);
- capacity and drain stop placements; remove_database_host succeeds once the
  only databases left there are dropped (on a second server started here;
  the first test drops a database on the worker's own server);
- a region without hosts is refused unless local_server_regions names it."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import HostError  # noqa: E402
from test_pg_driver import SECOND_PASSWORD, ControlPlane, SecondServer, preloaded, wait_for  # noqa: E402

PORT = int(os.environ.get("PGPORT", "5432"))
USER = os.environ.get("PGUSER", "postgres")
PASSWORD = os.environ.get("PGPASSWORD", "")


def add(cp, name, region, password, capacity=None, verify=True):
    # add_database_host(name, region, host, port, username, password, dbname, capacity, verify)
    return cp.call("add_database_host", name, region, "127.0.0.1", PORT, USER, password, "postgres", capacity,
                   verify)["host"]


@unittest.skipUnless(preloaded() and PASSWORD, "needs the pg_virtualenv cluster with envdb preloaded")
class DatabaseHosts(unittest.TestCase):
    serial = 0

    def setUp(self):
        DatabaseHosts.serial += 1
        self.cp = ControlPlane(f"hosts{DatabaseHosts.serial}")
        self.org = self.cp.call("provision_organization", "ops", "Ops", None, None, "turso")["organization"]["id"]

    def tearDown(self):
        if self.cp:
            self.cp.close()

    def provision(self, slug, region):
        return self.cp.call("provision_environment", self.org, slug, None, None, region, "postgres")

    def host_of(self, env):
        return self.cp.one("select host_id from envdb.sys_environment_database where id = %s",
                           (env["database"]["id"],))[0]

    def listed(self, name):
        return next(h for h in self.cp.call("list_database_hosts") if h["name"] == name)

    def test_a_wrong_password_is_refused_and_a_fixed_host_provisions(self):
        with self.assertRaises(HostError) as e:
            add(self.cp, "here", "eu", "wrong-password-42")
        message = str(e.exception)
        self.assertRegex(message, r"invalid_parameter: password: database host 'here'")
        self.assertIn("password authentication failed", message)
        self.assertNotIn("wrong-password-42", message)
        self.assertEqual(self.cp.one("select count(*) from envdb.sys_database_host")[0], 0)

        # Registered untested: a database placed there waits for the host.
        host = add(self.cp, "here", "eu", "wrong-password-42", verify=False)
        self.assertIsNone(host["lastContactAt"])
        env = self.provision("eu-dev", "eu")
        env_id = env["environment"]["id"]
        self.assertEqual(self.host_of(env), host["id"])
        wait_for("the worker to record the failed contact", lambda: self.listed("here")["lastError"])
        broken = self.listed("here")
        self.assertFalse(broken["healthy"])
        self.assertIn("password authentication failed", broken["lastError"])
        self.assertNotIn("wrong-password-42", broken["lastError"])

        # The fix is tested before it is kept: a wrong one changes nothing.
        with self.assertRaises(HostError) as e:
            self.cp.call("update_database_host", host["id"], None, "still-wrong")
        self.assertIn("invalid_parameter: password", str(e.exception))
        fixed = self.cp.call("update_database_host", "here", None, PASSWORD)["host"]
        self.assertTrue(fixed["healthy"])
        self.assertIsNotNone(fixed["lastContactAt"])
        self.assertIsNone(self.cp.one("select 1 from envdb.sys_database_host where "
                                      "position(%s::bytea in password_cipher) > 0", (PASSWORD,)))
        self.cp.wait_status(env_id, "active")
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        self.assertTrue(url.startswith(f"postgresql://127.0.0.1:{PORT}/"), url)
        self.assertEqual(self.listed("here")["databases"], 1)

        # This host is the server envdb itself runs on: the worker's DROP
        # DATABASE over libpq to it finishes (while it waits for the result,
        # the worker absorbs the barrier the drop waits for), and the host,
        # with nothing left there, is removed.
        self.cp.call("archive_environment", env_id, True)
        self.cp.call("drop_environment_database", env_id, True)
        self.cp.wait_jobs_done(env_id)
        self.assertEqual(self.listed("here")["databases"], 0)
        self.assertEqual(self.cp.call("remove_database_host", "here")["host"]["id"], host["id"])
        self.assertTrue(self.cp.call("check")["ok"])

    @unittest.skipUnless(os.geteuid() == 0, "the second server runs as postgres")
    def test_capacity_and_drain_stop_placements_and_a_host_of_dropped_databases_is_removed(self):
        server = SecondServer()
        try:
            self.capacity_drain_and_removal(server)
        finally:
            self.cp.close()
            self.cp = None
            server.stop()

    def capacity_drain_and_removal(self, server):
        host = self.cp.call("add_database_host", "second", "eu", "127.0.0.1", server.port, "postgres",
                            SECOND_PASSWORD, "postgres", 1)["host"]
        self.assertEqual((host["capacity"], host["drained"], host["healthy"]), (1, False, True))
        env = self.provision("a", "eu")
        env_id = env["environment"]["id"]
        self.assertEqual(self.host_of(env), host["id"])
        with self.assertRaises(HostError) as e:
            self.provision("b", "eu")
        self.assertIn("conflict: region 'eu' has no database host that takes a new database: 'second' is full "
                      "(1 of 1)", str(e.exception))
        self.cp.call("update_database_host", "second", None, None, None, 0)
        self.assertTrue(self.cp.call("drain_database_host", host["id"])["host"]["drained"])
        with self.assertRaises(HostError) as e:
            self.provision("b", "eu")
        self.assertIn("'second' is drained", str(e.exception))
        self.assertEqual(self.cp.one("select count(*) from envdb.sys_environment where slug = 'b'")[0], 0)

        self.cp.wait_status(env_id, "active")
        with self.assertRaises(HostError) as e:
            self.cp.call("remove_database_host", "second")
        self.assertIn("conflict", str(e.exception))
        # Archived and dropped: nothing lives there any more.
        self.cp.call("archive_environment", env_id, True)
        self.cp.call("drop_environment_database", env_id, True)
        self.cp.wait_jobs_done(env_id)
        self.assertEqual(self.listed("second")["databases"], 0)
        removed = self.cp.call("remove_database_host", "second")["host"]
        self.assertEqual(removed["id"], host["id"])
        self.assertEqual(self.cp.call("list_database_hosts"), [])
        self.assertIsNone(self.host_of(env))
        self.assertTrue(self.cp.call("check")["ok"])

    def test_a_region_without_hosts_is_refused_unless_the_local_server_serves_it(self):
        with self.assertRaises(HostError) as e:
            self.provision("far", "ap-far")
        self.assertIn("invalid_parameter: region 'ap-far' has no database host", str(e.exception))
        self.assertIn("local_server_regions", str(e.exception))
        self.cp.call("config", "local_server_regions", "default,ap-far")
        env = self.provision("far", "ap-far")
        self.assertIsNone(self.host_of(env))
        self.cp.wait_status(env["environment"]["id"], "active")

    def test_a_copy_and_a_backup_on_a_registered_host(self):
        """copy_environment and backup_environment of environments on a registered host (this server,
        reached over libpq as the host's superuser account): the copy carries the rows, the target
        keeps its own identity and credentials, the source's credentials are refused there, and the
        backup records its size. Both are dropped and the host removed afterwards."""
        import psycopg2
        from test_pg_driver import login
        host = add(self.cp, "here", "eu", PASSWORD)
        envs = []
        for slug in ("eu-src", "eu-dst"):
            env = self.provision(slug, "eu")
            self.assertEqual(self.host_of(env), host["id"])
            envs.append(env["environment"]["id"])
        src, dst = envs
        for env_id in envs:
            self.cp.wait_status(env_id, "active")
            self.cp.wait_jobs_done(env_id)
        try:
            src_url = self.cp.environment(src)["database"]["databaseUrl"]
            dst_url = self.cp.environment(dst)["database"]["databaseUrl"]
            src_admin = self.cp.call("resolve_environment", src, "admin")["credential"]
            conn = login(src_url, src_admin, host="127.0.0.1")
            conn.cursor().execute("create table notes (body text); insert into notes values ('from eu-src')")
            conn.close()
            self.cp.call("copy_environment", src, dst, "full", False)
            self.cp.wait_jobs_done(dst, timeout=90)
            self.cp.wait_status(dst, "active")
            dst_admin = self.cp.call("resolve_environment", dst, "admin")["credential"]
            conn = wait_for("the target's own login", lambda: self._login(dst_url, dst_admin))
            cur = conn.cursor()
            cur.execute("select body from notes")
            self.assertEqual(cur.fetchall(), [("from eu-src",)])
            cur.execute("select environment_id from envdb.sys_environment_info")
            self.assertEqual(cur.fetchone()[0], dst)
            conn.close()
            with self.assertRaises(psycopg2.OperationalError) as e:
                login(dst_url, src_admin, host="127.0.0.1").close()
            self.assertIn("permission denied for database", str(e.exception))

            backup = self.cp.call("backup_environment", dst, None)["backup"]
            self.cp.wait_jobs_done(dst, timeout=90)
            listed = self.cp.call("list_environment_backups", dst)
            listed = listed["backups"] if isinstance(listed, dict) else listed
            made = next(b for b in listed if b["id"] == backup["id"])
            self.assertEqual(made["status"], "ready")
            self.assertGreater(made["sizeBytes"], 1000000)
            # This server also holds what earlier modules of the suite left on it
            # (check() looks at every database of a registered host), so only the
            # findings about these two environments count here.
            marks = set(envs)
            for env_id in envs:
                database = self.cp.environment(env_id)["database"]
                marks.update(str(database[k]) for k in ("id", "databaseName") if database.get(k))
            report = self.cp.call("check")
            ours = [f for f in report["findings"] if any(m in json.dumps(f) for m in marks)]
            self.assertEqual(ours, [], report)
        finally:
            for env_id in envs:
                self.cp.call("archive_environment", env_id, True)
                self.cp.call("drop_environment_database", env_id, True)
            for env_id in envs:
                self.cp.wait_jobs_done(env_id, timeout=90)
        self.assertEqual(self.listed("here")["databases"], 0)
        self.cp.call("remove_database_host", "here")
        self.assertTrue(self.cp.call("check")["ok"])

    @staticmethod
    def _login(url, credential):
        import psycopg2
        from test_pg_driver import login
        try:
            return login(url, credential, host="127.0.0.1")
        except psycopg2.OperationalError:
            return None


if __name__ == "__main__":
    unittest.main()
