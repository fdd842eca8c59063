"""check() in both hosts: an environment held in `maintenance` that no job will ever release (its copy,
reset or restore job row deleted, or marked finished behind envdb's back) is the finding
`maintenance_without_job`; check(true) gives it back the status its job's payload names, or
`suspended` when no job is left to say. Turso driver: the outbox holds the jobs, no worker runs."""
import unittest

from hosts import AcmeScenario, PostgresHost, SqliteHost, postgres_available


class StrandedMaintenance(AcmeScenario):
    def setUp(self):
        super().setUp()
        # Both environments active: their create_database jobs reported done.
        for job in self.h.call("claim_provisioning_jobs", "turso", 10, "test"):
            self.h.call("complete_provisioning_job", job["id"], "libsql://x.example",
                        {"admin": "t-a", "readwrite": "t-rw", "readonly": "t-ro"})
        self.sandbox = self.provision("sandbox")
        self.busy = self.provision("busy")
        self.assertEqual(self.status(self.dev), "active")

    def provision(self, slug):
        env = self.h.call("provision_environment", self.org, slug, None, "sandbox", None, "turso")
        env_id = env["environment"]["id"]
        for job in self.h.call("claim_provisioning_jobs", "turso", 10, "test"):
            self.h.call("complete_provisioning_job", job["id"], "libsql://y.example",
                        {"admin": "t-a", "readwrite": "t-rw", "readonly": "t-ro"})
        return env_id

    def status(self, env_id):
        return self.h.call("get_environment", env_id)["environment"]["status"]

    def findings(self, report):
        return [(f["kind"], f["id"], f["repaired"]) for f in report["findings"]
                if f["kind"] == "maintenance_without_job"]

    def test_a_hold_whose_job_is_gone_is_found_and_released(self):
        # dev: copied into, then its copy_database job row deleted (nothing names its status):
        # released to suspended. sandbox (suspended first): restored... its job marked done
        # behind envdb's back, its payload still says suspended. A third one copied into whose
        # job still runs is not a finding.
        out = self.h.call("copy_environment", self.default_env, self.dev, "full", True)
        self.h.sql("delete from envdb.sys_provisioning_job where id = ?", (out["job"]["id"],))
        self.h.call("set_environment_status", self.sandbox, "suspended")
        out = self.h.call("reset_environment", self.sandbox, False)
        self.h.sql("update envdb.sys_provisioning_job set status = 'done' where id = ?", (out["job"]["id"],))
        busy = self.busy
        self.h.call("copy_environment", self.default_env, busy, "schema", False)
        self.assertEqual([self.status(e) for e in (self.dev, self.sandbox, busy)], ["maintenance"] * 3)

        report = self.h.call("check")
        self.assertFalse(report["ok"])
        self.assertEqual(sorted(self.findings(report)),
                         sorted([("maintenance_without_job", self.dev, False),
                                 ("maintenance_without_job", self.sandbox, False)]))
        details = {f["id"]: f["detail"] for f in report["findings"]}
        self.assertIn("gives it status suspended (no job left", details[self.dev])
        self.assertIn("gives it status suspended (payload.previousStatus of job", details[self.sandbox])
        with self.assertRaises(Exception) as e:
            self.h.call("resolve_environment", self.dev, "readwrite")
        self.assertEqual(e.exception.code, "conflict")

        report = self.h.call("check", True)
        self.assertEqual(sorted(self.findings(report)),
                         sorted([("maintenance_without_job", self.dev, True),
                                 ("maintenance_without_job", self.sandbox, True)]))
        self.assertEqual([self.status(e) for e in (self.dev, self.sandbox, busy)],
                         ["suspended", "suspended", "maintenance"])
        ends = self.h.sql("select environment_id from envdb.sys_audit_event where action = "
                          "'environment.maintenance_end' order by environment_id")
        self.assertEqual(sorted(r[0] for r in ends), sorted([self.dev, self.sandbox]))
        self.assertEqual(self.findings(self.h.call("check")), [])
        # From suspended an operator resumes it as usual.
        self.h.call("set_environment_status", self.dev, "active")
        self.assertEqual(self.h.call("resolve_environment", self.dev, "readwrite")["credential"]["token"], "t-rw")

    def test_the_status_its_job_names(self):
        out = self.h.call("copy_environment", self.default_env, self.dev, "full", True)
        self.h.sql("update envdb.sys_provisioning_job set status = 'failed' where id = ?", (out["job"]["id"],))
        report = self.h.call("check", True)
        self.assertEqual(self.findings(report), [("maintenance_without_job", self.dev, True)])
        self.assertEqual(self.status(self.dev), "active")


class StrandedMaintenanceSqlite(StrandedMaintenance, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class StrandedMaintenancePostgres(StrandedMaintenance, unittest.TestCase):
    host_class = PostgresHost


if __name__ == "__main__":
    unittest.main()
