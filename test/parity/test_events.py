"""Events, the same in both hosts: every audit event gets a number in commit
order and events_since reads them by that cursor (provision, suspend, rotate,
archive; paging; no token anywhere). Postgres: a psycopg2 client that LISTENs
on envdb_events receives each event as its transaction commits, with the same
keys and numbers events_since returns; a transaction that commits late cannot
land behind a reader's cursor. The Node.js pg client does the same in
test/clients (node-pg-events)."""
import json
import select
import threading
import time
import unittest

from hosts import HostError, Normalizer, PostgresHost, SqliteHost, postgres_available

TOKENS = ["tok-first-aaaaaaaaaaaaaaaaaaaa", "tok-rotated-bbbbbbbbbbbbbbbbbb"]
KEYS = ["action", "credentialId", "environmentId", "id", "occurredAt", "organizationId", "seq"]


def scenario(h):
    """Provision, suspend, resume, rotate and archive one turso environment;
    returns the environment id."""
    org = h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
    dev = h.call("provision_environment", org, "dev", None, None, None, "turso")
    for job in h.call("claim_provisioning_jobs", "turso", 10):
        h.call("complete_provisioning_job", job["id"], "libsql://dev", {"readwrite": TOKENS[0]})
    env = dev["environment"]["id"]
    h.call("set_environment_status", env, "suspended")
    h.call("set_environment_status", env, "active")
    h.call("rotate_credential", dev["database"]["id"], "readwrite", None, TOKENS[1])
    h.call("archive_environment", env, True)
    return env


class EventScenario:
    host_class = None

    def setUp(self):
        self.h = self.host_class()

    def tearDown(self):
        self.h.close()

    def test_events_since_reads_the_trail_in_order(self):
        env = scenario(self.h)
        got = self.h.call("events_since", 0, 1000)
        events = got["events"]
        self.assertEqual(got["cursor"], events[-1]["seq"])
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, sorted(set(seqs)))
        self.assertEqual(len(events), self.h.sql("select count(*) from envdb.sys_audit_event")[0][0])
        for e in events:
            self.assertEqual(sorted(e), KEYS)
        actions = [e["action"] for e in events if e["environmentId"] == env]
        for want in ("environment.provision", "environment.status", "credential.rotate",
                     "environment.archive"):
            self.assertIn(want, actions)
        self.assertLess(actions.index("environment.provision"), actions.index("environment.status"))
        self.assertLess(actions.index("credential.rotate"), actions.index("environment.archive"))
        rotate = next(e for e in events if e["action"] == "credential.rotate")
        self.assertIsNotNone(rotate["credentialId"])
        text = json.dumps(got)
        for token in TOKENS:
            self.assertNotIn(token, text)
        # Paging by the cursor gives the same sequence; past the end, nothing and the same cursor.
        paged, cursor = [], 0
        while True:
            page = self.h.call("events_since", cursor, 2)
            if not page["events"]:
                self.assertEqual(page["cursor"], cursor)
                break
            self.assertLessEqual(len(page["events"]), 2)
            paged += page["events"]
            cursor = page["cursor"]
        self.assertEqual(paged, events)
        self.assertEqual(self.h.call("events_since", cursor)["events"], [])

    def test_bad_cursor_and_limit(self):
        for args, field in [((-1,), "cursor"), ((None,), "cursor"), ((0, 0), "max_events"), ((0, 1001), "max_events")]:
            with self.subTest(args=args):
                with self.assertRaises(HostError) as caught:
                    self.h.call("events_since", *args)
                self.assertEqual(caught.exception.code, "invalid_parameter")
                self.assertIn(field, caught.exception.message)


class EventsSqlite(EventScenario, unittest.TestCase):
    host_class = SqliteHost


