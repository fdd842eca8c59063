"""The resolve cache is coherent, the same in both hosts: a session resolves an
environment (so its row is cached), ANOTHER session (SQLite: another
connection to the same file; Postgres: another backend) commits a rotation,
a revocation, a suspension, an archive or a rewrap, and the very next resolve
of the first session answers from the new state. Also: the cache is per scope,
and a keyring change of the session itself is seen (the token stays sealed in
the cache and is opened per call).
"""
import os
import unittest

from hosts import (SECOND_KEY, SECOND_KEY_ID, TEST_KEY, TEST_KEY_ID, HostError, PostgresHost,
                   Seconds, SqliteHost, connect, decode, pg_call, postgres_available, sqlite_call)


class OtherSqlite:
    """A second connection to the same control database."""

    def __init__(self, host, keys):
        self.db = connect(os.path.join(host.dir.name, "control.db"))
        for key_id, key in keys.items():
            self.db.execute("select envdb_keyring_add(?, ?)", (key_id, key))
        self.db.execute("select envdb_keyring_use(?)", (list(keys)[-1],))

    def call(self, fn, *args):
        return decode(sqlite_call(self.db, fn, *args))

    def close(self):
        self.db.close()


class OtherPostgres:
    """A second backend on the same database."""

    def __init__(self, host, keys):
        import psycopg2
        self.conn = psycopg2.connect(dbname=host.dbname)
        self.conn.autocommit = True
        lines = "".join(f"{k} {v}\\n" for k, v in keys.items())
        cur = self.conn.cursor()
        cur.execute("select set_config('envdb.keyring_command', %s, false)", (f"printf '{lines}'",))
        cur.execute("select set_config('envdb.active_key_id', %s, false)", (list(keys)[-1],))

    def call(self, fn, *args):
        return decode(pg_call(self.conn, fn, *args))

    def close(self):
        self.conn.close()


class ResolveCacheScenario:
    host_class = None
    other_class = None

    def setUp(self):
        self.h = self.host_class()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.org = org["organization"]["id"]
        self.env, self.db = self.activate(org["defaultEnvironment"])
        self.other = self.other_class(self.h, {TEST_KEY_ID: TEST_KEY})

    def activate(self, made):
        """A turso environment made active as its worker would, with a token for
        each scope known to the test."""
        job = self.h.call("claim_provisioning_jobs", "turso", 10)[0]
        self.h.call("complete_provisioning_job", job["id"], "libsql://acme",
                    {"readwrite": "token-rw-1", "readonly": "token-ro-1", "admin": "token-ad-1"})
        return made["environment"]["id"], made["database"]["id"]

    def tearDown(self):
        self.other.close()
        self.h.close()

    def resolve(self, scope="readwrite"):
        return self.h.call("resolve_environment", self.env, scope)

    def warm(self, scope="readwrite"):
        # Twice: the second answer comes from the cache.
        first = self.resolve(scope)
        self.assertEqual(self.resolve(scope), first)
        return first

    def error(self, scope="readwrite"):
        with self.assertRaises(HostError) as caught:
            self.resolve(scope)
        return caught.exception

    def test_a_rotation_elsewhere_is_seen_at_once(self):
        self.assertEqual(self.warm()["credential"]["token"], "token-rw-1")
        self.other.call("rotate_credential", self.db, "readwrite", Seconds(3600), "token-rw-2")
        self.assertEqual(self.resolve()["credential"]["token"], "token-rw-2")

    def test_a_revocation_elsewhere_is_seen_at_once(self):
        cred = self.warm()["credential"]["id"]
        self.other.call("revoke_credential", cred)
        e = self.error()
        self.assertEqual(e.code, "not_found")
        self.assertNotIn("token-rw-1", e.message)

    def test_a_suspension_elsewhere_is_seen_at_once(self):
        self.warm()
        self.other.call("set_environment_status", self.env, "suspended")
        self.assertEqual(self.error().code, "conflict")
        self.other.call("set_environment_status", self.env, "active")
        self.assertEqual(self.resolve()["status"], "active")

    def test_an_archive_elsewhere_is_seen_at_once(self):
        self.warm()
        # The organization's first environment is its default; archive another.
        self.env, self.db = self.activate(
            self.h.call("provision_environment", self.org, "second", None, None, None, "turso"))
        self.warm()
        self.other.call("archive_environment", self.env)
        self.assertEqual(self.error().code, "conflict")

    def test_a_rewrap_elsewhere_is_seen_at_once(self):
        # The first session holds k1 only: once another session has rewrapped
        # every credential under k2, the cached k1 ciphertext must not be used.
        self.warm()
        self.other.close()
        self.other = self.other_class(self.h, {TEST_KEY_ID: TEST_KEY, SECOND_KEY_ID: SECOND_KEY})
        self.assertGreater(self.other.call("rewrap_credentials"), 0)
        e = self.error()
        self.assertEqual(e.code, "key_unavailable")
        self.assertIn(SECOND_KEY_ID, e.message)

    def test_the_cache_is_per_scope(self):
        rw = self.warm("readwrite")["credential"]
        ro = self.warm("readonly")["credential"]
        self.assertEqual((rw["scope"], rw["token"]), ("readwrite", "token-rw-1"))
        self.assertEqual((ro["scope"], ro["token"]), ("readonly", "token-ro-1"))
        self.assertEqual(self.resolve("readwrite")["credential"]["token"], "token-rw-1")
        self.other.call("rotate_credential", self.db, "readonly", Seconds(0), "token-ro-2")
        self.assertEqual(self.resolve("readonly")["credential"]["token"], "token-ro-2")
        self.assertEqual(self.resolve("readwrite")["credential"]["token"], "token-rw-1")

    def test_the_answer_kept_with_a_row_follows_changes_elsewhere(self):
        # A row that answered keeps its answer's text around the token (and
        # the associated data the token opened under): after each change made
        # elsewhere, the very next answer is the one a session that never
        # cached the row gives.
        self.env, self.db = self.activate(
            self.h.call("provision_environment", self.org, "second", None, None, None, "turso"))
        changes = [
            ("set_environment_type", self.env, "production"),
            ("rotate_credential", self.db, "readwrite", Seconds(3600), "token-rw-2"),
            ("set_storage_limit", self.env, 64),
            ("rotate_credential", self.db, "readwrite", Seconds(0), "token-rw-3"),
        ]
        for change in changes:
            with self.subTest(change=change[0]):
                self.warm()
                self.other.call(*change)
                self.assertEqual(self.resolve(), self.other.call("resolve_environment", self.env))
        answer = self.resolve()
        self.assertEqual((answer["envType"], answer["credential"]["token"]), ("production", "token-rw-3"))


class ResolveCacheSqlite(ResolveCacheScenario, unittest.TestCase):
    host_class = SqliteHost
    other_class = OtherSqlite


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class ResolveCachePostgres(ResolveCacheScenario, unittest.TestCase):
    host_class = PostgresHost
    other_class = OtherPostgres

    def test_a_keyring_change_of_the_session_is_seen_at_once(self):
        self.warm()
        self.h.load_keys({SECOND_KEY_ID: SECOND_KEY}, SECOND_KEY_ID)
        self.assertEqual(self.error().code, "key_unavailable")


if __name__ == "__main__":
    unittest.main()
