"""What one sqlite-driver provision_environment writes: one control-plane
transaction whose database row carries the file's URL from the start (the
credentials are sealed once, bound to it, never re-sealed), and an environment
file that was built under its temporary name without a journal file and is an
ordinary rollback-journal database once in place. A control database in WAL
mode (docs/reference.md recommends it) provisions, resolves and checks the same."""
import glob
import os
import sqlite3
import tempfile
import unittest

from envdb_sqlite import call, call_json, connect

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


class ProvisionWrites(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.control = os.path.join(self.dir.name, "control.db")

    def tearDown(self):
        self.dir.cleanup()

    def control_db(self, journal=None):
        db = sqlite3.connect(self.control, isolation_level=None)
        if journal:
            self.assertEqual(db.execute(f"pragma journal_mode = {journal}").fetchone()[0], journal)
        db.close()
        db = connect(self.control)
        call(db, "keyring_add", "k1", KEY)
        call(db, "config", "sqlite_data_dir", self.data_dir)
        org = call_json(db, "provision_organization", "acme", "Acme", None, None, "turso")
        return db, org["organization"]["id"]

    def provision(self, db, org, slug):
        return call_json(db, "provision_environment", org, slug, None, "development", None, "sqlite")

    def test_one_transaction_and_credentials_sealed_once_with_the_url(self):
        db, org = self.control_db()
        self.provision(db, org, "warm")  # the template image is built here, not below
        statements = []
        db.set_trace_callback(statements.append)
        env = self.provision(db, org, "dev")
        db.set_trace_callback(None)
        inner = [s[3:] for s in statements if s.startswith("-- ")]
        self.assertEqual([s for s in inner if s.split()[0] in ("BEGIN", "COMMIT", "ROLLBACK")],
                         ["BEGIN IMMEDIATE", "COMMIT"], inner)
        # Sealed once: no credential is opened and sealed again for the URL.
        self.assertFalse([s for s in inner if "SET token_cipher" in s], inner)
        self.assertFalse([s for s in inner if "SET database_url" in s], inner)
        url = env["database"]["databaseUrl"]
        self.assertTrue(url.startswith("file:") and os.path.isfile(url[5:]), url)
        self.assertEqual(len(env["credentials"]), 3)
        for scope in ("admin", "readwrite", "readonly"):
            answer = call_json(db, "resolve_environment", env["environment"]["id"], scope)
            self.assertEqual((answer["status"], answer["databaseUrl"]), ("active", url))
            self.assertTrue(answer["credential"]["token"])
        self.assertEqual(call_json(db, "check")["ok"], True)

    def test_the_file_is_an_ordinary_rollback_journal_database_with_nothing_beside_it(self):
        db, org = self.control_db()
        envs = [self.provision(db, org, f"e{i}") for i in range(3)]
        names = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.data_dir, "*")))
        self.assertEqual(names, sorted(e["database"]["databaseName"] + ".db" for e in envs))
        for e in envs:
            f = sqlite3.connect(e["database"]["databaseUrl"][5:], isolation_level=None)
            self.assertEqual(f.execute("pragma journal_mode").fetchone()[0], "delete")
            self.assertEqual(f.execute("pragma integrity_check").fetchone()[0], "ok")
            self.assertEqual(f.execute("select environment_id from sys_environment_info").fetchone()[0],
                             e["environment"]["id"])
            # A write there journals on disk as usual.
            f.execute("create table app_rows (x)")
            f.close()

    def test_a_control_database_in_wal_mode(self):
        db, org = self.control_db("wal")
        env = self.provision(db, org, "dev")
        other = connect(self.control, init=False)
        call(other, "keyring_add", "k1", KEY)
        answer = call_json(other, "resolve_environment", env["environment"]["id"], "readwrite")
        self.assertEqual(answer["databaseUrl"], env["database"]["databaseUrl"])
        self.assertEqual(db.execute("pragma journal_mode").fetchone()[0], "wal")
        self.assertEqual(call_json(db, "check")["ok"], True)
        other.close()


if __name__ == "__main__":
    unittest.main()
