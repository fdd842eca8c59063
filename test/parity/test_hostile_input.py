"""Hostile input in both hosts (issue 14, items 4 and 5).

Bounded JSON: a JSON value nested deeper than 64 levels is invalid_parameter
naming the parameter; 100,000 levels end no process (SQLite: in a child
process that must survive; Postgres: the backend answers the next
statement). A deep metadata row planted with plain SQL is schema_mismatch
when read back, and check() reports it.

Credentials bound to their database: a database_url changed behind envdb's
back makes the token fail to open (decrypt_failed) in resolve_environment
and reveal_credential; a ciphertext in the format before 0.3.0 still opens,
check() lists it, and rewrap_credentials() re-seals it in format 2."""
import base64
import os
import subprocess
import sys
import textwrap
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hosts import TEST_KEY, HostError, PostgresHost, Request, SqliteHost, postgres_available

HERE = os.path.dirname(os.path.abspath(__file__))


def nested(depth, inner='"x"'):
    """An object `depth` levels deep: {"a":{"a":...}}."""
    return '{"a":' * depth + inner + "}" * depth


def v1_envelope(credential_id, database_id, scope, token):
    """A token sealed the way envdb sealed it before 0.3.0 (envelope format 1)."""
    aad = b"envdb-credential-v1"
    for field in (credential_id, database_id, scope):
        raw = field.encode()
        aad += len(raw).to_bytes(4, "big") + raw
    nonce = os.urandom(12)
    return bytes([1]) + nonce + AESGCM(base64.b64decode(TEST_KEY)).encrypt(nonce, token.encode(), aad)


