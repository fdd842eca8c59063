"""Fail closed, the same in both hosts: every new environment has active admin,
readwrite and readonly credentials (and a turso job asks for all three); a
user context resolves only its own environment and at most the scope the
user's role allows (env_viewer -> readonly, env_user and env_maker ->
readwrite, env_admin -> admin); a reveal that cannot be audited is refused.
SQLite: a connection's context follows the catalog (member removed, role
changed, environment suspended or archived), and a read-only control database
refuses a reveal it cannot audit."""
import os
import unittest

from hosts import HostError, PostgresHost, SqliteHost, postgres_available
from envdb_sqlite import call, connect

SCOPES = ["admin", "readwrite", "readonly"]
TOKENS = {scope: f"turso-{scope}-token" for scope in SCOPES}


def in_context(h, environment_id, user_id, fn, *args):
    """`fn` called under the context (environment_id, user_id), as a router
    does: Postgres binds a context to a transaction, so both run in one."""
    if h.name == "postgres":
        h.conn.autocommit = False
        try:
            h.call("set_active_environment", environment_id, user_id)
            return h.call(fn, *args)
        finally:
            h.conn.rollback()
            h.conn.autocommit = True
    h.call("set_active_environment", environment_id, user_id)
    try:
        return h.call(fn, *args)
    finally:
        h.call("clear_active_environment")


class FailClosedScenario:
    host_class = None

    def setUp(self):
        self.h = self.host_class()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.org = org["organization"]["id"]
        envs = {}
        for slug in ("dev", "prod"):
            env = self.h.call("provision_environment", self.org, slug, None, None, None, "turso")
            envs[slug] = env["environment"]["id"]
        for job in self.h.call("claim_provisioning_jobs", "turso", 10):
            self.h.call("complete_provisioning_job", job["id"], "libsql://x", TOKENS)
        self.dev, self.prod = envs["dev"], envs["prod"]
        for user, role in [("vera", "env_viewer"), ("uma", "env_user"), ("max", "env_maker"),
                           ("ada", "env_admin")]:
            self.h.call("add_environment_member", self.dev, user, role)

    def tearDown(self):
        self.h.close()

    def refused(self, *call):
        with self.assertRaises(HostError) as caught:
            call[0](*call[1:])
        return caught.exception

    def test_new_environments_get_every_scope(self):
        for driver in ("postgres", "turso"):
            env = self.h.call("provision_environment", self.org, f"new-{driver}", None, None, None, driver)
            if driver == "turso":
                # envdb cannot mint Turso tokens: the job asks the worker for all three.
                jobs = [j for j in self.h.call("claim_provisioning_jobs", "turso", 10)
                        if j["environmentId"] == env["environment"]["id"]]
                self.assertEqual(jobs[0]["payload"]["scopes"], SCOPES)
                self.h.call("complete_provisioning_job", jobs[0]["id"], "libsql://y", TOKENS)
            got = self.h.call("get_environment", env["environment"]["id"])
            active = sorted(c["scope"] for c in got["credentials"] if c["status"] == "active")
            self.assertEqual(active, sorted(SCOPES), driver)

    def test_each_role_resolves_at_most_its_scope(self):
        allowed = {"vera": ["readonly"], "uma": ["readwrite", "readonly"],
                   "max": ["readwrite", "readonly"], "ada": SCOPES}
        for user, scopes in allowed.items():
            for scope in SCOPES:
                with self.subTest(user=user, scope=scope):
                    if scope in scopes:
                        got = in_context(self.h, self.dev, user, "resolve_environment", self.dev, scope)
                        self.assertEqual(got["credential"]["token"], TOKENS[scope])
                    else:
                        e = self.refused(in_context, self.h, self.dev, user, "resolve_environment",
                                         self.dev, scope)
                        self.assertEqual(e.code, "permission_denied")
                        self.assertIn(scope, e.message)
        # The default scope (readwrite) is more than a viewer may take.
        e = self.refused(in_context, self.h, self.dev, "vera", "resolve_environment", self.dev)
        self.assertEqual(e.code, "permission_denied")

    def test_a_user_context_resolves_only_its_environment(self):
        e = self.refused(in_context, self.h, self.dev, "ada", "resolve_environment", self.prod, "readonly")
        self.assertEqual(e.code, "permission_denied")
        self.assertIn(self.prod, e.message)

    def test_the_router_without_a_user_resolves_any_scope(self):
        for scope in SCOPES:
            self.assertEqual(self.h.call("resolve_environment", self.dev, scope)["credential"]["token"],
                             TOKENS[scope])
            got = in_context(self.h, self.dev, None, "resolve_environment", self.prod, scope)
            self.assertEqual(got["credential"]["token"], TOKENS[scope])


