"""The data plane through the loaded extension: an environment file made by
the sqlite driver carries its identity and schema; init_environment_schema is
idempotent in a fresh environment database and refuses a foreign identity;
resolve_environment hands out the environment's token."""
import os
import sqlite3
import tempfile
import unittest

from envdb_sqlite import call, call_json, connect

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


class DataPlane(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_fresh_environment_database(self):
        db = connect(os.path.join(self.dir.name, "env.db"), init=False)
        self.assertIsNone(call(db, "environment_schema_version"))
        first = call_json(db, "init_environment_schema", "env-1", "org-1", "env-db-1")
        self.assertEqual(first["environmentId"], "env-1")
        self.assertTrue(first["applied"])
        self.assertEqual(call_json(db, "init_environment_schema", "env-1")["applied"], [])
        self.assertEqual(call(db, "environment_schema_version"), first["schemaVersion"])
        with self.assertRaisesRegex(sqlite3.Error, "^schema_mismatch: "):
            call(db, "init_environment_schema", "env-2")
        tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
        self.assertEqual(tables, {"sys_package_installation", "sys_environment_info", "sys_schema_migration"})

    def test_provisioned_file_is_stamped_and_resolvable(self):
        control = connect(os.path.join(self.dir.name, "control.db"))
        call(control, "keyring_add", "k1", KEY)
        call(control, "config", "sqlite_data_dir", os.path.join(self.dir.name, "envs"))
        org = call_json(control, "provision_organization", "acme", "Acme")
        env = org["defaultEnvironment"]
        resolved = call_json(control, "resolve_environment", env["environment"]["id"], "admin")
        self.assertEqual(resolved["driver"], "sqlite")
        self.assertEqual(resolved["credential"]["scope"], "admin")
        self.assertEqual(len(resolved["credential"]["token"]), 43)
        path = resolved["databaseUrl"][len("file:"):]
        self.assertTrue(os.path.exists(path))
        envdb = connect(path, init=False)
        stamp = envdb.execute("select environment_id, organization_id, database_name from sys_environment_info").fetchone()
        self.assertEqual(stamp, (env["environment"]["id"], org["organization"]["id"], env["database"]["databaseName"]))
        report = call_json(control, "upgrade_environment_schemas")
        self.assertEqual([r["applied"] for r in report], [[]])


if __name__ == "__main__":
    unittest.main()
