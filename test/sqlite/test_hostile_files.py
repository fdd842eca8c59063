"""The control file is untrusted input (issue 14, item 4): rows planted with
plain SQL behind envdb's back never make envdb touch a file outside
sqlite_data_dir. drop_environment_database and retry_environment refuse such
rows with schema_mismatch naming the field, the victim files stay as they
were, and check() reports the rows (kind invalid_row). The catalog's CHECK on
database_name refuses the plain UPDATE/INSERT; the attacks below bypass it
(PRAGMA ignore_check_constraints, the immutability trigger dropped), as
someone holding the file can."""
import hashlib
import os
import sqlite3
import tempfile
import unittest

from envdb_sqlite import call, call_json, connect

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class HostileFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.db = connect(os.path.join(self.dir.name, "control.db"))
        call(self.db, "keyring_add", "k1", KEY)
        call(self.db, "config", "sqlite_data_dir", self.data_dir)
        org = call_json(self.db, "provision_organization", "acme", "Acme")
        self.org = org["organization"]["id"]
        env = call_json(self.db, "provision_environment", self.org, "dev")
        self.env = env["environment"]["id"]
        self.database = env["database"]["id"]
        self.name = env["database"]["databaseName"]
        # A file that is not envdb's, outside the data directory.
        self.victim_dir = os.path.join(self.dir.name, "victim")
        os.mkdir(self.victim_dir)
        self.victim = os.path.join(self.victim_dir, "app.db")
        victim = sqlite3.connect(self.victim)
        victim.execute("create table precious (x)")
        victim.execute("insert into precious values ('keep me')")
        victim.commit()
        victim.close()
        self.victim_digest = digest(self.victim)

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def refused(self, fn, *args, field):
        with self.assertRaises(sqlite3.Error) as caught:
            call(self.db, fn, *args)
        message = str(caught.exception)
        self.assertRegex(message, "^schema_mismatch: ")
        self.assertIn(field, message)
        return message

    def assert_victim_untouched(self):
        self.assertEqual(sorted(os.listdir(self.victim_dir)), ["app.db"])
        self.assertEqual(digest(self.victim), self.victim_digest)

    def invalid_rows(self):
        report = call_json(self.db, "check")
        self.assertFalse(report["ok"])
        return {(f["table"], f["id"]) for f in report["findings"] if f["kind"] == "invalid_row"}

    def archive(self):
        call(self.db, "archive_environment", self.env)

    def test_check_constraint_refuses_a_plain_update(self):
        self.db.execute("drop trigger sys_environment_database_database_name_immutable")
        with self.assertRaisesRegex(sqlite3.Error, "CHECK constraint failed"):
            self.db.execute("update sys_environment_database set database_name = '../victim/app' "
                            "where id = ?", (self.database,))

    def test_drop_refuses_a_file_url_outside_the_data_dir(self):
        self.archive()
        self.db.execute("update sys_environment_database set database_url = ? where id = ?",
                        ("file:" + self.victim, self.database))
        self.refused("drop_environment_database", self.env, 1, field="database_url")
        self.assert_victim_untouched()
        self.assertIsNone(self.db.execute("select dropped_at from sys_environment_database where id = ?",
                                          (self.database,)).fetchone()[0])
        self.assertIn(("sys_environment_database", self.database), self.invalid_rows())

    def test_drop_refuses_a_url_naming_a_same_named_file_elsewhere(self):
        # The syntax is right (…/<database_name>.db); the directory is not.
        elsewhere = os.path.join(self.victim_dir, self.name + ".db")
        os.rename(self.victim, elsewhere)
        self.archive()
        self.db.execute("update sys_environment_database set database_url = ? where id = ?",
                        ("file:" + elsewhere, self.database))
        self.refused("drop_environment_database", self.env, 1, field="database_url")
        self.assertEqual(digest(elsewhere), self.victim_digest)
        self.assertIn(("sys_environment_database", self.database), self.invalid_rows())

    def test_drop_refuses_a_dot_dot_url(self):
        self.archive()
        sneaky = os.path.join(self.data_dir, "..", "victim", "..", "envs", self.name + ".db")
        self.db.execute("update sys_environment_database set database_url = ? where id = ?",
                        ("file:" + sneaky, self.database))
        self.refused("drop_environment_database", self.env, 1, field="database_url")
        self.assertTrue(os.path.exists(os.path.join(self.data_dir, self.name + ".db")))

    def test_drop_refuses_a_symlink_leading_out(self):
        own = os.path.join(self.data_dir, self.name + ".db")
        os.remove(own)
        os.symlink(self.victim, own)
        self.archive()
        self.refused("drop_environment_database", self.env, 1, field=self.name)
        self.assert_victim_untouched()
        self.assertTrue(os.path.islink(own))
        self.assertIn(("sys_environment_database", self.database), self.invalid_rows())

    def plant_failed_environment(self, database_name):
        """An environment row and a database row made with plain SQL, the CHECK bypassed."""
        self.db.execute("pragma ignore_check_constraints = on")
        env_id = "0190a000-0000-7000-8000-00000000beef"
        db_id = "0190a000-0000-7000-8000-00000000cafe"
        self.db.execute("insert into sys_environment (id, organization_id, slug, name, env_type, region, "
                        "status) values (?, ?, 'planted', 'Planted', 'development', 'default', 'failed')",
                        (env_id, self.org))
        self.db.execute("insert into sys_environment_database (id, environment_id, database_name, driver, "
                        "region) values (?, ?, ?, 'sqlite', 'default')", (db_id, env_id, database_name))
        self.db.execute("pragma ignore_check_constraints = off")
        return env_id, db_id

    def test_retry_refuses_a_database_name_leading_out(self):
        env_id, db_id = self.plant_failed_environment("../victim/app")
        self.refused("retry_environment", env_id, field="database_name")
        self.assert_victim_untouched()
        status = self.db.execute("select status from sys_environment where id = ?", (env_id,)).fetchone()[0]
        self.assertEqual(status, "failed")
        self.assertIn(("sys_environment_database", db_id), self.invalid_rows())
        # Every other function that reads the row refuses it too.
        self.refused("get_environment", env_id, field="database_name")
        self.refused("set_environment_status", env_id, "provisioning", field="database_name")

    def test_retry_refuses_a_url_outside_the_data_dir(self):
        env_id, db_id = self.plant_failed_environment("env-" + "a" * 26)
        self.db.execute("update sys_environment_database set database_url = ? where id = ?",
                        ("file:" + os.path.join(self.victim_dir, "env-" + "a" * 26 + ".db"), db_id))
        self.refused("retry_environment", env_id, field="database_url")
        self.assert_victim_untouched()
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, "env-" + "a" * 26 + ".db")))

    def test_upgrade_environment_schemas_skips_a_planted_url(self):
        self.db.execute("update sys_environment_database set database_url = ? where id = ?",
                        ("file:" + self.victim, self.database))
        entries = {e["environmentId"]: e for e in call_json(self.db, "upgrade_environment_schemas")}
        self.assertRegex(entries[self.env]["error"], "^schema_mismatch: .*database_url")
        self.assert_victim_untouched()

    def test_an_honest_catalog_has_no_invalid_rows(self):
        report = call_json(self.db, "check")
        self.assertEqual([f for f in report["findings"] if f["kind"] == "invalid_row"], [])
        # And the environment still drops normally.
        self.archive()
        out = call_json(self.db, "drop_environment_database", self.env, 1)
        self.assertIsNotNone(out["database"]["droppedAt"])
        self.assertFalse(os.path.exists(os.path.join(self.data_dir, self.name + ".db")))


