"""The catalog enforces its invariants itself, not only through envdb's
functions: raw SQL that breaks one is refused in both hosts."""
import unittest

from hosts import AcmeScenario, PostgresHost, SqliteHost, postgres_available


class Invariants(AcmeScenario):
    def setUp(self):
        super().setUp()
        other = self.h.call("provision_organization", "globex", "Globex", None, None, "turso")
        self.other_org = other["organization"]["id"]

    def refused(self, sql, params=()):
        before = self.h.counts()
        with self.assertRaises(Exception):
            self.h.sql(sql, params)
        self.assertEqual(self.h.counts(), before)

    def insert_env(self, slug="x", env_type="development", status="active", is_default=False, org=None):
        return ("insert into envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
                "is_default, is_protected, status) values (?, ?, ?, 'X', ?, 'r', ?, ?, ?)",
                ("e-raw", org or self.org, slug, env_type, is_default, False, status))

    def test_one_default_environment_per_organization(self):
        self.refused(*self.insert_env(is_default=True))

    def test_slug_format(self):
        self.refused(*self.insert_env(slug="Not A Slug"))
        self.refused("update envdb.sys_organization set slug = '-x' where id = ?", (self.org,))

    def test_enums(self):
        self.refused(*self.insert_env(env_type="staging"))
        self.refused(*self.insert_env(status="deleted"))
        self.refused("update envdb.sys_environment_database set driver = 'oracle' where id = ?", (self.default_db,))

    def test_database_name_is_immutable(self):
        self.refused("update envdb.sys_environment_database set database_name = 'env-renamed' where id = ?",
                     (self.default_db,))

    def test_member_organization_matches_its_environment(self):
        self.refused("insert into envdb.sys_environment_member (id, environment_id, organization_id, user_id, role) "
                     "values ('m-raw', ?, ?, 'u1', 'env_user')", (self.dev, self.other_org))

    def test_one_active_credential_per_database_and_scope(self):
        self.h.call("issue_credential", self.default_db, "readonly", "tok-1")
        self.h.call("issue_credential", self.default_db, "readonly", "tok-2")  # tok-1 is now rotating
        self.refused("update envdb.sys_database_credential set status = 'active' where database_id = ? "
                     "and status <> 'active'", (self.default_db,))

    def test_foreign_keys(self):
        self.refused(*self.insert_env(org="no-such-org"))

    def test_audit_is_append_only(self):
        self.refused("delete from envdb.sys_audit_event")
        self.refused("update envdb.sys_audit_event set action = 'x'")


class InvariantsSqlite(Invariants, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class InvariantsPostgres(Invariants, unittest.TestCase):
    host_class = PostgresHost


if __name__ == "__main__":
    unittest.main()
