"""Kill -9 a Postgres backend at random points of provision_environment,
rotate_credential and rewrap_credentials, 100 times. Each kill makes the
postmaster reset every backend (crash recovery); the test reconnects and goes
on. Afterwards check() finds nothing and the catalog invariants hold: one
active credential per (database, scope), every live credential opens under a
loaded key, every environment has its database row and its job."""
import base64
import os
import random
import signal
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import postgres_available, scratch_database  # noqa: E402

KEYS = {"k1": base64.b64encode(bytes(range(32))).decode(),
        "k2": base64.b64encode(bytes(range(32, 64))).decode()}
KILLS = int(os.environ.get("ENVDB_CRASH_KILLS", "100"))
BUDGET_SECONDS = 170  # the whole test stays under three minutes
CREDENTIALS = 1500    # so that one rewrap takes long enough to be hit mid-flight


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class PostgresCrash(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import psycopg2
        cls.psycopg2 = psycopg2
        cls.dbname = scratch_database(f"envdb_crash_{os.getpid()}")
        conn = cls.connect()
        cur = conn.cursor()
        cur.execute("CREATE EXTENSION envdb")
        cls.keyring(cur)
        cur.execute("SELECT envdb.provision_organization('acme', 'Acme', NULL, NULL, 'postgres')")
        org = cur.fetchone()[0]
        cls.org = org["organization"]["id"]
        cls.db = org["defaultEnvironment"]["database"]["id"]
        # Many live credentials: each issue leaves the previous one rotating.
        cur.execute("SELECT count(envdb.issue_credential(%s, 'readonly')) FROM generate_series(1, %s)",
                    (cls.db, CREDENTIALS))
        conn.close()

    @classmethod
    def tearDownClass(cls):
        admin = cls.connect("postgres")
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{cls.dbname}"')
        admin.close()

    @classmethod
    def connect(cls, dbname=None, timeout=60):
        """Connects, retrying while the server recovers from a crash."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = cls.psycopg2.connect(dbname=dbname or cls.dbname, connect_timeout=5)
                conn.autocommit = True
                return conn
            except cls.psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @staticmethod
    def keyring(cur, active="k1"):
        lines = "".join(f"{k} {v}\\n" for k, v in KEYS.items())
        cur.execute("SELECT set_config('envdb.keyring_command', %s, false)", (f"printf '{lines}'",))
        cur.execute("SELECT set_config('envdb.active_key_id', %s, false)", (active,))

    # The operations, each one statement (one transaction) long enough to be
    # hit mid-flight.
    def provision(self, cur):
        tag = random.getrandbits(40)
        cur.execute("SELECT count(envdb.provision_environment(%s, 'p-' || %s || '-' || g, NULL, NULL, NULL, "
                    "'postgres')) FROM generate_series(1, 20) g", (self.org, str(tag)))

    def rotate(self, cur):
        cur.execute("SELECT count(envdb.rotate_credential(%s, 'readwrite', make_interval(secs => 3600))) "
                    "FROM generate_series(1, 40)", (self.db,))

    def rewrap(self, cur):
        # To the key most credentials are not under, so that it moves them all.
        cur.execute("SELECT kms_key_id FROM envdb.sys_database_credential GROUP BY 1 ORDER BY count(*) DESC "
                    "LIMIT 1")
        target = "k2" if cur.fetchone()[0] == "k1" else "k1"
        cur.execute("SELECT envdb.rewrap_credentials(%s)", (target,))

    def timed(self, op):
        conn = self.connect()
        cur = conn.cursor()
        self.keyring(cur)
        start = time.monotonic()
        op(cur)
        conn.close()
        return time.monotonic() - start

    def test_kill_9_at_random_points(self):
        started = time.monotonic()
        ops = {"provision": self.provision, "rotate": self.rotate, "rewrap": self.rewrap}
        durations = {name: self.timed(op) for name, op in ops.items()}
        kills, interrupted, completed = 0, {n: 0 for n in ops}, {n: 0 for n in ops}
        while kills < KILLS and time.monotonic() - started < BUDGET_SECONDS:
            name = random.choice(list(ops))
            conn = self.connect()
            cur = conn.cursor()
            self.keyring(cur, random.choice(["k1", "k2"]))
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
            outcome = {}

            def run():
                try:
                    ops[name](cur)
                    outcome["done"] = True
                except self.psycopg2.Error as e:
                    outcome["error"] = e

            worker = threading.Thread(target=run)
            worker.start()
            time.sleep(random.uniform(0, durations[name] * 1.2))
            os.kill(pid, signal.SIGKILL)
            worker.join(60)
            self.assertFalse(worker.is_alive())
            kills += 1
            if outcome.get("done"):
                completed[name] += 1
            else:
                self.assertIsInstance(outcome.get("error"), self.psycopg2.OperationalError, outcome)
                interrupted[name] += 1
            try:
                conn.close()
            except self.psycopg2.Error:
                pass
        elapsed = time.monotonic() - started
        print(f"\n  {kills} kills in {elapsed:.1f} s (op durations "
              + ", ".join(f"{n} {d * 1000:.0f} ms" for n, d in durations.items())
              + f"); interrupted {interrupted}, completed first {completed}", file=sys.stderr)
        self.assertEqual(kills, KILLS, f"only {kills} kills within {BUDGET_SECONDS} s")
        # Most kills must land mid-operation, in every operation.
        for name in ops:
            self.assertGreater(interrupted[name], 0, f"no kill landed inside {name}")
        self.assertGreater(sum(interrupted.values()), KILLS // 2)

        conn = self.connect()
        cur = conn.cursor()
        self.keyring(cur)
        cur.execute("SELECT envdb.check()")
        self.assertEqual(cur.fetchone()[0], {"ok": True, "repaired": 0, "findings": []})
        self.assert_invariants(cur)
        conn.close()

    def assert_invariants(self, cur):
        def one(sql, params=()):
            cur.execute(sql, params)
            return cur.fetchone()[0]
        # One active credential per (database, scope), for every scope issued.
        self.assertEqual(one("SELECT count(*) FROM (SELECT database_id, scope FROM envdb.sys_database_credential "
                             "WHERE status = 'active' GROUP BY 1, 2 HAVING count(*) > 1) s"), 0)
        self.assertEqual(one("SELECT count(*) FROM (SELECT DISTINCT database_id, scope FROM "
                             "envdb.sys_database_credential) a WHERE NOT EXISTS (SELECT 1 FROM "
                             "envdb.sys_database_credential c WHERE c.database_id = a.database_id AND "
                             "c.scope = a.scope AND c.status = 'active')"), 0)
        # Every rotation chain is whole: rotated_from names a credential of the
        # same database and scope.
        self.assertEqual(one("SELECT count(*) FROM envdb.sys_database_credential c WHERE rotated_from IS NOT NULL "
                             "AND NOT EXISTS (SELECT 1 FROM envdb.sys_database_credential p WHERE p.id = "
                             "c.rotated_from AND p.database_id = c.database_id AND p.scope = c.scope)"), 0)
        # Every live credential opens (rewraps were all or nothing).
        live = one("SELECT count(*) FROM envdb.sys_database_credential WHERE status = 'active' "
                   "OR (status = 'rotating' AND (expires_at IS NULL OR expires_at > now()))")
        self.assertEqual(one("SELECT count(envdb.reveal_credential(id)) FROM envdb.sys_database_credential "
                             "WHERE status = 'active' OR (status = 'rotating' AND (expires_at IS NULL OR "
                             "expires_at > now()))"), live)
        self.assertGreaterEqual(live, CREDENTIALS)
        # Every environment has its database row, and every provisioning one its pending job.
        self.assertEqual(one("SELECT count(*) FROM envdb.sys_environment e WHERE NOT EXISTS (SELECT 1 FROM "
                             "envdb.sys_environment_database d WHERE d.environment_id = e.id)"), 0)
        self.assertEqual(one("SELECT count(*) FROM envdb.sys_environment e WHERE status = 'provisioning' AND "
                             "NOT EXISTS (SELECT 1 FROM envdb.sys_provisioning_job j WHERE j.environment_id = "
                             "e.id AND j.status = 'pending')"), 0)
        # Postgres-driver environments get their two first credentials with the row.
        self.assertEqual(one("SELECT count(*) FROM envdb.sys_environment_database d WHERE (SELECT count(*) FROM "
                             "envdb.sys_database_credential c WHERE c.database_id = d.id AND c.scope IN "
                             "('admin', 'readwrite')) < 2"), 0)


if __name__ == "__main__":
    unittest.main()
