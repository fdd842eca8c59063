"""Trials, storage limits and usage, the same in both hosts: a trial's end,
extending it once (the second time is conflict), converting it, the sweep
(enforce_policies) suspending an ended trial and archiving it after its grace,
resolve refusing an ended trial at once, usage reported and measured with its
daily history, and the read-only decision against the limit. SQLite also shows
the page limit resolve_environment hands the router, enforced by SQLite's own
PRAGMA max_page_count on the environment's file."""
import datetime
import os
import sqlite3
import time
import unittest

from hosts import HostError, PostgresHost, SqliteHost, postgres_available


def seconds_of(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


class Policies:
    def setUp(self):
        self.h = self.make_host()
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "turso")
        self.org = org["organization"]["id"]

    def tearDown(self):
        self.h.close()

    def refused(self, fn, *args):
        with self.assertRaises(HostError) as caught:
            self.h.call(fn, *args)
        return caught.exception

    def turso_environment(self, slug, env_type=None):
        """A turso environment made active by completing its job."""
        out = self.h.call("provision_environment", self.org, slug, None, env_type, None, "turso")
        for job in self.h.call("claim_provisioning_jobs", "turso", 10):
            self.h.call("complete_provisioning_job", job["id"], f"libsql://{slug}", {"readwrite": "tok-" + slug})
        return out["environment"]["id"]

    def status(self, env_id):
        return self.h.call("get_environment", env_id)["environment"]["status"]

    def test_a_trial_ends_after_trial_days_and_is_extended_once(self):
        out = self.h.call("provision_environment", self.org, "try", None, "trial", None, "turso")["environment"]
        self.assertAlmostEqual(seconds_of(out["expiresAt"]) - time.time(), 30 * 86400, delta=60)
        self.assertEqual(out["trialExtensions"], 0)
        extended = self.h.call("extend_environment_trial", out["id"], 10)["environment"]
        self.assertAlmostEqual(seconds_of(extended["expiresAt"]) - seconds_of(out["expiresAt"]), 10 * 86400,
                               delta=1)
        self.assertEqual(extended["trialExtensions"], 1)
        error = self.refused("extend_environment_trial", out["id"], 10)
        self.assertEqual(error.code, "conflict")
        self.assertIn("trial_max_extensions", str(error))
        self.assertEqual(self.h.call("get_environment", out["id"])["environment"]["expiresAt"],
                         extended["expiresAt"])
        # The setting allows more.
        self.h.call("config", "trial_max_extensions", "2")
        self.assertEqual(self.h.call("extend_environment_trial", out["id"], 1)["environment"]["trialExtensions"], 2)
        # Other types have no end and cannot be extended.
        dev = self.h.call("provision_environment", self.org, "dev", None, None, None, "turso")["environment"]
        self.assertIsNone(dev["expiresAt"])
        self.assertEqual(self.refused("extend_environment_trial", dev["id"], 1).code, "conflict")

    def test_converting_a_trial_clears_its_end_and_expires_at_sets_one(self):
        at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=3)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
        out = self.h.call("provision_environment", self.org, "try", None, "trial", None, "turso", False, None,
                          None, None, None, None, False, at)["environment"]
        self.assertEqual(out["expiresAt"], at)
        converted = self.h.call("set_environment_type", out["id"], "production")["environment"]
        self.assertEqual(converted["envType"], "production")
        self.assertIsNone(converted["expiresAt"])
        again = self.h.call("set_environment_type", out["id"], "trial")["environment"]
        self.assertAlmostEqual(seconds_of(again["expiresAt"]) - time.time(), 30 * 86400, delta=60)
        actions = [a for (a,) in self.h.sql("select action from envdb.sys_audit_event where environment_id = ? "
                                             "order by occurred_at, id", (out["id"],))]
        self.assertEqual(actions.count("environment.set_type"), 2)

    def test_the_sweep_suspends_an_ended_trial_and_archives_it_after_its_grace(self):
        self.h.call("config", "trial_seconds", "1")
        self.h.call("config", "trial_grace_seconds", "2")
        env_id = self.turso_environment("try", "trial")
        end = seconds_of(self.h.call("get_environment", env_id)["environment"]["expiresAt"])
        self.assertEqual(self.h.call("resolve_environment", env_id)["credential"]["token"], "tok-try")
        while time.time() < end + 0.05:
            time.sleep(0.05)
        # Ended: resolve refuses it at once, whoever sweeps.
        self.assertEqual(self.refused("resolve_environment", env_id).code, "conflict")
        started = time.monotonic()
        while self.status(env_id) != "suspended" and time.monotonic() - started < 10:
            self.h.call("enforce_policies")
            time.sleep(0.1)
        self.assertEqual(self.status(env_id), "suspended")
        while time.time() < end + 2.05:
            time.sleep(0.05)
        started = time.monotonic()
        while self.status(env_id) != "archived" and time.monotonic() - started < 10:
            self.h.call("enforce_policies")
            time.sleep(0.1)
        self.assertEqual(self.status(env_id), "archived")
        actions = [a for (a,) in self.h.sql("select action from envdb.sys_audit_event where environment_id = ? "
                                             "order by occurred_at, id", (env_id,))]
        self.assertLess(actions.index("environment.trial_expire"), actions.index("environment.archive"))
        # A turso trial's tokens are invalidated through the outbox.
        kinds = [k for (k,) in self.h.sql("select payload from envdb.sys_provisioning_job where environment_id = ?",
                                          (env_id,))]
        self.assertTrue(any("suspend" in str(k) for k in kinds), kinds)

    def test_extending_an_ended_trial_resumes_it(self):
        self.h.call("config", "trial_seconds", "1")
        env_id = self.turso_environment("try", "trial")
        time.sleep(1.1)
        self.h.call("enforce_policies")
        self.assertEqual(self.status(env_id), "suspended")
        out = self.h.call("extend_environment_trial", env_id, 1)["environment"]
        self.assertEqual(out["status"], "active")
        self.assertAlmostEqual(seconds_of(out["expiresAt"]) - time.time(), 86400, delta=60)
        self.assertEqual(self.h.call("resolve_environment", env_id)["credential"]["token"], "tok-try")

    def test_reported_usage_has_a_daily_history_and_decides_read_only(self):
        env_id = self.turso_environment("metered")
        db = self.h.call("report_environment_usage", env_id, 1000)["database"]
        self.assertEqual(db["usageBytes"], 1000)
        self.assertFalse(db["storageReadOnly"])
        self.assertIsNone(self.h.call("resolve_environment", env_id)["maxPageCount"])
        self.assertTrue(self.h.call("set_storage_limit", env_id, 1)["database"]["storageReadOnly"] is False)
        db = self.h.call("report_environment_usage", env_id, 2 * 1048576)["database"]
        self.assertTrue(db["storageReadOnly"])
        db = self.h.call("report_environment_usage", env_id, 5000)["database"]
        self.assertFalse(db["storageReadOnly"])
        rows = self.h.sql("select day, bytes, max_bytes, samples from envdb.sys_environment_usage where "
                          "environment_id = ?", (env_id,))
        self.assertEqual(len(rows), 1)
        day, bytes_, max_bytes, samples = rows[0]
        self.assertEqual((bytes_, max_bytes, samples), (5000, 2 * 1048576, 3))
        self.assertEqual(str(day), datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
        actions = [a for (a,) in self.h.sql("select action from envdb.sys_audit_event where environment_id = ? "
                                             "order by occurred_at, id", (env_id,))]
        self.assertEqual([a for a in actions if a.startswith("database.")],
                         ["database.storage_limit", "database.storage_read_only", "database.storage_writable"])
        # A lower limit decides at once from the latest figure; NULL clears it.
        self.assertTrue(self.h.call("set_storage_limit", env_id, 1)["database"]["storageLimitMb"] == 1)
        self.h.call("report_environment_usage", env_id, 3 * 1048576)
        cleared = self.h.call("set_storage_limit", env_id, None)["database"]
        self.assertIsNone(cleared["storageLimitMb"])
        self.assertFalse(cleared["storageReadOnly"])
        # A turso database is not measured here: its worker reports it.
        self.assertEqual(self.refused("measure_environment_usage", env_id).code, "conflict")


class PoliciesSqlite(Policies, unittest.TestCase):
    def make_host(self):
        return SqliteHost()

    def test_an_ended_trial_is_suspended_when_it_is_read(self):
        self.h.call("config", "trial_seconds", "1")
        env_id = self.turso_environment("try", "trial")
        time.sleep(1.1)
        self.assertEqual(self.status(env_id), "suspended")  # get_environment observed it
        self.assertIn("environment.trial_expire",
                      [a for (a,) in self.h.sql("select action from envdb.sys_audit_event")])

    def test_over_its_limit_a_sqlite_environment_gets_a_page_limit_and_writes_again_once_under(self):
        out = self.h.call("provision_environment", self.org, "files", None, None, None, "sqlite", False, None,
                          None, 1)
        env_id = out["environment"]["id"]
        resolved = self.h.call("resolve_environment", env_id)
        self.assertEqual(resolved["maxPageCount"], 256)  # 1 MB of 4096-byte pages
        path = resolved["databaseUrl"][len("file:"):]
        router = sqlite3.connect(path)
        self.assertEqual(router.execute("pragma page_size").fetchone()[0], 4096)
        router.execute(f"pragma max_page_count = {resolved['maxPageCount']}")
        router.execute("create table blobs (b blob)")
        full = False
        for _ in range(400):
            try:
                router.execute("insert into blobs values (zeroblob(8000))")
                router.commit()
            except sqlite3.OperationalError as e:
                self.assertIn("full", str(e))
                router.rollback()
                full = True
                break
        self.assertTrue(full, "writes went past the page limit")
        db = self.h.call("measure_environment_usage", env_id)["database"]
        self.assertGreaterEqual(db["usageBytes"], 1048576 - 4096 * 4)
        self.assertLessEqual(db["usageBytes"], 1048576 + 4096 * 4)
        # Read-only is decided at the limit; usage is measured, with history.
        self.h.call("set_storage_limit", env_id, 1)
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_environment_usage where environment_id = ?",
                                    (env_id,))[0][0], 1)
        router.execute("delete from blobs")
        router.commit()
        router.execute("vacuum")
        router.execute("insert into blobs values (zeroblob(8000))")
        router.commit()
        router.close()
        db = self.h.call("measure_environment_usage", env_id)["database"]
        self.assertLess(db["usageBytes"], 1048576)
        self.assertFalse(db["storageReadOnly"])

    def test_the_sweep_measures_sqlite_files_on_schedule(self):
        out = self.h.call("provision_environment", self.org, "files", None, None, None, "sqlite")
        env_id = out["environment"]["id"]
        self.assertIsNone(out["database"]["usageBytes"])
        self.h.call("config", "usage_interval_seconds", "0")
        self.assertEqual(self.h.call("enforce_policies")["measured"], 0)
        self.h.call("config", "usage_interval_seconds", "60")
        self.assertEqual(self.h.call("enforce_policies")["measured"], 1)
        db = self.h.call("get_environment", env_id)["database"]
        self.assertEqual(db["usageBytes"], os.path.getsize(db["databaseUrl"][len("file:"):]))
        self.assertEqual(self.h.call("enforce_policies")["measured"], 0)  # not due again for 60 s


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class PoliciesPostgres(Policies, unittest.TestCase):
    def make_host(self):
        return PostgresHost()


if __name__ == "__main__":
    unittest.main()
