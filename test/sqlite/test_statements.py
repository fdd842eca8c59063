"""Statements stay prepared between calls (envdb_statements), and that never
stops a connection from closing: sqlite3_close() refuses a connection with
live statements, which the sqlite3 shell reports on exit."""
import os
import subprocess
import tempfile
import unittest

from envdb_sqlite import EXTENSION, call, call_json, connect

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def shell(*commands, path=":memory:"):
    """Runs the sqlite3 shell over commands; the shell prints sqlite3_close()'s
    refusal on stderr when it exits."""
    return subprocess.run(["sqlite3", "-bail", path, *commands], capture_output=True, text=True)


def provision_and_resolve(data_dir):
    return [f".load {EXTENSION}", "select envdb_init()", f"select envdb_keyring_add('k1', '{KEY}') is not null",
            f"select envdb_config('sqlite_data_dir', '{data_dir}') is not null",
            "select json_extract(envdb_provision_organization('acme', 'Acme'), "
            "'$.defaultEnvironment.environment.status')",
            "select json_extract(envdb_resolve_environment(id, 'admin'), '$.status') "
            "from sys_environment"]


class KeptStatements(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.control = os.path.join(self.dir.name, "control.db")

    def tearDown(self):
        self.dir.cleanup()

    def provisioned(self):
        db = connect(self.control)
        call(db, "keyring_add", "k1", KEY)
        call(db, "config", "sqlite_data_dir", self.data_dir)
        env = call_json(db, "provision_organization", "acme", "Acme")["defaultEnvironment"]["environment"]
        return db, env["id"]

    def kept(self, db):
        return dict(db.execute("select sql, copies from envdb_statements").fetchall())

    def test_the_router_statement_stays_prepared_and_the_cache_does_not_grow(self):
        db, env_id = self.provisioned()
        call(db, "resolve_environment", env_id)
        kept = self.kept(db)
        self.assertTrue(any("sys_database_credential" in sql for sql in kept), kept)
        for _ in range(50):
            self.assertEqual(call_json(db, "resolve_environment", env_id)["status"], "active")
        self.assertEqual(self.kept(db), kept)

    def test_a_kept_statement_follows_a_schema_change(self):
        db, env_id = self.provisioned()
        first = call_json(db, "resolve_environment", env_id, "admin")
        db.execute("create index user_index on sys_environment(created_at)")
        db.execute("alter table sys_environment add column user_note text")
        again = call_json(db, "resolve_environment", env_id, "admin")
        self.assertEqual(again["credential"]["token"], first["credential"]["token"])

    def test_the_shell_closes_cleanly_after_calls(self):
        out = shell(*provision_and_resolve(self.data_dir), path=self.control)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.splitlines()[-2:], ["active", "active"])
        self.assertEqual(out.stderr, "")

    def test_loading_twice_then_closing(self):
        commands = provision_and_resolve(self.data_dir)
        # Loading again replaces the functions and the table (the first load's
        # statements are finalized then) and starts an empty keyring.
        out = shell(*commands, f".load {EXTENSION}",
                    "select count(*) from envdb_statements",
                    f"select envdb_keyring_add('k1', '{KEY}') is not null",
                    "select json_extract(envdb_resolve_environment(id), '$.status') from sys_environment",
                    "select count(*) > 0 from envdb_statements where sql like '%sys_database_credential%'",
                    path=self.control)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "")
        self.assertEqual(out.stdout.split()[-4:], ["0", "1", "active", "1"])

    def test_a_user_table_of_that_name_keeps_its_rows_and_the_shell_still_closes(self):
        out = shell("create table envdb_statements(note text)", "insert into envdb_statements values ('mine')",
                    *provision_and_resolve(self.data_dir), "select note from envdb_statements",
                    path=self.control)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stderr, "")
        self.assertEqual(out.stdout.split()[-2:], ["active", "mine"])

    def test_no_secret_reaches_the_table(self):
        db, env_id = self.provisioned()
        database_id = call_json(db, "get_environment", env_id)["database"]["id"]
        token = "tok-" + "s3cr3t" * 6
        call(db, "issue_credential", database_id, "readonly", token)
        resolved = call_json(db, "resolve_environment", env_id, "readonly")
        self.assertEqual(resolved["credential"]["token"], token)
        rows = db.execute("select sql from envdb_statements").fetchall()
        self.assertTrue(rows)
        for (sql,) in rows:
            self.assertNotIn("s3cr3t", sql)
            self.assertNotIn(KEY, sql)

    def test_the_table_is_read_only(self):
        db, _ = self.provisioned()
        with self.assertRaisesRegex(Exception, "envdb_statements"):
            db.execute("delete from envdb_statements")
        with self.assertRaisesRegex(Exception, "no such module|envdb_statements"):
            db.execute("create virtual table t using envdb_statements")


if __name__ == "__main__":
    unittest.main()
