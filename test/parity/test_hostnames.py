"""Hostnames and slugs, the same in both hosts: resolve_hostname answers exactly
what resolve_environment answers for the environment the hostname names, with
the same role rules; under a user context another environment's hostname is
not_found, worded as an unknown one; hostnames are stored normalized and unique;
an archived environment keeps its hostnames, a dropped one releases them;
find_environment answers what get_environment answers. Both hosts give the
same answers (ids and timestamps set aside)."""
import unittest

from hosts import HostError, Normalizer, PostgresHost, SqliteHost, postgres_available
from test_fail_closed import SCOPES, TOKENS, in_context


def setup(h):
    """An organization with two active turso environments, dev and prod, a
    viewer and an admin in dev, and a hostname each."""
    org = h.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
    envs = {}
    for slug in ("dev", "prod"):
        envs[slug] = h.call("provision_environment", org, slug, None, None, None, "turso")["environment"]["id"]
    for job in h.call("claim_provisioning_jobs", "turso", 10):
        h.call("complete_provisioning_job", job["id"], "libsql://x", TOKENS)
    for user, role in [("vera", "env_viewer"), ("ada", "env_admin")]:
        h.call("add_environment_member", envs["dev"], user, role)
    h.call("add_environment_hostname", envs["dev"], "App.Example.COM.")
    h.call("add_environment_hostname", envs["prod"], "prod.example.com")
    return org, envs["dev"], envs["prod"]


def refused(fn, *args):
    try:
        fn(*args)
    except HostError as e:
        return [e.code, e.message]
    raise AssertionError(f"{args} was not refused")


def answers(h, dev, prod):
    """A scenario's answers, for the comparison across hosts."""
    out = [h.call("add_environment_hostname", dev, "www.Example.com"),
           h.call("resolve_hostname", "www.example.com", "readonly"),
           h.call("find_environment", "acme", "prod"),
           h.call("remove_environment_hostname", "www.example.com")]
    for fn, args in [("resolve_hostname", ("www.example.com",)),
                     ("add_environment_hostname", (prod, "app.example.com")),
                     ("add_environment_hostname", (dev, "bad_name.example.com")),
                     ("find_environment", ("acme", "nope"))]:
        out.append(refused(h.call, fn, *args))
    return Normalizer()(out)


