"""last_accessed_at in Postgres with the preload (as make check runs it): the
resolve records the access in shared memory and the control plane's database
worker writes it at its next pass.

- the resolving transaction writes nothing (no transaction id), and a READ
  ONLY transaction's resolve is recorded all the same;
- the worker writes each access with the time of the resolve, within seconds,
  also for a database no postgres job ever woke the worker for;
- once a minute: a resolve within a minute of the stored value records
  nothing, and the worker never moves the stored value backwards."""
import datetime
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import TEST_KEY, TEST_KEY_ID, PostgresHost, postgres_available  # noqa: E402

WAIT_S = 30  # the launcher asks for a pass every 2 s; a loaded machine is slower


def connect(dbname):
    import psycopg2
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    conn.cursor().execute("select set_config('envdb.keyring_command', %s, false)",
                          (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))
    return conn


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class DeferredTouches(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # One database for the class: the worker is asked for it by the
        # accesses alone (turso environments queue no postgres job).
        cls.h = PostgresHost()
        cls.envs = {}
        for slug in ("acme", "globex", "initech", "umbrella"):
            made = cls.h.call("provision_organization", slug, slug.title(), None, None, "turso")
            job = cls.h.call("claim_provisioning_jobs", "turso", 10)[0]
            cls.h.call("complete_provisioning_job", job["id"], "libsql://" + slug, {"readwrite": "tok-" + slug})
            env = made["defaultEnvironment"]
            cls.envs[slug] = (env["environment"]["id"], env["database"]["id"])

    @classmethod
    def tearDownClass(cls):
        cls.h.close()

    def setUp(self):
        self.router = connect(self.h.dbname)
        self.addCleanup(self.router.close)

    def stamp(self, db):
        return self.h.sql("select last_accessed_at from envdb.sys_environment_database where id = %s", (db,))[0][0]

    def set_stamp(self, db, value):
        self.h.sql("update envdb.sys_environment_database set last_accessed_at = %s where id = %s", (value, db))

    def wait_for_stamp(self, db):
        deadline = time.time() + WAIT_S
        while self.stamp(db) is None and time.time() < deadline:
            time.sleep(0.1)
        self.assertIsNotNone(self.stamp(db), f"the database worker did not write last_accessed_at in {WAIT_S} s")
        return self.stamp(db)

    def resolve(self, env):
        cur = self.router.cursor()
        cur.execute("select envdb.resolve_environment(%s, 'readwrite')", (env,))
        return cur.fetchone()[0]

    def test_the_resolve_writes_nothing_and_the_worker_writes_the_access(self):
        (env_a, db_a), (env_b, db_b) = self.envs["acme"], self.envs["globex"]
        self.set_stamp(db_a, None)
        self.set_stamp(db_b, None)
        cur = self.router.cursor()
        cur.execute("begin")
        cur.execute("select clock_timestamp()")
        before = cur.fetchone()[0]
        self.assertEqual(self.resolve(env_a)["credential"]["token"], "tok-acme")
        cur.execute("select pg_current_xact_id_if_assigned()")
        self.assertIsNone(cur.fetchone()[0], "the resolve wrote in the router's transaction")
        cur.execute("select clock_timestamp()")
        after = cur.fetchone()[0]
        cur.execute("commit")
        # A READ ONLY transaction resolves, and its access is recorded too.
        cur.execute("begin transaction read only")
        self.assertEqual(self.resolve(env_b)["credential"]["token"], "tok-globex")
        cur.execute("commit")
        stamped = self.wait_for_stamp(db_a)
        # The time of the resolve, not of the worker's pass (milliseconds kept).
        slack = datetime.timedelta(milliseconds=1)
        self.assertTrue(before - slack <= stamped <= after + slack, (before, stamped, after))
        self.wait_for_stamp(db_b)

    def test_once_a_minute_and_never_backwards(self):
        (env_a, db_a), (env_s, db_s) = self.envs["initech"], self.envs["umbrella"]
        # Within a minute of the stored value: nothing recorded. The sentinel's
        # access, recorded after it by the same backend, is written in the same
        # pass or a later one, so once it is there anything of env_a would be too.
        fresh = self.h.sql("select now() - interval '30 seconds'")[0][0]
        self.set_stamp(db_a, fresh)
        self.set_stamp(db_s, None)
        self.resolve(env_a)
        self.resolve(env_s)
        self.wait_for_stamp(db_s)
        self.assertEqual(self.stamp(db_a), fresh)
        # An access recorded before a later value was stored does not move it back.
        router = connect(self.h.dbname)  # a backend whose resolve cache is empty
        self.addCleanup(router.close)
        self.set_stamp(db_a, "2000-01-01T00:00:00Z")
        self.set_stamp(db_s, None)
        router.cursor().execute("select envdb.resolve_environment(%s, 'readwrite')", (env_a,))
        later = self.h.sql("select now() + interval '30 seconds'")[0][0]
        self.set_stamp(db_a, later)
        router.cursor().execute("select envdb.resolve_environment(%s, 'readwrite')", (env_s,))
        self.wait_for_stamp(db_s)
        self.assertEqual(self.stamp(db_a), later)


if __name__ == "__main__":
    unittest.main()
