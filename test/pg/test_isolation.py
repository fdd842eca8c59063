"""Postgres isolation, failing closed:

- envdb_reader with no context reads zero rows from every catalog table (and
  the v4 view) and gets no answer from any getter; with the context a router
  set in the same transaction it reads only that organization.
- Only the trusted router speaks for a user: a reader cannot call
  set_active_environment, so it cannot claim another organization's member.
- set_active_environment outside a transaction block is refused: the context
  would end with that statement.
- reveal_credential in a READ ONLY transaction (no audit row can be written)
  is refused unless allow_unaudited_reveal is on.
- A router that leaves its transaction open after the last_accessed_at touch
  does not block rotate_credential or issue_credential (lock_timeout bounds
  the wait; before, they waited for the router's row lock), whether the
  resolve writes the touch itself or the database worker does."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import HostError, PostgresHost, TEST_KEY, TEST_KEY_ID, postgres_available  # noqa: E402

GETTERS = [("get_environment", "SELECT envdb.get_environment(%s)", ()),
           ("environment_role", "SELECT envdb.environment_role(%s, 'acme-user')", ()),
           ("check_environment_access", "SELECT envdb.check_environment_access(%s, 'acme-user', 'read')", ())]


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Isolation(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import psycopg2
        cls.psycopg2 = psycopg2
        cls.h = h = PostgresHost()
        cls.orgs = {}
        for slug in ("acme", "globex"):
            org = h.call("provision_organization", slug, slug.title(), None, None, "turso")
            env = h.call("provision_environment", org["organization"]["id"], "dev", None, None, None, "turso")
            for job in h.call("claim_provisioning_jobs", "turso", 10):
                h.call("complete_provisioning_job", job["id"], "libsql://x",
                       {"admin": "a", "readwrite": "w", "readonly": "r"})
            h.call("add_environment_member", env["environment"]["id"], f"{slug}-user", "env_user")
            h.call("add_environment_hostname", env["environment"]["id"], f"{slug}.example.com")
            h.call("report_environment_usage", env["environment"]["id"], 4096)  # sys_environment_usage
            cls.orgs[slug] = (org["organization"]["id"], env["environment"]["id"], env["database"]["id"])
        # A backup of each (its job left pending), so that every catalog table has rows.
        for _, env_id, _ in cls.orgs.values():
            h.call("backup_environment", env_id, "v1")
        # A registered host, so that every catalog table has rows.
        h.call("add_database_host", "h1", "eu-west", "db.example", 5432, "postgres", "pw", "postgres", None, False)
        cls.suffix = os.getpid()
        cls.reader = f"envdb_iso_reader_{cls.suffix}"
        cls.router = f"envdb_iso_router_{cls.suffix}"
        h.sql(f'DROP ROLE IF EXISTS "{cls.reader}"')
        h.sql(f'DROP ROLE IF EXISTS "{cls.router}"')
        h.sql(f'CREATE ROLE "{cls.reader}" LOGIN IN ROLE envdb_reader')
        # The application's router: it sets the context, then reads as the reader.
        h.sql(f'CREATE ROLE "{cls.router}" LOGIN IN ROLE envdb_router')
        h.sql(f'GRANT "{cls.reader}" TO "{cls.router}"')
        cls.tables = [t for (t,) in h.sql("select tablename from pg_tables where schemaname = 'envdb' order by 1")]

    @classmethod
    def tearDownClass(cls):
        cls.h.sql("reset role")
        cls.h.close()
        admin = cls.psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        for role in (cls.reader, cls.router):
            admin.cursor().execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()

    def connect(self, role=None):
        conn = self.psycopg2.connect(dbname=self.h.dbname)
        conn.cursor().execute("SELECT set_config('envdb.keyring_command', %s, false)",
                              (f"printf '{TEST_KEY_ID} {TEST_KEY}\\n'",))
        if role:
            conn.cursor().execute(f'SET ROLE "{role}"')
        conn.commit()
        self.addCleanup(conn.close)
        return conn

    def outcome(self, cur, sql, params=()):
        """('ok', rows) or (sqlstate, message); a failed statement rolls back."""
        try:
            cur.execute(sql, params)
            return "ok", cur.fetchall() if cur.description else None
        except self.psycopg2.Error as e:
            cur.connection.rollback()
            return e.pgcode, e.pgerror

    def test_reader_without_a_context_sees_nothing(self):
        self.assertGreaterEqual(len(self.tables), 9)
        cur = self.connect(self.reader).cursor()
        for table in self.tables + ["sys_tenant_database"]:
            with self.subTest(table=table):
                self.assertGreater(self.h.sql(f"select count(*) from envdb.{table}")[0][0], 0)
                self.assertEqual(self.outcome(cur, f"select count(*) from envdb.{table}"), ("ok", [(0,)]))
        _, env, _ = self.orgs["acme"]
        for name, sql, _ in GETTERS:
            with self.subTest(getter=name):
                state, message = self.outcome(cur, sql, (env,))
                self.assertEqual(state, "42501", message)
                self.assertIn("permission_denied", message)
        for fn in ("current_context", "current_environment_id", "current_organization_id"):
            self.assertEqual(self.outcome(cur, f"select envdb.{fn}()"), ("ok", [(None,)]))

    def test_reader_inside_the_routers_context_sees_its_organization_only(self):
        acme_org, acme_env, _ = self.orgs["acme"]
        _, globex_env, _ = self.orgs["globex"]
        conn = self.connect(self.router)
        cur = conn.cursor()
        cur.execute("select envdb.set_active_environment(%s, 'acme-user')", (acme_env,))
        cur.execute(f'SET LOCAL ROLE "{self.reader}"')
        for table in self.tables:
            with self.subTest(table=table):
                state, rows = self.outcome(cur, f"select count(*) from envdb.{table}")
                self.assertEqual(state, "ok", rows)
                if table != "sys_database_host":  # no acme database lives on a registered host
                    self.assertGreater(rows[0][0], 0)
        self.assertEqual(self.outcome(cur, "select distinct organization_id from envdb.sys_environment"),
                         ("ok", [(acme_org,)]))
        self.assertEqual(self.outcome(cur, "select count(*) from envdb.sys_database_host"), ("ok", [(0,)]))
        state, rows = self.outcome(cur, "select envdb.get_environment(%s)", (acme_env,))
        self.assertEqual((state, rows[0][0]["environment"]["id"]), ("ok", acme_env))
        self.assertEqual(self.outcome(cur, GETTERS[1][1], (acme_env,)), ("ok", [("env_user",)]))
        self.assertEqual(self.outcome(cur, GETTERS[2][1], (acme_env,)), ("ok", [(True,)]))
        # Another organization's environment is not_found, worded as a missing one.
        for name, sql, _ in GETTERS:
            conn.rollback()
            cur.execute("select envdb.set_active_environment(%s, 'acme-user')", (acme_env,))
            cur.execute(f'SET LOCAL ROLE "{self.reader}"')
            with self.subTest(getter=name):
                state, message = self.outcome(cur, sql, (globex_env,))
                self.assertEqual(state, "P0002", message)
                self.assertIn(f"environment_id '{globex_env}' names no environment", message)
        conn.rollback()

    def test_a_reader_cannot_speak_for_a_user(self):
        _, globex_env, _ = self.orgs["globex"]
        cur = self.connect(self.reader).cursor()
        state, message = self.outcome(cur, "select envdb.set_active_environment(%s, 'globex-user')",
                                      (globex_env,))
        self.assertEqual(state, "42501", message)
        self.assertEqual(self.outcome(cur, "select count(*) from envdb.sys_environment"), ("ok", [(0,)]))
        # Even granted EXECUTE by a careless DBA, the core refuses a caller below the router.
        self.h.sql("grant execute on function envdb.set_active_environment(text, text) to envdb_reader")
        cur.connection.rollback()  # a new transaction sees the new privilege
        try:
            state, message = self.outcome(cur, "select envdb.set_active_environment(%s, 'globex-user')",
                                          (globex_env,))
            self.assertEqual(state, "42501", message)
            self.assertIn("permission_denied", message)
        finally:
            self.h.sql("revoke execute on function envdb.set_active_environment(text, text) from envdb_reader")

    def test_setting_a_context_in_autocommit_is_refused(self):
        _, env, _ = self.orgs["acme"]
        with self.assertRaises(HostError) as caught:
            self.h.call("set_active_environment", env, "acme-user")
        self.assertEqual(caught.exception.code, "conflict")
        self.assertIn("transaction block", caught.exception.message)
        # Inside one it works, and several statements in one query count as one.
        cur = self.h.conn.cursor()
        cur.execute("select envdb.set_active_environment(%s, 'acme-user'); "
                    "select envdb.current_environment_id()", (env,))
        self.assertEqual(cur.fetchone()[0], env)
        self.assertEqual(self.h.sql("select envdb.current_environment_id()"), [(None,)])

    def test_a_reveal_that_cannot_be_audited_is_refused(self):
        _, _, db = self.orgs["acme"]
        credential = self.h.sql("select id from envdb.sys_database_credential where database_id = %s "
                                "and scope = 'readonly' and status = 'active'", (db,))[0][0]
        audits = "select count(*) from envdb.sys_audit_event where action = 'credential.reveal'"
        before = self.h.sql(audits)[0][0]
        conn = self.connect()
        conn.set_session(readonly=True)
        cur = conn.cursor()
        state, message = self.outcome(cur, "select envdb.reveal_credential(%s)", (credential,))
        self.assertEqual(state, "42501", message)
        self.assertIn("no audit event can be written", message)
        self.assertEqual(self.h.sql(audits)[0][0], before)
        self.h.call("config", "allow_unaudited_reveal", "on")
        try:
            self.assertEqual(self.outcome(cur, "select envdb.reveal_credential(%s)", (credential,)),
                             ("ok", [("r",)]))
            conn.rollback()
        finally:
            self.h.call("config", "allow_unaudited_reveal", "off")
        self.assertEqual(self.h.sql(audits)[0][0], before)
        # Where the audit row can be written, the reveal is audited.
        self.assertEqual(self.h.call("reveal_credential", credential), "r")
        self.assertEqual(self.h.sql(audits)[0][0], before + 1)

    def test_repeated_reveals_are_counted_not_appended(self):
        _, _, db = self.orgs["globex"]
        credential = self.h.sql("select id from envdb.sys_database_credential where database_id = %s "
                                "and scope = 'admin' and status = 'active'", (db,))[0][0]
        events = ("select count(*), sum((detail->>'count')::int) from envdb.sys_audit_event "
                  "where action = 'credential.reveal' and subject_id = %s")
        for _ in range(30):
            self.assertEqual(self.h.call("reveal_credential", credential), "a")
        rows, total = self.h.sql(events, (credential,))[0]
        self.assertEqual(total, 30)
        self.assertLessEqual(rows, 2)  # 2 only when a minute boundary fell inside the loop
        # The exception is narrow: nothing but a reveal event's detail may change.
        for sql in ("update envdb.sys_audit_event set actor = 'x' where subject_id = %s",
                    "update envdb.sys_audit_event set detail = '{}' where action <> 'credential.reveal' "
                    "and subject_id <> %s",
                    "delete from envdb.sys_audit_event where subject_id = %s"):
            with self.subTest(sql=sql):
                with self.assertRaisesRegex(self.psycopg2.Error, "append-only"):
                    self.h.sql(sql, (credential,))

    def test_a_router_holding_its_touch_does_not_block_credential_writes(self):
        """Both ways of stamping last_accessed_at: written by the resolve itself
        (envdb.deferred_touches off, as without the preload), which takes the row
        lock with SKIP LOCKED, and recorded for the database worker (the
        default with the preload), which writes nothing in the router's
        transaction."""
        _, env, db = self.orgs["acme"]
        for deferred in (False, True):
            with self.subTest(deferred=deferred):
                self.h.sql("update envdb.sys_environment_database set last_accessed_at = NULL where id = %s",
                           (db,))
                router = self.connect(self.router)
                rcur = router.cursor()
                rcur.execute("select set_config('envdb.deferred_touches', %s, false)",
                             ("on" if deferred else "off",))
                router.commit()
                rcur.execute("select envdb.resolve_environment(%s)", (env,))  # touches last_accessed_at ...
                # ... and keeps its transaction open.
                locks = self.h.sql("select count(*) from pg_locks where pid = %s and locktype = 'transactionid'",
                                   (router.get_backend_pid(),))[0][0]
                if deferred:
                    self.assertEqual(locks, 0, "the router's resolve wrote in its transaction")
                else:
                    self.assertGreater(locks, 0, "the router's touch wrote nothing")
                admin = self.connect()
                acur = admin.cursor()
                acur.execute("set lock_timeout = '3s'")
                writes = (("select envdb.rotate_credential(%s, 'readwrite', token => 'w3')",
                           "select envdb.rotate_credential(%s, 'readonly', token => 'r3')") if deferred else
                          ("select envdb.rotate_credential(%s, 'readwrite', token => 'w2')",
                           "select envdb.issue_credential(%s, 'readonly', 'r2')"))
                for sql in writes:
                    state, rows = self.outcome(acur, sql, (db,))
                    self.assertEqual(state, "ok", rows)
                    admin.commit()
                router.commit()
                deadline = time.time() + 30  # deferred: the database worker's next pass
                while self.h.sql("select last_accessed_at from envdb.sys_environment_database where id = %s",
                                 (db,))[0][0] is None and time.time() < deadline:
                    time.sleep(0.2)
                self.assertIsNotNone(self.h.sql("select last_accessed_at from envdb.sys_environment_database "
                                                "where id = %s", (db,))[0][0])

if __name__ == "__main__":
    unittest.main()
