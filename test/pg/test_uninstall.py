"""Uninstalling envdb from a Postgres database leaves nothing behind, by the
documented sequence (docs/reference.md, "Uninstalling"): deprovision every
organization with force, let the background worker drop the environment
databases and their roles, then DROP EXTENSION. DROP EXTENSION alone would
keep the env-... databases and roles: they are server objects, not members of
the extension. Needs the server preloaded with envdb (make check does)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from test_pg_driver import ControlPlane, preloaded, wait_for  # noqa: E402


@unittest.skipUnless(preloaded(), "needs a server with shared_preload_libraries = 'envdb'")
class Uninstall(unittest.TestCase):
    def setUp(self):
        self.cp = ControlPlane(900)

    def tearDown(self):
        self.cp.close()

    def server_objects(self, names):
        """env-... databases and roles of these database names still on the server."""
        cur = self.cp.conn.cursor()
        cur.execute("select datname from pg_database where datname = any(%s)", (names,))
        dbs = [r[0] for r in cur.fetchall()]
        cur.execute("select rolname from pg_roles where split_part(rolname, '_', 1) = any(%s)", (names,))
        return dbs + [r[0] for r in cur.fetchall()]

    def provision(self, slug):
        org = self.cp.call("provision_organization", slug, "Acme", None, None, "postgres")
        org_id = org["organization"]["id"]
        dev = self.cp.call("provision_environment", org_id, "dev", None, None, None, "postgres")
        envs = [org["defaultEnvironment"]["environment"]["id"], dev["environment"]["id"]]
        for env in envs:
            self.cp.wait_status(env, "active")
        return org_id, envs, [org["defaultEnvironment"]["database"]["databaseName"],
                              dev["database"]["databaseName"]]

    def wait_dropped(self):
        wait_for("every environment database to be dropped", lambda: self.cp.one(
            "select count(*) = 0 from envdb.sys_environment_database where dropped_at is null")[0])

    def test_deprovision_then_drop_extension_leaves_no_database_or_role(self):
        org_id, envs, names = self.provision("acme")
        present = self.server_objects(names)
        self.assertTrue(set(names) <= set(present))  # the databases,
        self.assertTrue(any(r.endswith("_owner") for r in present))  # their scope roles
        self.assertTrue(any(r.count("_") == 2 for r in present))  # and logins
        out = self.cp.call("deprovision_organization", org_id, True)
        self.assertTrue(all(e["job"]["kind"] == "drop_database" for e in out["environments"]))
        self.wait_dropped()
        for env in envs:
            self.cp.wait_jobs_done(env)
        self.assertEqual(self.server_objects(names), [])
        self.assertTrue(self.cp.call("check")["ok"])

        # Deploy again under the same slugs, then the whole uninstall sequence.
        _, _, names2 = self.provision("acme")
        self.assertTrue(set(names2) <= set(self.server_objects(names2)))
        self.cp.conn.cursor().execute(
            "SELECT envdb.deprovision_organization(id, force => true) FROM envdb.sys_organization "
            "WHERE deprovisioned_at IS NULL")
        self.wait_dropped()
        self.assertTrue(self.cp.call("check")["ok"])
        # The schema CREATE EXTENSION made for it is not a member of the extension.
        self.cp.conn.cursor().execute("DROP EXTENSION envdb; DROP SCHEMA envdb")
        self.assertEqual(self.server_objects(names + names2), [])
        cur = self.cp.conn.cursor()
        cur.execute("select count(*) from pg_namespace where nspname = 'envdb'")
        self.assertEqual(cur.fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
