"""check([repair]) in both hosts: the same inconsistencies, made with raw SQL
that bypasses the catalog's foreign keys, are reported alike and repaired
alike, each repair audited; afterwards check() finds nothing."""
import os
import unittest

from hosts import SECOND_KEY, SECOND_KEY_ID, AcmeScenario, PostgresHost, SqliteHost, postgres_available

OLD = "2020-01-01T00:00:00.000Z"


def bypassing_foreign_keys(h, statements):
    """Runs raw SQL with the foreign keys out of the way, as a careless restore
    or a hand edit could: SQLite drops the catalog's foreign-key triggers and
    envdb_init() puts them back; Postgres uses session_replication_role."""
    if h.name == "sqlite":
        for (name,) in h.sql("select name from sqlite_master where type = 'trigger' and name like '%\\_fk%' escape '\\'"):
            h.sql(f'drop trigger "{name}"')
        for sql, params in statements:
            h.sql(sql, params)
        h.call("init")
    else:
        h.sql("set session_replication_role = replica")
        try:
            for sql, params in statements:
                h.sql(sql, params)
        finally:
            h.sql("reset session_replication_role")


def shape(report):
    return [(f["kind"], f["table"], f["repaired"]) for f in report["findings"]]


class CheckScenario(AcmeScenario):
    def setUp(self):
        super().setUp()
        self.h.call("add_environment_member", self.dev, "u1", "env_user")
        self.h.call("issue_credential", self.dev_db, "readwrite", "tok-1")
        self.h.call("rotate_credential", self.dev_db, "readwrite", None, "tok-2")

    def audited_repairs(self):
        return self.h.sql("select count(*) from envdb.sys_audit_event where action = 'check.repair'")[0][0]

    def test_clean_catalog(self):
        self.assertEqual(self.h.call("check"), {"ok": True, "repaired": 0, "findings": []})
        self.assertEqual(self.h.call("check", True), {"ok": True, "repaired": 0, "findings": []})

    def test_inconsistencies_reported_then_repaired(self):
        # 1. A job claimed long ago by a worker that never came back.
        jobs = [j for j in self.h.call("claim_provisioning_jobs", "turso", 10, "w1")
                if j["environmentId"] == self.default_env]
        self.assertEqual(len(jobs), 1)
        self.h.sql("update envdb.sys_provisioning_job set started_at = ? where id = ?", (OLD, jobs[0]["id"]))
        # 2. An environment deleted under its rows: database row, two
        #    credentials, member and job are orphans.
        bypassing_foreign_keys(self.h, [("delete from envdb.sys_environment where id = ?", (self.dev,))])
        # 3. An active environment without a database row.
        self.h.sql("insert into envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
                   "status) values ('0190a000-0000-7000-8000-00000000c0de', ?, 'ghost', 'Ghost', "
                   "'development', 'default', 'active')", (self.org,))

        before = self.h.counts()
        report = self.h.call("check")
        self.assertEqual(shape(report), [
            ("orphan_row", "sys_environment_database", False),
            ("orphan_row", "sys_database_credential", False),
            ("orphan_row", "sys_database_credential", False),
            ("orphan_row", "sys_environment_member", False),
            ("orphan_row", "sys_provisioning_job", False),
            ("active_without_database", "sys_environment", False),
            ("stale_job", "sys_provisioning_job", False),
        ], report)
        self.assertFalse(report["ok"])
        self.assertEqual(report["repaired"], 0)
        self.assertEqual(report["findings"][0]["id"], self.dev_db)
        self.assertIn(self.dev, report["findings"][0]["detail"])
        self.assertEqual(self.h.counts(), before)  # a report changes nothing

        audited = self.audited_repairs()
        report = self.h.call("check", True)
        self.assertTrue(report["ok"], report)
        self.assertEqual(report["repaired"], 7)
        self.assertTrue(all(f["repaired"] for f in report["findings"]))
        self.assertEqual(self.audited_repairs(), audited + 7)
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_environment_database where id = ?",
                                    (self.dev_db,))[0][0], 0)
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_database_credential where database_id = ?",
                                    (self.dev_db,))[0][0], 0)
        self.assertEqual(self.h.sql("select status from envdb.sys_environment where slug = 'ghost'")[0][0], "failed")
        self.assertEqual(self.h.sql("select status, worker from envdb.sys_provisioning_job where id = ?",
                                    (jobs[0]["id"],))[0], ("pending", None))
        self.assertEqual(self.h.call("check"), {"ok": True, "repaired": 0, "findings": []})
        # The requeued job is work again.
        self.assertEqual([j["id"] for j in self.h.call("claim_provisioning_jobs", "turso")], [jobs[0]["id"]])

    def test_credentials_under_a_missing_key_are_only_reported(self):
        self.h.load_keys({SECOND_KEY_ID: SECOND_KEY}, SECOND_KEY_ID)
        before = self.h.counts()
        report = self.h.call("check", True)
        # tok-1 is rotating, tok-2 active: both still usable, both under k1.
        self.assertEqual(shape(report), [("credential_key_missing", "sys_database_credential", False)] * 2)
        self.assertFalse(report["ok"])
        self.assertEqual(report["repaired"], 0)
        self.assertIn("'k1'", report["findings"][0]["detail"])
        self.assertEqual(self.h.counts(), before)

    def test_repair_is_all_or_nothing(self):
        self.h.sql("insert into envdb.sys_environment (id, organization_id, slug, name, env_type, region, "
                   "status) values ('0190a000-0000-7000-8000-00000000c0de', ?, 'ghost', 'Ghost', "
                   "'development', 'default', 'active')", (self.org,))
        jobs = self.h.call("claim_provisioning_jobs", "turso", 10, "w1")
        self.assertEqual(len(jobs), 2)
        self.h.sql("update envdb.sys_provisioning_job set started_at = ? where id = ?", (OLD, jobs[0]["id"]))
        # The job's repair is refused: the environment's must not stay behind.
        if self.h.name == "sqlite":
            self.h.sql("create trigger refuse before update of status on sys_provisioning_job "
                       "begin select raise(abort, 'refused'); end")
        else:
            self.h.sql("create function public.refuse() returns trigger language plpgsql as "
                       "$$begin raise exception 'refused'; end$$")
            self.h.sql("create trigger refuse before update of status on envdb.sys_provisioning_job "
                       "for each row execute function public.refuse()")
        before = self.h.counts()
        with self.assertRaises(Exception):
            self.h.call("check", True)
        self.assertEqual(self.h.counts(), before)
        self.assertEqual(self.h.sql("select status from envdb.sys_environment where slug = 'ghost'")[0][0], "active")
        self.h.sql("drop trigger refuse" + ("" if self.h.name == "sqlite" else " on envdb.sys_provisioning_job"))
        self.assertEqual(self.h.call("check", True)["repaired"], 2)