class UpgradeWithAPlantedRow(unittest.TestCase):
    """init() rebuilds a table whose constraints changed; a planted row that
    breaks the new CHECK stops it with schema_mismatch naming the row and the
    column, and nothing is changed."""

    def test_planted_row_stops_the_rebuild_clearly(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "control.db")
            db = connect(path)
            call(db, "keyring_add", "k1", KEY)
            call(db, "config", "sqlite_data_dir", os.path.join(d, "envs"))
            org = call_json(db, "provision_organization", "acme", "Acme", None, None, "turso")
            db_id = org["defaultEnvironment"]["database"]["id"]
            # The table as an older catalog had it: without the database_name CHECK.
            sql = db.execute("select sql from sqlite_master where name = 'sys_environment_database'").fetchone()[0]
            start = sql.index("database_name TEXT NOT NULL")
            end = sql.index(",\n", start)
            old_sql = sql[:start] + "database_name TEXT NOT NULL" + sql[end:]
            db.execute("pragma writable_schema = on")
            db.execute("update sqlite_master set sql = ? where name = 'sys_environment_database'", (old_sql,))
            db.execute("pragma writable_schema = off")
            db.close()
            db = connect(path, init=False)
            db.execute("drop trigger sys_environment_database_database_name_immutable")
            db.execute("update sys_environment_database set database_name = '../x' where id = ?", (db_id,))
            before = db.execute("select sql from sqlite_master order by name").fetchall()
            with self.assertRaises(sqlite3.Error) as caught:
                call(db, "init")
            message = str(caught.exception)
            self.assertRegex(message, "^schema_mismatch: table sys_environment_database row ")
            self.assertIn(db_id, message)
            self.assertIn("database_name '../x'", message)
            self.assertEqual(db.execute("select sql from sqlite_master order by name").fetchall(), before)
            # Corrected, the upgrade goes through.
            db.execute("update sys_environment_database set database_name = 'acme-db' where id = ?", (db_id,))
            call(db, "init")
            self.assertIn("CHECK", db.execute("select sql from sqlite_master where name = "
                                              "'sys_environment_database'").fetchone()[0])
            db.close()