class HostileScenario:
    host_class = None

    def setUp(self):
        self.h = self.host_class()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.org = org["organization"]["id"]
        self.env = org["defaultEnvironment"]["environment"]["id"]
        self.database = org["defaultEnvironment"]["database"]["id"]

    def tearDown(self):
        self.h.close()

    def error(self, fn, *args):
        with self.assertRaises(HostError) as caught:
            self.h.call(fn, *args)
        return caught.exception

    def invalid_rows(self):
        return {(f["table"], f["id"]) for f in self.h.call("check")["findings"] if f["kind"] == "invalid_row"}

    # ---- bounded JSON

    def test_metadata_just_past_the_limit_is_refused_naming_it(self):
        before = self.h.counts()
        e = self.error("provision_organization", "deep", "Deep", None, None, "turso", None, nested(65))
        self.assertEqual(e.code, "invalid_parameter")
        self.assertIn("metadata is nested deeper than 64 levels", e.message)
        e = self.error("provision_organization", Request(slug="deep", name="Deep", driver="turso",
                                                         metadata=__import__("json").loads(nested(65))))
        self.assertEqual(e.code, "invalid_parameter")
        self.assertIn("metadata", e.message)
        self.assertEqual(self.h.counts(), before)
        # 64 levels are fine, and read back.
        made = self.h.call("provision_organization", "deep", "Deep", None, None, "turso", None, nested(63))
        env = self.h.call("get_environment", made["defaultEnvironment"]["environment"]["id"])
        self.assertEqual(env["environment"]["id"], made["defaultEnvironment"]["environment"]["id"])

    def test_tokens_and_requests_are_bounded_too(self):
        job = self.h.call("claim_provisioning_jobs", "turso", 1, "w")[0]
        e = self.error("complete_provisioning_job", job["id"], "libsql://x", nested(70))
        self.assertEqual(e.code, "invalid_parameter")
        self.assertIn("tokens", e.message)

    def plant_metadata(self, text):
        raise NotImplementedError

    def test_planted_deep_metadata_is_refused_and_reported(self):
        self.plant_metadata(nested(self.planted_depth))
        e = self.error("get_environment", self.env)
        self.assertEqual(e.code, "schema_mismatch")
        self.assertIn("metadata", e.message)
        self.assertIn(("sys_environment", self.env), self.invalid_rows())
        self.assertEqual(self.h.call("version"), self.h.call("version"))  # the connection still works

    # ---- credentials bound to the database

    def complete_turso_job(self, url):
        job = self.h.call("claim_provisioning_jobs", "turso", 1, "w")[0]
        self.h.call("complete_provisioning_job", job["id"], url, {"readwrite": "turso-token"})

    def test_swapped_url_fails_to_open(self):
        self.complete_turso_job("libsql://acme.turso.io")
        resolved = self.h.call("resolve_environment", self.env, "readwrite")
        self.assertEqual(resolved["credential"]["token"], "turso-token")
        credential = resolved["credential"]["id"]
        self.h.sql("update envdb.sys_environment_database set database_url = ? where id = ?",
                   ("libsql://attacker.example", self.database))
        self.assertEqual(self.error("resolve_environment", self.env, "readwrite").code, "decrypt_failed")
        self.assertEqual(self.error("reveal_credential", credential).code, "decrypt_failed")
        self.h.sql("update envdb.sys_environment_database set database_url = ? where id = ?",
                   ("libsql://acme.turso.io", self.database))
        self.assertEqual(self.h.call("reveal_credential", credential), "turso-token")

    def test_old_format_ciphertext_opens_and_is_resealed(self):
        self.complete_turso_job("libsql://acme.turso.io")
        credential = self.h.call("resolve_environment", self.env, "readwrite")["credential"]["id"]
        self.h.sql("update envdb.sys_database_credential set token_cipher = ? where id = ?",
                   (v1_envelope(credential, self.database, "readwrite", "old-token"), credential))
        self.assertEqual(self.h.call("reveal_credential", credential), "old-token")
        unbound = [f["id"] for f in self.h.call("check")["findings"] if f["kind"] == "credential_unbound"]
        self.assertEqual(unbound, [credential])
        self.assertEqual(self.h.call("rewrap_credentials"), 1)
        cipher = self.h.sql("select token_cipher from envdb.sys_database_credential where id = ?", (credential,))[0][0]
        self.assertEqual(bytes(cipher)[0], 2)
        self.assertEqual(self.h.call("reveal_credential", credential), "old-token")
        self.assertEqual([f for f in self.h.call("check")["findings"] if f["kind"] == "credential_unbound"], [])
        self.assertEqual(self.h.call("rewrap_credentials"), 0)
        # Now bound: a swapped URL no longer opens it.
        self.h.sql("update envdb.sys_environment_database set database_url = 'libsql://elsewhere' where id = ?",
                   (self.database,))
        self.assertEqual(self.error("reveal_credential", credential).code, "decrypt_failed")

    def test_catalog_check_refuses_a_bad_database_name(self):
        self.h.sql("insert into envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
                   "is_default, is_protected, status) values ('e-raw', ?, 'raw', 'X', 'development', 'r', ?, ?, "
                   "'failed')", (self.org, False, False))
        insert = ("insert into envdb.sys_environment_database (id, environment_id, database_name, driver, region) "
                  "values ('d-raw', 'e-raw', ?, ?, 'r')")
        before = self.h.counts()
        for name, driver in (("../victim/app", "sqlite"), ("acme-db", "sqlite"), ("../x", "turso"),
                             ("env-" + "A" * 26, "postgres"), ("env-" + "a" * 25, "sqlite")):
            with self.assertRaises(Exception, msg=(name, driver)):
                self.h.sql(insert, (name, driver))
            self.assertEqual(self.h.counts(), before)
        self.h.sql(insert, ("acme-db", "turso"))  # a v4 name, kept by a migrated turso database
        self.h.sql("delete from envdb.sys_environment_database where id = 'd-raw'")
        self.h.sql(insert, ("env-" + "a" * 26, "sqlite"))

    def test_planted_database_name_is_refused_everywhere(self):
        self.drop_name_rules()
        self.h.sql("update envdb.sys_environment_database set database_name = '../victim/app' where id = ?",
                   (self.database,))
        for fn, args in (("get_environment", (self.env,)), ("resolve_environment", (self.env, "readwrite")),
                         ("issue_credential", (self.database, "readonly", "t")),
                         ("claim_provisioning_jobs", ("turso", 1, "w"))):
            e = self.error(fn, *args)
            self.assertEqual(e.code, "schema_mismatch", fn)
            self.assertIn("database_name", e.message, fn)
        self.assertIn(("sys_environment_database", self.database), self.invalid_rows())