class CheckSqlite(CheckScenario, unittest.TestCase):
    host_class = SqliteHost

    def test_sqlite_file_gone(self):
        env = self.h.call("provision_environment", self.org, "lite", None, None, None, "sqlite")
        path = env["database"]["databaseUrl"][len("file:"):]
        os.remove(path)
        report = self.h.call("check", True)
        self.assertEqual(shape(report), [("active_without_database", "sys_environment", True)])
        self.assertIn(path, report["findings"][0]["detail"])
        self.assertEqual(self.h.call("get_environment", env["environment"]["id"])["environment"]["status"], "failed")
        self.h.call("retry_environment", env["environment"]["id"])
        self.assertTrue(os.path.exists(path))
        self.assertTrue(self.h.call("check")["ok"])


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class CheckPostgres(CheckScenario, unittest.TestCase):
    host_class = PostgresHost

    def complete_postgres_job(self, slug, url):
        env = self.h.call("provision_environment", self.org, slug, None, None, None, "postgres")
        job = [j for j in self.h.call("claim_provisioning_jobs", "postgres", 10) if j["environmentId"] ==
               env["environment"]["id"]][0]
        self.h.call("complete_provisioning_job", job["id"], url)
        return env["environment"]["id"]

    def test_postgres_database_missing_from_this_server(self):
        port = self.h.sql("show port")[0][0]
        gone = self.complete_postgres_job("gone", "postgresql:///envdb_no_such_database")
        self.complete_postgres_job("here", f"postgresql://localhost:{port}/{self.h.dbname}")
        self.complete_postgres_job("elsewhere", "postgresql://db.example.com/envdb_no_such_database")
        self.complete_postgres_job("other-port", "postgresql://localhost:1/envdb_no_such_database")
        report = self.h.call("check")
        self.assertEqual([(f["kind"], f["id"]) for f in report["findings"]], [("active_without_database", gone)])
        self.assertEqual(self.h.call("check", True)["repaired"], 1)
        self.assertEqual(self.h.call("get_environment", gone)["environment"]["status"], "failed")
        self.assertTrue(self.h.call("check")["ok"])

    def test_only_envdb_admin(self):
        for role in ("envdb_reader", "envdb_router"):
            self.assertFalse(self.h.sql("select has_function_privilege(%s, 'envdb.check(boolean)', 'execute')",
                                        (role,))[0][0])
        self.assertTrue(self.h.sql("select has_function_privilege('envdb_admin', 'envdb.check(boolean)', "
                                   "'execute')")[0][0])


if __name__ == "__main__":
    unittest.main()
