"""Concurrency on Postgres, over loopback, bounded in clients and time:

- 16 clients provisioning the same slug at once: exactly one succeeds, the 15
  others get already_exists naming the slug (never a unique-violation message);
- 16 clients rotating one credential for ENVDB_ROTATION_SECONDS (30 s in make
  check) while a sampler checks, again and again, that every (database, scope)
  has exactly one active credential; afterwards every rotation a client was
  told about is a row and an audit event, and nothing else is;
- 16 claimers of claim_provisioning_jobs never share a job, and every job is
  claimed once.

The contract for rotations: calls on one database serialise on its row lock,
so every concurrent rotation succeeds, one after the other."""
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import TEST_KEY, TEST_KEY_ID, PostgresHost, postgres_available  # noqa: E402
from envdb_calls import CODE_RE  # noqa: E402

CLIENTS = 16
ROTATION_SECONDS = float(os.environ.get("ENVDB_ROTATION_SECONDS", "30"))


def figure(line):
    """A figure for the report: printed, and kept in build/ for the README."""
    print(f"\n  [concurrency] {line}", flush=True)


class Clients:
    """CLIENTS connections to the host's database, each with the test keyring."""

    def __init__(self, host, n=CLIENTS):
        import psycopg2
        self.psycopg2 = psycopg2
        self.conns = []
        for _ in range(n):
            conn = psycopg2.connect(dbname=host.dbname)
            conn.autocommit = True
            conn.cursor().execute("SELECT set_config('envdb.keyring_command', %s, false)",
                                  (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))
            self.conns.append(conn)

    def close(self):
        for c in self.conns:
            c.close()

    def run(self, work, timeout=120):
        """Runs work(index, connection) on every client at once (a barrier
        releases them together); returns the results, or raises the first
        unexpected exception."""
        barrier = threading.Barrier(len(self.conns))
        results = [None] * len(self.conns)
        errors = []

        def one(i):
            try:
                barrier.wait(timeout=30)
                results[i] = work(i, self.conns[i])
            except Exception as e:  # reported below, with the client's number
                errors.append((i, e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(self.conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("a client did not finish in time")
        if errors:
            raise AssertionError(f"client {errors[0][0]} failed: {errors[0][1]!r}")
        return results


def outcome(conn, sql, params, hold=0.0):
    """('ok', value) or (code, sentence) for one call in its own transaction.
    A successful call keeps its transaction open `hold` seconds before it
    commits, so that the others meet its uncommitted rows."""
    import psycopg2
    conn.autocommit = False
    cur = conn.cursor()
    try:
        cur.execute(sql, params)
        value = cur.fetchone()[0]
        if hold:
            time.sleep(hold)
        conn.commit()
        return ("ok", value)
    except psycopg2.Error as e:
        conn.rollback()
        m = CODE_RE.search(e.pgerror or str(e))
        return (m.group(1), m.group(2).strip().splitlines()[0]) if m else ("unknown", str(e))
    finally:
        conn.autocommit = True


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Concurrency(unittest.TestCase):
    def setUp(self):
        self.h = PostgresHost()
        self.clients = Clients(self.h)

    def tearDown(self):
        self.clients.close()
        self.h.close()

    def assert_one_winner(self, results, slug):
        winners = [r for r in results if r[0] == "ok"]
        losers = [r for r in results if r[0] != "ok"]
        self.assertEqual(len(winners), 1, results)
        self.assertEqual(len(losers), CLIENTS - 1)
        for code, sentence in losers:
            self.assertEqual(code, "already_exists", sentence)
            self.assertIn(f"'{slug}'", sentence)
            self.assertNotIn("duplicate key", sentence)
            self.assertNotIn("constraint", sentence)
        return winners[0][1]

    def test_same_environment_slug_from_16_clients(self):
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        started = time.monotonic()
        # The first winner holds its transaction open for a moment: every
        # other client has then passed the slug check and meets the race.
        results = self.clients.run(lambda i, conn: outcome(
            conn, "SELECT envdb.provision_environment(%s, 'race', driver => 'turso')", (org,), hold=0.5))
        won = self.assert_one_winner(results, "race")
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_environment where slug = 'race'"), [(1,)])
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_provisioning_job where environment_id = %s",
                                    (won["environment"]["id"],)), [(1,)])
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_audit_event where action = "
                                    "'environment.provision' and environment_id = %s",
                                    (won["environment"]["id"],)), [(1,)])
        figure(f"provision_environment, one slug, {CLIENTS} clients: 1 succeeded, "
               f"{CLIENTS - 1} already_exists, {time.monotonic() - started:.2f} s")

    def test_same_environment_slug_with_if_not_exists(self):
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        results = self.clients.run(lambda i, conn: outcome(
            conn, "SELECT envdb.provision_environment(%s, 'race', driver => 'turso', if_not_exists => true)",
            (org,), hold=0.3))
        self.assertEqual([r[0] for r in results], ["ok"] * CLIENTS, results)
        ids = {r[1]["environment"]["id"] for r in results}
        self.assertEqual(len(ids), 1)
        self.assertEqual(sum(1 for r in results if r[1]["warnings"]), CLIENTS - 1)

    def test_same_organization_slug_from_16_clients(self):
        started = time.monotonic()
        results = self.clients.run(lambda i, conn: outcome(
            conn, "SELECT envdb.provision_organization('acme', %s, driver => 'turso')", (f"Acme {i}",), hold=0.5))
        won = self.assert_one_winner(results, "acme")
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_organization"), [(1,)])
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_environment"), [(1,)])
        self.assertEqual(self.h.sql("select name from envdb.sys_organization"), [(won["organization"]["name"],)])
        figure(f"provision_organization, one slug, {CLIENTS} clients: 1 succeeded, "
               f"{CLIENTS - 1} already_exists, {time.monotonic() - started:.2f} s")

    def test_same_organization_id_from_16_clients(self):
        results = self.clients.run(lambda i, conn: outcome(
            conn, "SELECT envdb.provision_organization(%s, 'Acme', id => 'org-fixed', driver => 'turso')",
            (f"acme-{i}",), hold=0.3))
        self.assertEqual(sum(1 for r in results if r[0] == "ok"), 1, results)
        for code, sentence in (r for r in results if r[0] != "ok"):
            self.assertEqual(code, "already_exists", sentence)
            self.assertIn("'org-fixed'", sentence)
            self.assertNotIn("duplicate key", sentence)

    def test_rotating_one_credential_from_16_clients(self):
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "postgres")
        database = org["defaultEnvironment"]["database"]["id"]
        first = self.h.sql("select id from envdb.sys_database_credential where database_id = %s and "
                           "scope = 'readwrite' and status = 'active'", (database,))[0][0]
        stop = time.monotonic() + ROTATION_SECONDS
        samples = []
        bad_samples = []
        sampling = threading.Event()

        def sampler():
            import psycopg2
            conn = psycopg2.connect(dbname=self.h.dbname)
            conn.autocommit = True
            cur = conn.cursor()
            while not sampling.is_set():
                cur.execute("SELECT database_id, scope, count(*) FILTER (WHERE status = 'active') "
                            "FROM envdb.sys_database_credential GROUP BY 1, 2")
                rows = cur.fetchall()
                samples.append(len(rows))
                bad = [r for r in rows if r[2] != 1]
                if bad or not rows:
                    bad_samples.append(rows)
            conn.close()

        def rotate(i, conn):
            done = []
            cur = conn.cursor()
            while time.monotonic() < stop:
                cur.execute("SELECT envdb.rotate_credential(%s, 'readwrite', interval '1 day')", (database,))
                r = cur.fetchone()[0]
                done.append((r["credential"]["id"], r["previous"]["id"]))
            return done

        watcher = threading.Thread(target=sampler)
        watcher.start()
        started = time.monotonic()
        try:
            results = self.clients.run(rotate, timeout=ROTATION_SECONDS + 60)
        finally:
            sampling.set()
            watcher.join()
        elapsed = time.monotonic() - started
        rotations = [pair for client in results for pair in client]
        reported = len(rotations)

        self.assertEqual(bad_samples[:3], [], "a sample saw a (database, scope) without exactly one active credential")
        self.assertGreater(len(samples), 100)
        self.assertTrue(all(len(client) > 0 for client in results), "a client never got a rotation through")
        # Nothing lost: each rotation a client was told about is one row and
        # one audit event, and each replaced a different credential.
        created = self.h.sql("select id, rotated_from from envdb.sys_database_credential where database_id = %s "
                             "and scope = 'readwrite' and rotated_from is not null", (database,))
        self.assertEqual(len(created), reported)
        self.assertEqual(dict(created), dict(rotations))
        events = self.h.sql("select subject_id from envdb.sys_audit_event where action = 'credential.rotate'")
        self.assertEqual(sorted(e[0] for e in events), sorted(c for c, _ in rotations))
        previous = [p for _, p in rotations]
        self.assertEqual(len(set(previous)), reported, "two rotations replaced the same credential")
        # One unbroken chain from the first credential to the active one.
        successor = {p: c for c, p in rotations}
        link, length = first, 0
        while link in successor:
            link, length = successor[link], length + 1
        self.assertEqual(length, reported)
        active = self.h.sql("select id from envdb.sys_database_credential where database_id = %s and "
                            "scope = 'readwrite' and status = 'active'", (database,))
        self.assertEqual(active, [(link,)])
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_database_credential where database_id = %s "
                                    "and scope = 'readwrite' and status = 'rotating'", (database,)), [(reported,)])
        figure(f"rotate_credential, one credential, {CLIENTS} clients for {elapsed:.1f} s: {reported} rotations "
               f"({reported / elapsed:.0f}/s), none lost, {len(samples)} samples all with exactly one active "
               f"credential per (database, scope)")

    def test_claimers_never_share_a_job(self):
        jobs = 240
        self.h.sql("select envdb.provision_organization('acme', 'Acme', driver => 'turso')")
        org = self.h.sql("select id from envdb.sys_organization")[0][0]
        for i in range(jobs - 1):  # the default environment queued the first job
            self.h.call("provision_environment", org, f"env-{i}", None, None, None, "turso")
        pending = {r[0] for r in self.h.sql("select id from envdb.sys_provisioning_job where status = 'pending'")}
        self.assertEqual(len(pending), jobs)

        def claim(i, conn):
            mine = []
            rnd = random.Random(i)
            empty_rounds = 0
            while empty_rounds < 3:
                # Each claim holds its transaction a moment, so the others
                # must skip the rows it has locked.
                conn.autocommit = False
                cur = conn.cursor()
                cur.execute("SELECT envdb.claim_provisioning_jobs('turso', %s, %s)", (rnd.randint(1, 4), f"w{i}"))
                got = cur.fetchone()[0]
                time.sleep(rnd.random() * 0.005)
                conn.commit()
                conn.autocommit = True
                mine.extend(j["id"] for j in got)
                empty_rounds = 0 if got else empty_rounds + 1
            return mine

        started = time.monotonic()
        results = self.clients.run(claim)
        elapsed = time.monotonic() - started
        claimed = [j for client in results for j in client]
        self.assertEqual(len(claimed), len(set(claimed)), "a job was claimed twice")
        self.assertEqual(set(claimed), pending)
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_provisioning_job where status = 'running' "
                                    "and attempts = 1"), [(jobs,)])
        workers = dict(self.h.sql("select id, worker from envdb.sys_provisioning_job"))
        for i, client in enumerate(results):
            for job in client:
                self.assertEqual(workers[job], f"w{i}")
        audited = [j for (ids,) in self.h.sql("select detail -> 'jobIds' from envdb.sys_audit_event "
                                              "where action = 'job.claim'") for j in ids]
        self.assertEqual(sorted(audited), sorted(claimed))
        busy = sum(1 for client in results if client)
        figure(f"claim_provisioning_jobs, {CLIENTS} claimers: {jobs} jobs claimed once each by {busy} "
               f"claimers, none shared, {elapsed:.2f} s")


if __name__ == "__main__":
    unittest.main()