def normalized_actions(h):
    return Normalizer()([[e["action"], e["environmentId"], e["credentialId"]]
                         for e in h.call("events_since", 0, 1000)["events"]])


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class EventsPostgres(EventScenario, unittest.TestCase):
    host_class = PostgresHost

    def listener(self):
        import psycopg2
        conn = psycopg2.connect(dbname=self.h.dbname)
        conn.autocommit = True
        conn.cursor().execute("LISTEN envdb_events")
        return conn

    def notifications(self, conn, count, timeout=10):
        got, deadline = [], time.time() + timeout
        while len(got) < count and time.time() < deadline:
            if select.select([conn], [], [], 0.2)[0]:
                conn.poll()
                while conn.notifies:
                    n = conn.notifies.pop(0)
                    self.assertEqual(n.channel, "envdb_events")
                    got.append(n.payload)
        return got

    def test_a_listen_client_receives_every_event_without_a_token(self):
        conn = self.listener()
        try:
            env = scenario(self.h)
            since = self.h.call("events_since", 0, 1000)["events"]
            payloads = self.notifications(conn, len(since))
            self.assertEqual(len(payloads), len(since))
            for text in payloads:
                self.assertLess(len(text.encode()), 8000)
                for token in TOKENS:
                    self.assertNotIn(token, text)
            events = [json.loads(p) for p in payloads]
            self.assertEqual(events, [{k: v for k, v in e.items() if k != "occurredAt"} for e in since])
            actions = [e["action"] for e in events if e["environmentId"] == env]
            for want in ("environment.provision", "environment.status", "credential.rotate",
                         "environment.archive"):
                self.assertIn(want, actions)
        finally:
            conn.close()

    def test_the_sequence_is_the_same_in_both_hosts(self):
        scenario(self.h)
        sqlite = SqliteHost()
        try:
            scenario(sqlite)
            self.assertEqual(normalized_actions(self.h), normalized_actions(sqlite))
        finally:
            sqlite.close()

    def test_nothing_commits_behind_a_readers_cursor(self):
        """A transaction that wrote its event first but commits last still gets
        the larger number, and a rolled-back one leaves no event."""
        import psycopg2
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        slow = psycopg2.connect(dbname=self.h.dbname)
        try:
            cur = slow.cursor()  # not autocommit: its event waits for the commit
            cur.execute("SELECT envdb.provision_environment(%s, 'slow', driver => 'turso')", (org,))
            cur.execute("SELECT a.seq FROM envdb.sys_audit_event a JOIN envdb.sys_environment e "
                        "ON e.id = a.environment_id WHERE a.action = 'environment.provision' AND e.slug = 'slow'")
            self.assertEqual(cur.fetchall(), [(None,)])  # no number before the commit
            self.h.call("provision_environment", org, "fast", None, None, None, "turso")
            cursor = self.h.call("events_since", 0, 1000)["cursor"]
            slow.commit()
            late = self.h.call("events_since", cursor)["events"]
            self.assertEqual([e["action"] for e in late], ["environment.provision"])
            self.assertGreater(late[0]["seq"], cursor)
            cur.execute("SELECT envdb.provision_environment(%s, 'never', driver => 'turso')", (org,))
            slow.rollback()
            self.assertEqual(self.h.call("events_since", late[0]["seq"])["events"], [])
        finally:
            slow.close()

    def test_concurrent_writers_number_without_gaps_or_repeats(self):
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        start = self.h.call("events_since", 0, 1000)["cursor"]
        errors = []

        def writer(n):
            try:
                import psycopg2
                conn = psycopg2.connect(dbname=self.h.dbname)
                conn.autocommit = True
                for i in range(5):
                    conn.cursor().execute("SELECT envdb.add_environment_member(e.id, %s, 'env_user') "
                                          "FROM envdb.sys_environment e WHERE e.organization_id = %s",
                                          (f"user-{n}-{i}", org))
                conn.close()
            except Exception as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        events = self.h.call("events_since", start, 1000)["events"]
        self.assertEqual(len(events), 20)
        seqs = [e["seq"] for e in events]
        self.assertEqual(seqs, list(range(start + 1, start + 21)))


if __name__ == "__main__":
    unittest.main()