class ResealOnInit(unittest.TestCase):
    """A control database made by envdb 0.1.0 holds format-1 envelopes: init()
    with the keys loaded re-seals them in format 2 (bound to the database's
    name and URL), every token still opens, and check() lists none as
    credential_unbound; without the keys they stay format 1 and still open."""
    HERE = os.path.dirname(os.path.abspath(__file__))
    FIXTURE = os.path.join(HERE, "fixtures", "control-0.1.0.db")

    def setUp(self):
        import json
        import shutil
        self.expected = json.load(open(os.path.join(self.HERE, "fixtures", "control-0.1.0.json"),
                                       encoding="utf-8"))
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "control.db")
        shutil.copy(self.FIXTURE, self.path)

    def tearDown(self):
        self.dir.cleanup()

    def versions(self, db):
        return {bytes(c)[0] for (c,) in db.execute(
            "select token_cipher from sys_database_credential where status <> 'revoked'")}

    def test_init_with_keys_reseals(self):
        db = connect(self.path, init=False)
        self.assertEqual(self.versions(db), {1})
        for kid, key in self.expected["keyring"].items():
            call(db, "keyring_add", kid, key)
        call(db, "init")
        self.assertEqual(self.versions(db), {2})
        for cred, token in self.expected["tokens"].items():
            self.assertEqual(call(db, "reveal_credential", cred), token)
        kinds = {f["kind"] for f in call_json(db, "check")["findings"]}
        self.assertNotIn("credential_unbound", kinds)
        self.assertEqual(db.execute("select count(*) from sys_audit_event where action = 'credential.reseal'")
                         .fetchone()[0], 1)
        db.close()

    def test_init_without_keys_leaves_them_opening(self):
        db = connect(self.path, init=False)
        call(db, "init")
        self.assertEqual(self.versions(db), {1})
        unbound = [f for f in call_json(db, "check")["findings"] if f["kind"] == "credential_unbound"]
        self.assertEqual(len(unbound), len(self.versions(db)) and db.execute(
            "select count(*) from sys_database_credential where status <> 'revoked'").fetchone()[0])
        for kid, key in self.expected["keyring"].items():
            call(db, "keyring_add", kid, key)
        for cred, token in self.expected["tokens"].items():
            self.assertEqual(call(db, "reveal_credential", cred), token)
        self.assertGreater(call(db, "rewrap_credentials"), 0)
        self.assertEqual(self.versions(db), {2})
        for cred, token in self.expected["tokens"].items():
            self.assertEqual(call(db, "reveal_credential", cred), token)
        db.close()


if __name__ == "__main__":
    unittest.main()
