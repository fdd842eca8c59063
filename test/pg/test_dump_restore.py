"""pg_dump and pg_restore of a control-plane database keep every row, and every
credential still opens with the same keyring."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import CATALOG_TABLES, PostgresHost, postgres_available  # noqa: E402


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class DumpRestore(unittest.TestCase):
    def test_dump_and_restore_keep_rows_and_secrets(self):
        src = PostgresHost()
        try:
            org = src.call("provision_organization", "acme", "Acme", None, "eu-1", "turso")
            org_id = org["organization"]["id"]
            env = src.call("provision_environment", org_id, "dev", None, None, None, "turso")
            jobs = src.call("claim_provisioning_jobs", "turso", 10)
            for job in jobs:
                src.call("complete_provisioning_job", job["id"], "libsql://x", {"readwrite": f"tok-{job['id']}"})
            src.call("add_environment_member", env["environment"]["id"], "user-1", "env_user")
            src.call("rotate_credential", env["database"]["id"], "readwrite", None, "tok-rotated")
            creds = src.sql("select id from envdb.sys_database_credential where status <> 'revoked'")
            secrets = {c[0]: src.call("reveal_credential", c[0]) for c in creds}
            tables = {t: sorted(map(repr, src.sql(f"select * from envdb.{t}"))) for t in CATALOG_TABLES}
            self.assertGreater(len(secrets), 2)
            with tempfile.TemporaryDirectory() as d:
                dump = os.path.join(d, "control.dump")
                subprocess.run(["pg_dump", "-Fc", "-f", dump, "-d", src.dbname], check=True)
                dst = PostgresHost.__new__(PostgresHost)
                dst.dbname = src.dbname + "_restored"
                subprocess.run(["dropdb", "--if-exists", dst.dbname], check=True)
                subprocess.run(["createdb", dst.dbname], check=True)
                restore = subprocess.run(["pg_restore", "--exit-on-error", "-d", dst.dbname, dump],
                                         capture_output=True, text=True)
                self.assertEqual(restore.returncode, 0, restore.stderr)
                import psycopg2
                dst.psycopg2 = psycopg2
                dst.conn = psycopg2.connect(dbname=dst.dbname)
                dst.conn.autocommit = True
                src_keyring = src.sql("select current_setting('envdb.keyring_command')")[0][0]
                dst.sql("select set_config('envdb.keyring_command', %s, false)", (src_keyring,))
                try:
                    for t in CATALOG_TABLES:
                        self.assertEqual(sorted(map(repr, dst.sql(f"select * from envdb.{t}"))), tables[t], t)
                    for cred_id, token in secrets.items():
                        self.assertEqual(dst.call("reveal_credential", cred_id), token)
                finally:
                    dst.close()
        finally:
            src.close()


if __name__ == "__main__":
    unittest.main()