class SqliteHostile(HostileScenario, unittest.TestCase):
    host_class = SqliteHost
    planted_depth = 100000

    def plant_metadata(self, text):
        # SQLite's json_valid CHECK stops depth past 1000: someone holding the file turns it off.
        self.h.sql("pragma ignore_check_constraints = on")
        self.h.sql("update sys_environment set metadata = ? where id = ?", (text, self.env))
        self.h.sql("pragma ignore_check_constraints = off")

    def drop_name_rules(self):
        self.h.sql("drop trigger sys_environment_database_database_name_immutable")
        self.h.sql("pragma ignore_check_constraints = on")

    def test_100000_levels_end_no_process(self):
        """The crash of issue 14 (SIGSEGV in serialisation) in a child process: it must
        get coded errors and exit normally."""
        script = textwrap.dedent(f"""
            import sqlite3, sys
            sys.path.insert(0, {os.path.join(HERE, '..', 'sqlite')!r})
            from envdb_sqlite import connect
            deep = '{{"a":' * 100000 + '1' + '}}' * 100000
            db = connect(sys.argv[1])
            db.execute("select envdb_keyring_add('k1', ?)", ({TEST_KEY!r},))
            for sql, args in (
                    ("select envdb_provision_organization('x', 'X', NULL, NULL, 'turso', NULL, ?)", (deep,)),
                    ("select envdb_provision_organization(?)", ('{{"slug":"x","name":"X","metadata":' + deep + '}}',)),
                    ("select envdb_provision_organization(?)", (deep,))):
                try:
                    db.execute(sql, args).fetchone()
                    print("accepted")
                except sqlite3.Error as e:
                    print(str(e)[:120])
            org = db.execute("select envdb_provision_organization('y', 'Y', NULL, NULL, 'turso')").fetchone()[0]
            import json
            env = json.loads(org)["defaultEnvironment"]["environment"]["id"]
            db.execute("pragma ignore_check_constraints = on")
            db.execute("update sys_environment set metadata = ? where id = ?", (deep, env))
            try:
                db.execute("select envdb_get_environment(?)", (env,)).fetchone()
                print("accepted")
            except sqlite3.Error as e:
                print(str(e)[:120])
            report = json.loads(db.execute("select envdb_check()").fetchone()[0])
            print(sorted({{(f["kind"], f["id"]) for f in report["findings"]}}) == [("invalid_row", env)])
            print("alive")
        """)
        with __import__("tempfile").TemporaryDirectory() as d:
            run = subprocess.run([sys.executable, "-c", script, os.path.join(d, "control.db")],
                                 capture_output=True, text=True, timeout=120)
        self.assertEqual(run.returncode, 0, run.stderr[-2000:])
        lines = run.stdout.splitlines()
        self.assertEqual(lines[-1], "alive")
        self.assertTrue(lines[0].startswith("invalid_parameter: metadata is nested deeper than 64"), lines[0])
        self.assertTrue(lines[1].startswith("invalid_parameter: metadata is nested deeper than 64"), lines[1])
        self.assertTrue(lines[2].startswith("invalid_parameter: "), lines[2])
        self.assertTrue(lines[3].startswith("schema_mismatch: metadata"), lines[3])
        self.assertEqual(lines[4], "True")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (PGHOST)")
class PostgresHostile(HostileScenario, unittest.TestCase):
    host_class = PostgresHost
    # jsonb input refuses what would exhaust the server's stack; 1000 levels is valid jsonb.
    planted_depth = 1000

    def plant_metadata(self, text):
        self.h.sql("update envdb.sys_environment set metadata = %s::jsonb where id = %s", (text, self.env))

    def drop_name_rules(self):
        self.h.sql("alter table envdb.sys_environment_database disable trigger user")
        constraint = self.h.sql("select conname from pg_constraint where conrelid = "
                                "'envdb.sys_environment_database'::regclass and contype = 'c' and "
                                "position('database_name ~' in pg_get_constraintdef(oid)) > 0")[0][0]
        self.h.sql(f'alter table envdb.sys_environment_database drop constraint "{constraint}"')

    def test_100000_levels_end_no_process(self):
        deep = '{"a":' * 100000 + "1" + "}" * 100000
        # Postgres parses jsonb before envdb sees it: its own limit answers, with an error.
        e = self.error("provision_organization", "x", "X", None, None, "turso", None, deep)
        self.assertNotEqual(e.code, "internal", e)
        # The backend is still there.
        self.assertEqual(self.h.sql("select 1")[0][0], 1)
        e = self.error("provision_organization", "x", "X", None, None, "turso", None, nested(1000))
        self.assertEqual(e.code, "invalid_parameter")
        self.assertIn("metadata is nested deeper than 64 levels", e.message)
        self.assertEqual(self.h.counts()["sys_organization"], 1)


if __name__ == "__main__":
    unittest.main()
