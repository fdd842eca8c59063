"""Secret hygiene on Postgres: keys come only from the superuser-only keyring
settings, a keyring file others can read is refused, and with every statement
logged, provisioning, resolving and revealing through bind parameters leave no
token in the server log; no token is ever stored in plaintext."""
import base64
import os
import pwd
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import TEST_KEY, TEST_KEY_ID, HostError, PostgresHost, postgres_available  # noqa: E402


def server_log(h):
    """The server's log file, as postgresql-common records it (pg_virtualenv -t
    keeps its clusters under PG_CLUSTER_CONF_ROOT, which pg_lsclusters reads)."""
    data_dir = h.sql("select current_setting('data_directory')")[0][0]
    listed = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True)
    for line in listed.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 7 and os.path.realpath(fields[5]) == os.path.realpath(data_dir):
            return fields[6]
    raise AssertionError(f"pg_lsclusters lists no cluster with data directory {data_dir}:\n{listed.stdout}")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Secrets(unittest.TestCase):
    def setUp(self):
        self.h = PostgresHost()

    def tearDown(self):
        self.h.close()

    def provision(self):
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "postgres")
        return org["defaultEnvironment"]

    def test_no_token_in_the_log_with_every_statement_logged(self):
        log = server_log(self.h)
        self.assertTrue(os.access(log, os.R_OK), f"cannot read the server log {log}")
        start = os.path.getsize(log)
        self.h.sql("set log_statement = 'all'")
        self.h.sql("set log_min_duration_statement = 0")
        env = self.provision()
        tokens = []
        cur = self.h.conn.cursor()
        for cred in env["credentials"]:
            # A real server-side bind: the id travels as a parameter, the token only in the result.
            cur.execute("PREPARE reveal(text) AS SELECT envdb.reveal_credential($1)")
            cur.execute("EXECUTE reveal(%s)", (cred["id"],))
            tokens.append(cur.fetchone()[0])
            cur.execute("DEALLOCATE reveal")
        self.assertEqual(len(tokens), 3)  # admin, readwrite, readonly
        with open(log, encoding="utf-8", errors="replace") as f:
            f.seek(start)
            written = f.read()
        self.assertIn("reveal_credential", written)  # the statements were logged...
        for token in tokens:
            self.assertNotIn(token, written)  # ...and no token with them

    def test_tokens_are_not_stored_in_plaintext(self):
        env = self.provision()
        tokens = [self.h.call("reveal_credential", c["id"]) for c in env["credentials"]]
        dump = subprocess.run(["pg_dump", "-d", self.h.dbname], capture_output=True, text=True, check=True).stdout
        self.assertIn("sys_database_credential", dump)
        for token in tokens:
            self.assertNotIn(token, dump)
            self.assertNotIn(base64.b64encode(token.encode()).decode(), dump)

    def test_keyring_settings_are_superuser_only(self):
        self.h.sql("create role envdb_test_admin2 in role envdb_admin")
        try:
            self.h.sql("set role envdb_test_admin2")
            with self.assertRaisesRegex(Exception, "permission denied to set parameter"):
                self.h.sql("set envdb.keyring_command = 'echo'")
            # Not even the setting's value is visible to a non-superuser.
            with self.assertRaisesRegex(Exception, "must be superuser|permission denied|pg_read_all_settings"):
                self.h.sql("show envdb.keyring_command")
        finally:
            self.h.sql("reset role")
            self.h.sql("drop role envdb_test_admin2")

    def test_keyring_file_readable_by_others_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to hand the file to the server's user")
        owner = pwd.getpwnam("postgres")
        with tempfile.TemporaryDirectory() as d:
            os.chmod(d, 0o755)
            path = os.path.join(d, "keyring")
            with open(path, "w") as f:
                f.write(f"# test keys\n{TEST_KEY_ID} {TEST_KEY}\n")
            os.chown(path, owner.pw_uid, owner.pw_gid)
            self.h.sql("set envdb.keyring_command = ''")
            os.chmod(path, 0o644)
            self.h.sql("select set_config('envdb.keyring_file', %s, false)", (path,))
            with self.assertRaises(HostError) as caught:
                self.provision()
            self.assertEqual(caught.exception.code, "permission_denied")
            self.assertIn("chmod 600", caught.exception.message)
            os.chmod(path, 0o600)
            self.h.sql("select set_config('envdb.keyring_file', %s, false)", (path,))
            env = self.provision()
            self.assertEqual({c["kmsKeyId"] for c in env["credentials"]}, {TEST_KEY_ID})

    def test_missing_key_is_key_unavailable_and_names_no_secret(self):
        env = self.provision()
        cred = env["credentials"][0]["id"]
        other = base64.b64encode(bytes(32)).decode()
        self.h.sql("select set_config('envdb.keyring_command', %s, false)", (f"printf 'other {other}\\n'",))
        with self.assertRaises(HostError) as caught:
            self.h.call("reveal_credential", cred)
        self.assertEqual(caught.exception.code, "key_unavailable")
        self.assertIn(TEST_KEY_ID, caught.exception.message)
        self.assertNotIn(TEST_KEY, caught.exception.message)


if __name__ == "__main__":
    unittest.main()
