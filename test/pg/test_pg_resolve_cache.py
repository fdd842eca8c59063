"""The Postgres resolve cache beyond the scenario both hosts share
(test/parity/test_resolve_cache.py):

- a hot standby: a rotation and a suspension committed on the primary are seen
  by the very next resolve of a standby backend whose cache held the row, once
  the standby has replayed the commit (the invalidations are WAL-logged);
- plain UPDATEs of the catalog by another session, also under
  session_replication_role = replica (the triggers are ENABLE ALWAYS);
- the session's own transaction rolled back, and a savepoint rolled back;
- REPEATABLE READ does not fill the cache with its snapshot's rows."""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import (TEST_KEY, TEST_KEY_ID, PG_BIN as BIN, PostgresHost,  # noqa: E402
                   Seconds, as_postgres, free_port, postgres_available, postgres_workdir)
sys.path.insert(0, os.path.dirname(__file__))
from test_replica import start_standby  # noqa: E402


def connect(dbname, **kw):
    import psycopg2
    conn = psycopg2.connect(dbname=dbname, **kw)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("select set_config('envdb.keyring_command', %s, false)", (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))
    return conn


def activate(h, made):
    """A turso environment made active as its worker would (readwrite token 'token-1')."""
    job = h.call("claim_provisioning_jobs", "turso", 10)[0]
    h.call("complete_provisioning_job", job["id"], "libsql://acme",
           {"readwrite": "token-1", "readonly": "token-r", "admin": "token-a"})
    return made["environment"]["id"], made["database"]["id"]


def resolve(conn, env):
    cur = conn.cursor()
    cur.execute("select envdb.resolve_environment(%s, 'readwrite')", (env,))
    return cur.fetchone()[0]


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class ResolveCachePostgres(unittest.TestCase):
    def setUp(self):
        import psycopg2
        self.psycopg2 = psycopg2
        self.h = PostgresHost()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.env, self.db = activate(self.h, org["defaultEnvironment"])
        self.router = connect(self.h.dbname)

    def tearDown(self):
        self.router.close()
        self.h.close()

    def token(self, conn=None):
        return resolve(conn or self.router, self.env)["credential"]["token"]

    def warm(self):
        self.assertEqual(self.token(), "token-1")
        self.assertEqual(self.token(), "token-1")

    def test_plain_updates_by_another_session_are_seen(self):
        self.warm()
        self.h.sql("update envdb.sys_environment set status = 'suspended' where id = %s", (self.env,))
        with self.assertRaisesRegex(self.psycopg2.Error, "^conflict"):
            self.token()
        self.h.sql("update envdb.sys_environment set status = 'active' where id = %s", (self.env,))
        self.warm()
        # The triggers fire under session_replication_role = replica too.
        self.h.sql("set session_replication_role = replica")
        self.h.sql("update envdb.sys_database_credential set status = 'revoked' where database_id = %s "
                   "and scope = 'readwrite'", (self.db,))
        self.h.sql("reset session_replication_role")
        with self.assertRaisesRegex(self.psycopg2.Error, "^not_found"):
            self.token()

    def test_rows_read_from_writes_that_rolled_back_are_not_served(self):
        self.warm()
        cur = self.router.cursor()
        for undo in ("rollback", "rollback to s"):
            with self.subTest(undo=undo):
                cur.execute("begin")
                cur.execute("savepoint s")
                cur.execute("select envdb.rotate_credential(%s, 'readwrite', token => 'token-x')", (self.db,))
                self.assertEqual(self.token(), "token-x")
                self.assertEqual(self.token(), "token-x")
                cur.execute(undo)
                self.assertEqual(self.token(), "token-1")
                if undo != "rollback":
                    cur.execute("commit")
                self.assertEqual(self.token(), "token-1")

    def test_one_invalidation_per_table_and_transaction_keeps_every_session_coherent(self):
        """A transaction sends one invalidation per catalog table (its later writes move only this
        backend's own generation): a later write in the same transaction, a savepoint rolled back
        after it, and a message dropped with an aborted savepoint are all seen."""
        other = connect(self.h.dbname)
        self.warm()
        self.assertEqual(self.token(other), "token-1")
        cur = self.router.cursor()
        rotate = "select envdb.rotate_credential(%s, 'readwrite', token => %s)"
        # Two writes in one transaction: the second sends nothing, this backend still sees it.
        cur.execute("begin")
        cur.execute(rotate, (self.db, "token-x"))
        self.assertEqual(self.token(), "token-x")
        cur.execute("savepoint s")
        cur.execute(rotate, (self.db, "token-y"))
        self.assertEqual(self.token(), "token-y")
        self.assertEqual(self.token(), "token-y")
        cur.execute("rollback to s")  # undoes a write that sent no message of its own
        self.assertEqual(self.token(), "token-x")
        cur.execute("commit")
        self.assertEqual(self.token(other), "token-x")
        # The first message sent inside a savepoint that rolls back is dropped with it: the next
        # write of the transaction sends it again, so the other session sees the commit.
        cur.execute("begin")
        cur.execute("savepoint s")
        cur.execute(rotate, (self.db, "token-z"))
        cur.execute("rollback to s")
        cur.execute(rotate, (self.db, "token-w"))
        cur.execute("commit")
        self.assertEqual(self.token(other), "token-w")
        self.assertEqual(self.token(), "token-w")
        other.close()

    def test_repeatable_read_does_not_fill_the_cache_with_its_snapshot(self):
        self.warm()
        cur = self.router.cursor()
        cur.execute("begin isolation level repeatable read")
        self.assertEqual(self.token(), "token-1")  # the snapshot is taken here
        self.h.call("rotate_credential", self.db, "readwrite", Seconds(0), "token-2")
        self.assertEqual(self.token(), "token-1")  # the snapshot's answer
        cur.execute("commit")
        self.assertEqual(self.token(), "token-2")
        self.assertEqual(self.token(), "token-2")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
