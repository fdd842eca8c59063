"""The SQLite host's resolve cache, beyond the scenario both hosts share
(test/parity/test_resolve_cache.py):

- the connection's own writes: one rolled back (ROLLBACK, ROLLBACK TO
  SAVEPOINT) after a resolve saw it is not served afterwards;
- the role rules of a user context still apply to a cached row, and follow a
  membership change made by another connection;
- last_accessed_at is kept with the connection and written later, not in a
  write transaction of the resolve's own;
- the answer's text kept with a row follows a storage limit (maxPageCount)
  set by another connection."""
import os
import sqlite3
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from envdb_sqlite import call, call_json, connect  # noqa: E402

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31


class ResolveCacheSqlite(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "control.db")
        self.db = self.open()
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (os.path.join(self.dir.name, "envs"),))
        org = call_json(self.db, "provision_organization", "acme", "Acme", None, None, "sqlite")
        made = org["defaultEnvironment"]
        self.env, self.dbid = made["environment"]["id"], made["database"]["id"]
        call(self.db, "rotate_credential", self.dbid, "readwrite", 0, "token-1")

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def open(self):
        db = connect(self.path)
        db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        return db

    def token(self, db=None):
        return call_json(db or self.db, "resolve_environment", self.env)["credential"]["token"]

    def error(self, *args):
        with self.assertRaises(sqlite3.Error) as caught:
            call(self.db, "resolve_environment", self.env, *args)
        return str(caught.exception)

    def test_a_rolled_back_rotation_is_not_served(self):
        self.assertEqual(self.token(), "token-1")
        self.db.execute("begin")
        call(self.db, "rotate_credential", self.dbid, "readwrite", 0, "token-2")
        self.assertEqual(self.token(), "token-2")
        self.assertEqual(self.token(), "token-2")
        self.db.execute("rollback")
        self.assertEqual(self.token(), "token-1")

    def test_a_rotation_rolled_back_to_a_savepoint_is_not_served(self):
        self.assertEqual(self.token(), "token-1")
        self.db.execute("begin")
        self.db.execute("savepoint s")
        call(self.db, "rotate_credential", self.dbid, "readwrite", 0, "token-2")
        self.assertEqual(self.token(), "token-2")
        self.db.execute("rollback to s")
        self.assertEqual(self.token(), "token-1")
        self.db.execute("commit")
        self.assertEqual(self.token(), "token-1")

    def test_a_plain_update_by_another_connection_is_seen(self):
        self.assertEqual(self.token(), "token-1")
        other = self.open()
        try:
            other.execute("update sys_environment set status = 'suspended' where id = ?", (self.env,))
        finally:
            other.close()
        self.assertTrue(self.error().startswith("conflict"))

    def test_role_rules_apply_to_a_cached_row(self):
        call(self.db, "add_environment_member", self.env, "ana", "env_user")
        self.assertEqual(self.token(), "token-1")  # cached, no context
        call(self.db, "set_active_environment", self.env, "ana")
        self.assertEqual(self.token(), "token-1")  # env_user may have readwrite
        self.assertTrue(self.error("admin").startswith("permission_denied"))
        other = self.open()
        try:
            call(other, "add_environment_member", self.env, "ana", "env_viewer")
        finally:
            other.close()
        self.assertTrue(self.error("readwrite").startswith("permission_denied"))

    def test_last_accessed_at_is_not_written_by_the_resolve_itself(self):
        changes = self.db.total_changes
        self.token()
        self.token()
        # Kept with the connection (written once a minute has passed since the
        # oldest kept access, or 1000 are kept): the resolve wrote nothing.
        self.assertEqual(self.db.total_changes, changes)
        self.assertIsNone(self.db.execute("select last_accessed_at from sys_environment_database "
                                          "where id = ?", (self.dbid,)).fetchone()[0])

    def test_the_kept_answer_follows_a_storage_limit_set_elsewhere(self):
        # A row that answered keeps its answer's text, maxPageCount included
        # (from storage_limit_mb): a limit another connection sets is in the
        # very next answer, as a connection that never cached the row gives it.
        first = call_json(self.db, "resolve_environment", self.env)
        self.assertIsNone(first["maxPageCount"])
        self.assertEqual(call_json(self.db, "resolve_environment", self.env), first)
        other = self.open()
        try:
            call(other, "set_storage_limit", self.env, 10)
            fresh = call_json(other, "resolve_environment", self.env)
        finally:
            other.close()
        self.assertEqual(fresh["maxPageCount"], 2560)
        self.assertEqual(call_json(self.db, "resolve_environment", self.env), fresh)


if __name__ == "__main__":
    unittest.main()
