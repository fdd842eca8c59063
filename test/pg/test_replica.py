"""A streaming replica (pg_basebackup over loopback, hot standby) answers
resolve_environment for an environment created on the primary: the router
path writes nothing where writes are impossible."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import (TEST_KEY, TEST_KEY_ID, PG_BIN as BIN, PostgresHost, as_postgres,  # noqa: E402
                   free_port, postgres_available, postgres_workdir)



def start_standby(workdir, datadir, port, settings=""):
    """A hot standby of the pg_virtualenv cluster in datadir (pg_basebackup -R), started on port with its
    own configuration (Debian keeps the primary's outside the data directory) and settings added to it."""
    env = dict(os.environ, PGPASSWORD=os.environ.get("PGPASSWORD", ""))
    backup = as_postgres([f"{BIN}/pg_basebackup", "-D", datadir, "-R", "-X", "stream", "--checkpoint=fast",
                          "-h", os.environ.get("PGHOST", "localhost"), "-p", os.environ["PGPORT"],
                          "-U", os.environ.get("PGUSER", "postgres")],
                         env=env, capture_output=True, text=True, timeout=120)
    if backup.returncode != 0:
        raise AssertionError(backup.stderr)
    with open(os.path.join(datadir, "postgresql.conf"), "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{workdir}'\n"
                "hot_standby = on\nshared_buffers = 16MB\n" + settings)
    with open(os.path.join(datadir, "pg_hba.conf"), "w") as f:
        f.write("local all all trust\nhost all all 127.0.0.1/32 trust\n")
    for name in ("postgresql.conf", "pg_hba.conf"):
        shutil.chown(os.path.join(datadir, name), "postgres", "postgres")
    start = as_postgres([f"{BIN}/pg_ctl", "-D", datadir, "-l", os.path.join(workdir, "log"), "-w",
                         "-t", "60", "start"], capture_output=True, text=True, timeout=90)
    if start.returncode != 0:
        raise AssertionError(start.stderr + start.stdout)


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
@unittest.skipUnless(os.geteuid() == 0, "starting a second server needs root (to run it as postgres)")
class Replica(unittest.TestCase):
    def test_replica_resolves_an_environment_made_on_the_primary(self):
        primary = PostgresHost()
        workdir = postgres_workdir("envdb-replica-")
        datadir, port = os.path.join(workdir, "data"), free_port()
        started = False
        try:
            org = primary.call("provision_organization", "acme", "Acme", None, None, "turso")
            env_id = org["defaultEnvironment"]["environment"]["id"]
            job = primary.call("claim_provisioning_jobs", "turso", 10)[0]
            primary.call("complete_provisioning_job", job["id"], "libsql://acme", {"readwrite": "tok-replica"})
            expected = primary.call("resolve_environment", env_id, "readwrite")

            start_standby(workdir, datadir, port)
            started = True

            import psycopg2
            replica = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=primary.dbname)
            replica.autocommit = True
            cur = replica.cursor()
            cur.execute("select pg_is_in_recovery()")
            self.assertTrue(cur.fetchone()[0])
            cur.execute("select set_config('envdb.keyring_command', %s, false)",
                        (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))
            deadline = time.time() + 30
            while True:
                try:
                    cur.execute("select envdb.resolve_environment(%s, 'readwrite')", (env_id,))
                    break
                except psycopg2.Error:
                    if time.time() > deadline:
                        raise
                    time.sleep(0.5)
            resolved = cur.fetchone()[0]
            self.assertEqual(resolved["credential"]["token"], "tok-replica")
            self.assertEqual(resolved, expected)
            # Resolving again, long after last_accessed_at, still writes nothing on the standby.
            primary.sql("update envdb.sys_environment_database set last_accessed_at = '2000-01-01T00:00:00Z'")
            time.sleep(1)
            cur.execute("select envdb.resolve_environment(%s, 'readwrite')", (env_id,))
            self.assertEqual(cur.fetchone()[0]["credential"]["token"], "tok-replica")
            replica.close()
        finally:
            if started:
                as_postgres([f"{BIN}/pg_ctl", "-D", datadir, "-m", "immediate", "-w", "stop"],
                            capture_output=True, timeout=60)
            shutil.rmtree(workdir, ignore_errors=True)
            primary.close()


if __name__ == "__main__":
    unittest.main()