class SqliteFailClosed(FailClosedScenario, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class PostgresFailClosed(FailClosedScenario, unittest.TestCase):
    host_class = PostgresHost


class SqliteRevealNeedsItsAuditRow(unittest.TestCase):
    """A control database opened read-only cannot take the audit row: the
    reveal fails instead of handing out the token unrecorded."""

    def test_read_only_reveal_is_refused(self):
        import sqlite3
        from envdb_sqlite import EXTENSION
        from hosts import TEST_KEY, TEST_KEY_ID
        h = SqliteHost()
        self.addCleanup(h.close)
        org = h.call("provision_organization", "acme", "Acme")
        credential = org["defaultEnvironment"]["credentials"][0]["id"]
        ro = sqlite3.connect(f"file:{os.path.join(h.dir.name, 'control.db')}?mode=ro", uri=True,
                             isolation_level=None)
        self.addCleanup(ro.close)
        ro.enable_load_extension(True)
        ro.load_extension(EXTENSION)
        ro.execute("select envdb_keyring_add(?, ?)", (TEST_KEY_ID, TEST_KEY))
        with self.assertRaises(sqlite3.Error) as caught:
            ro.execute("select envdb_reveal_credential(?)", (credential,)).fetchone()
        self.assertRegex(str(caught.exception), "^permission_denied: ")
        self.assertEqual(h.sql("select count(*) from sys_audit_event where action = 'credential.reveal'"),
                         [(0,)])
        # Writable, the same reveal is audited.
        self.assertEqual(len(h.call("reveal_credential", credential)), 43)
        self.assertEqual(h.sql("select count(*) from sys_audit_event where action = 'credential.reveal'"),
                         [(1,)])


class SqliteContextFollowsTheCatalog(unittest.TestCase):
    """A SQLite context lives as long as the connection, so every call first
    checks it against the catalog; a change made through another connection
    counts the same."""

    def setUp(self):
        self.h = SqliteHost()
        org = self.h.call("provision_organization", "acme", "Acme")
        self.env = org["defaultEnvironment"]["environment"]["id"]
        self.h.call("add_environment_member", self.env, "uma", "env_user")
        self.other = connect(os.path.join(self.h.dir.name, "control.db"))
        self.h.call("set_active_environment", self.env, "uma")
        self.assertEqual(self.h.call("current_context")["role"], "env_user")

    def tearDown(self):
        self.other.close()
        self.h.close()

    def elsewhere(self, fn, *args):
        call(self.other, fn, *args)

    def test_removing_the_member_clears_the_context(self):
        self.elsewhere("remove_environment_member", self.env, "uma")
        self.assertIsNone(self.h.call("current_context"))
        self.assertIsNone(self.h.call("current_environment_id"))

    def test_a_role_change_updates_the_context_and_its_scope(self):
        self.assertEqual(self.h.call("resolve_environment", self.env, "readwrite")["credential"]["scope"],
                         "readwrite")
        self.elsewhere("add_environment_member", self.env, "uma", "env_viewer")
        self.assertEqual(self.h.call("current_context")["role"], "env_viewer")
        with self.assertRaises(HostError) as caught:
            self.h.call("resolve_environment", self.env, "readwrite")
        self.assertEqual(caught.exception.code, "permission_denied")
        self.assertEqual(self.h.call("resolve_environment", self.env, "readonly")["credential"]["scope"],
                         "readonly")

    def test_suspending_clears_the_context(self):
        self.elsewhere("set_environment_status", self.env, "suspended")
        self.assertIsNone(self.h.call("current_organization_id"))

    def test_archiving_clears_the_context(self):
        org = self.h.call("provision_environment", self.h.call("current_organization_id"), "qa")
        qa = org["environment"]["id"]
        self.h.call("add_environment_member", qa, "uma", "env_admin")
        self.h.call("set_active_environment", qa, "uma")
        self.elsewhere("archive_environment", qa)
        self.assertIsNone(self.h.call("current_context"))

    def test_a_context_without_a_user_follows_the_environment(self):
        self.h.call("set_active_environment", self.env)
        self.h.sql("update envdb.sys_environment set status = 'suspended' where id = ?", (self.env,))
        self.assertIsNone(self.h.call("current_context"))


if __name__ == "__main__":
    unittest.main()