class HostnameScenario:
    host_class = None

    def setUp(self):
        self.h = self.host_class()
        self.org, self.dev, self.prod = setup(self.h)

    def tearDown(self):
        self.h.close()

    def refused(self, *call):
        with self.assertRaises(HostError) as caught:
            call[0](*call[1:])
        return caught.exception

    def events(self, action):
        return self.h.sql("select count(*) from envdb.sys_audit_event where action = '" + action + "'")[0][0]

    def test_hostnames_are_normalized_unique_and_audited(self):
        got = self.h.call("add_environment_hostname", self.dev, "app.example.com")
        self.assertEqual(got["hostname"]["hostname"], "app.example.com")
        self.assertEqual(got["hostname"]["environmentId"], self.dev)
        self.assertEqual(got["hostname"]["organizationId"], self.org)
        # The same name again for the same environment changes nothing; for another it is taken.
        self.assertEqual(self.events("environment.add_hostname"), 2)
        e = self.refused(self.h.call, "add_environment_hostname", self.prod, "APP.example.com")
        self.assertEqual(e.code, "already_exists")
        self.assertIn(self.dev, e.message)
        removed = self.h.call("remove_environment_hostname", "APP.EXAMPLE.COM")
        self.assertEqual(removed["hostname"]["environmentId"], self.dev)
        self.assertEqual(self.events("environment.remove_hostname"), 1)
        self.assertEqual(self.refused(self.h.call, "resolve_hostname", "app.example.com").code, "not_found")
        # Free again: another environment takes it.
        self.h.call("add_environment_hostname", self.prod, "app.example.com")
        self.assertEqual(self.h.call("resolve_hostname", "app.example.com")["environmentId"], self.prod)

    def test_resolve_hostname_answers_exactly_as_resolve_environment(self):
        for scope in SCOPES:
            with self.subTest(scope=scope):
                by_name = self.h.call("resolve_hostname", "APP.example.com", scope)
                by_id = self.h.call("resolve_environment", self.dev, scope)
                self.assertEqual(by_name, by_id)
                self.assertEqual(by_name["credential"]["token"], TOKENS[scope])
        self.assertEqual(self.h.call("resolve_hostname", "app.example.com"),
                         self.h.call("resolve_environment", self.dev))

    def test_role_rules_are_those_of_resolve_environment(self):
        for user in ("vera", "ada"):
            for scope in SCOPES:
                with self.subTest(user=user, scope=scope):
                    try:
                        by_id = in_context(self.h, self.dev, user, "resolve_environment", self.dev, scope)
                    except HostError as e:
                        by_name = self.refused(in_context, self.h, self.dev, user, "resolve_hostname",
                                               "app.example.com", scope)
                        self.assertEqual((by_name.code, by_name.message), (e.code, e.message))
                        continue
                    by_name = in_context(self.h, self.dev, user, "resolve_hostname", "app.example.com", scope)
                    self.assertEqual(by_name, by_id)
        # Another environment's hostname says no more than an unknown one.
        other = self.refused(in_context, self.h, self.dev, "ada", "resolve_hostname", "prod.example.com",
                             "readonly")
        unknown = self.refused(in_context, self.h, self.dev, "ada", "resolve_hostname", "nobody.example.com",
                               "readonly")
        self.assertEqual(other.code, "not_found")
        self.assertEqual(other.message.replace("prod.example.com", "X"),
                         unknown.message.replace("nobody.example.com", "X"))
        self.assertNotIn(self.prod, other.message)

    def test_archived_keeps_its_hostnames_and_dropped_releases_them(self):
        qa_id = self.h.call("provision_environment", self.org, "qa", None, None, None, "turso")["environment"]["id"]
        for job in self.h.call("claim_provisioning_jobs", "turso", 10):
            self.h.call("complete_provisioning_job", job["id"], "libsql://qa", TOKENS)
        self.h.call("add_environment_hostname", qa_id, "qa.example.com")
        self.h.call("archive_environment", qa_id, True)
        e = self.refused(self.h.call, "resolve_hostname", "qa.example.com")
        self.assertEqual(e.code, "conflict")
        self.assertEqual(e.message, self.refused(self.h.call, "resolve_environment", qa_id).message)
        self.assertEqual(self.refused(self.h.call, "add_environment_hostname", self.dev, "qa.example.com").code,
                         "already_exists")
        # An archived environment takes no new hostname.
        e = self.refused(self.h.call, "add_environment_hostname", qa_id, "qa2.example.com")
        self.assertEqual(e.code, "conflict")
        drop = self.h.call("drop_environment_database", qa_id, True)
        self.assertEqual(drop["job"]["kind"], "drop_database")
        # turso: released when the worker reports the drop, not before.
        self.assertEqual(self.refused(self.h.call, "resolve_hostname", "qa.example.com").code, "conflict")
        for _ in range(5):  # the archive's token jobs first, then the drop (the turso worker's part)
            for job in self.h.call("claim_provisioning_jobs", "turso", 10):
                self.h.call("complete_provisioning_job", job["id"], None, None)
        self.assertIsNotNone(self.h.call("get_environment", qa_id)["database"]["droppedAt"])
        self.assertEqual(self.refused(self.h.call, "resolve_hostname", "qa.example.com").code, "not_found")
        self.h.call("add_environment_hostname", self.dev, "qa.example.com")
        self.assertEqual(self.h.call("resolve_hostname", "qa.example.com")["environmentId"], self.dev)

    def test_find_environment_answers_as_get_environment(self):
        self.assertEqual(self.h.call("find_environment", "acme", "dev"), self.h.call("get_environment", self.dev))
        e = self.refused(self.h.call, "find_environment", "acme", "staging")
        self.assertEqual(e.code, "not_found")
        self.assertIn("staging", e.message)

class HostnamesSqlite(HostnameScenario, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class HostnamesPostgres(HostnameScenario, unittest.TestCase):
    host_class = PostgresHost

    def test_both_hosts_answer_alike(self):
        sqlite = SqliteHost()
        try:
            expected = answers(sqlite, *setup(sqlite)[1:])
        finally:
            sqlite.close()
        self.assertEqual(answers(self.h, self.dev, self.prod), expected)


if __name__ == "__main__":
    unittest.main()
