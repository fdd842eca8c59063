"""Postgres context and row-level security: the active environment lives for
one transaction, cannot be forged with SET, and limits what envdb_reader sees
to its organization (nothing at all without one: test_isolation.py)."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sqlite"))
from envdb_sqlite import documented_functions  # noqa: E402
from hosts import HostError, PostgresHost, postgres_available  # noqa: E402


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Context(unittest.TestCase):
    def setUp(self):
        self.h = PostgresHost()
        self.orgs = {}
        for slug in ("acme", "globex"):
            org = self.h.call("provision_organization", slug, slug.title(), None, None, "turso")
            env = self.h.call("provision_environment", org["organization"]["id"], "dev", None, None, None, "turso")
            for job in self.h.call("claim_provisioning_jobs", "turso", 10):
                self.h.call("complete_provisioning_job", job["id"], "libsql://x", {"readwrite": "t"})
            self.h.call("add_environment_member", env["environment"]["id"], f"{slug}-user", "env_user")
            self.orgs[slug] = (org["organization"]["id"], env["environment"]["id"])

    def tearDown(self):
        self.h.sql("reset role")
        self.h.close()

    def in_transaction(self, *statements):
        self.h.conn.autocommit = False
        try:
            cur = self.h.conn.cursor()
            results = []
            for sql, params in statements:
                cur.execute(sql, params)
                results.append(cur.fetchall() if cur.description else None)
            self.h.conn.commit()
            return results
        except Exception:
            self.h.conn.rollback()
            raise
        finally:
            self.h.conn.autocommit = True

    def test_context_is_bound_to_the_transaction(self):
        org, env = self.orgs["acme"]
        inside = self.in_transaction(
            ("select envdb.set_active_environment(%s, 'acme-user')", (env,)),
            ("select envdb.current_environment_id(), envdb.current_organization_id(), "
             "envdb.current_context() ->> 'role'", ()))
        self.assertEqual(inside[1][0], (env, org, "env_user"))
        self.assertEqual(self.h.sql("select envdb.current_environment_id()"), [(None,)])

    def test_context_cannot_be_forged_with_set(self):
        self.h.sql("create role envdb_test_forger in role envdb_reader")
        try:
            self.h.sql("set role envdb_test_forger")
            with self.assertRaisesRegex(Exception, "permission denied"):
                self.h.sql("set envdb.context = '{\"organizationId\": \"x\"}'")
        finally:
            self.h.sql("reset role")
            self.h.sql("drop role envdb_test_forger")

    def test_membership_is_checked(self):
        _, env = self.orgs["acme"]
        with self.assertRaises(HostError) as caught:
            self.h.call("set_active_environment", env, "globex-user")
        self.assertEqual(caught.exception.code, "permission_denied")

    def test_reader_sees_only_the_active_organization(self):
        # Fail closed: without a context a reader sees nothing, and it cannot
        # set one (only the router speaks for a user). The router sets the
        # context; the reader reads inside it, in the same transaction.
        self.h.sql("create role envdb_test_reader_ctx in role envdb_reader")
        try:
            acme_org, acme_env = self.orgs["acme"]
            self.h.sql("set role envdb_test_reader_ctx")
            everything = self.h.sql("select count(distinct organization_id) from envdb.sys_environment")[0][0]
            self.assertEqual(everything, 0)
            with self.assertRaisesRegex(Exception, "permission denied for function set_active_environment"):
                self.h.sql("select envdb.set_active_environment(%s, 'acme-user')", (acme_env,))
            self.h.sql("reset role")
            seen = self.in_transaction(
                ("select envdb.set_active_environment(%s, 'acme-user')", (acme_env,)),
                ("set local role envdb_test_reader_ctx", ()),
                ("select distinct organization_id from envdb.sys_environment", ()),
                ("select count(*) from envdb.sys_database_credential", ()),
                ("select count(*) from envdb.sys_organization", ()),
                ("select count(*) from envdb.sys_tenant_database", ()))
            self.assertEqual(seen[2], [(acme_org,)])
            self.assertEqual(seen[4], [(1,)])
            self.assertEqual(seen[5], [(1,)])
            acme_credentials = self.h.sql(
                "select count(*) from envdb.sys_database_credential c join envdb.sys_environment_database d "
                "on d.id = c.database_id join envdb.sys_environment e on e.id = d.environment_id "
                "where e.organization_id = %s", (acme_org,))[0][0]
            self.assertEqual(seen[3], [(acme_credentials,)])
        finally:
            self.h.sql("reset role")
            self.h.sql("drop role envdb_test_reader_ctx")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class DataPlaneExtension(unittest.TestCase):
    def test_environment_database_gets_data_plane_only(self):
        import psycopg2
        name = f"envdb_env_{os.getpid()}"
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.cursor().execute(f'CREATE DATABASE "{name}"')
        try:
            conn = psycopg2.connect(dbname=name)
            conn.autocommit = True
            cur = conn.cursor()
            cur.execute("CREATE EXTENSION envdb_data")
            cur.execute("select p.proname from pg_proc p join pg_depend d on d.objid = p.oid and d.deptype = 'e' "
                        "join pg_extension e on e.oid = d.refobjid where e.extname = 'envdb_data'")
            documented = {n for n, where in documented_functions().items() if where in ("data", "postgres-data")}
            self.assertEqual({r[0] for r in cur.fetchall()}, documented)
            cur.execute("select envdb.environment_schema_version()")
            self.assertEqual(cur.fetchone()[0], None)
            cur.execute("select envdb.init_environment_schema('env-1', 'org-1', 'env-db-1')")
            first = cur.fetchone()[0]
            self.assertEqual(first["environmentId"], "env-1")
            self.assertTrue(first["applied"])
            cur.execute("select envdb.init_environment_schema('env-1', 'org-1', 'env-db-1')")
            self.assertEqual(cur.fetchone()[0]["applied"], [])
            cur.execute("select envdb.environment_schema_version()")
            self.assertEqual(cur.fetchone()[0], first["schemaVersion"])
            cur.execute("select table_name from information_schema.tables where table_schema = 'envdb' order by 1")
            tables = [r[0] for r in cur.fetchall()]
            self.assertEqual(tables, ["sys_environment_info", "sys_package_installation", "sys_schema_migration"])
            with self.assertRaisesRegex(psycopg2.Error, "schema_mismatch"):
                cur.execute("select envdb.init_environment_schema('env-2', 'org-1', 'env-db-2')")
            conn.close()
        finally:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.close()


if __name__ == "__main__":
    unittest.main()