@unittest.skipUnless(os.geteuid() == 0, "starting a second server needs root (to run it as postgres)")
class StandbyCoherence(unittest.TestCase):
    def test_a_change_on_the_primary_is_seen_by_the_next_resolve_on_the_standby(self):
        import psycopg2
        primary = PostgresHost()
        workdir = postgres_workdir("envdb-cache-standby-")
        datadir, port = os.path.join(workdir, "data"), free_port()
        started = False
        try:
            org = primary.call("provision_organization", "acme", "Acme", None, None, "turso")
            env_id, db = activate(primary, org["defaultEnvironment"])
            start_standby(workdir, datadir, port, "shared_preload_libraries = ''\n")
            started = True
            standby = connect(primary.dbname, host="127.0.0.1", port=port, user="postgres")
            cur = standby.cursor()

            def replayed():
                # Waits until the standby has replayed everything the primary has written so far.
                lsn = primary.sql("select pg_current_wal_lsn()::text")[0][0]
                deadline = time.time() + 30
                while True:
                    cur.execute("select pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))
                    if cur.fetchone()[0]:
                        return
                    self.assertLess(time.time(), deadline, "the standby did not replay")
                    time.sleep(0.05)

            replayed()
            self.assertEqual(resolve(standby, env_id)["credential"]["token"], "token-1")
            self.assertEqual(resolve(standby, env_id)["credential"]["token"], "token-1")  # cached
            primary.call("rotate_credential", db, "readwrite", Seconds(3600), "token-2")
            replayed()
            self.assertEqual(resolve(standby, env_id)["credential"]["token"], "token-2")
            self.assertEqual(resolve(standby, env_id)["credential"]["token"], "token-2")
            primary.call("set_environment_status", env_id, "suspended")
            replayed()
            with self.assertRaisesRegex(psycopg2.Error, "^conflict"):
                resolve(standby, env_id)
            standby.close()
        finally:
            if started:
                as_postgres([f"{BIN}/pg_ctl", "-D", datadir, "-m", "immediate", "-w", "stop"],
                            capture_output=True, timeout=60)
            shutil.rmtree(workdir, ignore_errors=True)
            primary.close()


if __name__ == "__main__":
    unittest.main()
