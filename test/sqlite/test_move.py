"""move_environment as the catalog sees it, on a SQLite control plane whose postgres jobs an external
worker carries out (tenancy/move): the rules, the maintenance hold, the move_database job and its
payload, the switch of host and URL when the job completes (credentials still resolve, to the new
URL), the retire_database job claimed only after drop_grace_seconds, a failed move leaving the
environment where it was, and the sqlite driver refused (it has no hosts)."""
import base64
import json
import sqlite3
import tempfile
import time
import os
import unittest

from envdb_sqlite import call_json, connect

KEY = base64.b64encode(bytes(range(32))).decode()


class MoveCatalog(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.db = connect(os.path.join(self.dir.name, "control.db"))
        self.db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (os.path.join(self.dir.name, "envs"),))
        self.db.execute("select envdb_config('drop_grace_seconds', '2')")
        org = self.call("provision_organization", "acme", "Acme", None, None, "sqlite")
        self.org = org["organization"]["id"]
        # add_database_host(name, region, host, port, username, password, dbname, capacity, verify)
        self.one = self.call("add_database_host", "one", "default", "db1.internal", 5432, "postgres", "pw1",
                             "postgres", None, False)["host"]
        self.two = self.call("add_database_host", "two", "default", "db2.internal", 5432, "postgres", "pw2",
                             "postgres", None, False)["host"]
        out = self.call("provision_environment", self.org, "dev", None, None, None, "postgres")
        self.env = out["environment"]["id"]
        self.dbname = out["database"]["databaseName"]
        job = self.claim("create_database")
        self.call("complete_provisioning_job", job["id"], f"postgresql://db1.internal:5432/{self.dbname}")
        self.call("issue_credential", out["database"]["id"], "readwrite", "the-token")

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def call(self, fn, *args):
        return call_json(self.db, fn, *args)

    def claim(self, kind=None):
        jobs = [j for j in self.call("claim_provisioning_jobs", "postgres", 10, "w")
                if j["kind"] not in ("create_login", "disable_login")]
        if kind is None:
            return jobs
        self.assertEqual([j["kind"] for j in jobs], [kind])
        return jobs[0]

    def host_of(self):
        return self.db.execute("select host_id from sys_environment_database where environment_id = ?",
                               (self.env,)).fetchone()[0]

    def test_a_move_switches_host_and_url_when_its_job_completes(self):
        first = self.host_of()
        self.assertIn(first, (self.one["id"], self.two["id"]))
        there = self.two if first == self.one["id"] else self.one
        moved = self.call("move_environment", self.env, there["name"])
        self.assertEqual(moved["environment"]["status"], "maintenance")
        self.assertEqual((moved["fromHostId"], moved["toHostId"]), (first, there["id"]))
        with self.assertRaises(sqlite3.Error) as e:  # held: no second move, no resolve
            self.call("move_environment", self.env, there["name"])
        self.assertTrue(str(e.exception).startswith("invalid_transition:"), str(e.exception))
        job = self.claim("move_database")
        self.assertEqual(job["payload"]["targetHostId"], there["id"])
        self.assertEqual(job["payload"]["hostId"], first)
        self.assertEqual(job["payload"]["previousStatus"], "active")
        # The switch needs the new URL.
        with self.assertRaises(sqlite3.Error) as e:
            self.call("complete_provisioning_job", job["id"])
        self.assertTrue(str(e.exception).startswith("invalid_parameter: database_url"), str(e.exception))
        self.assertEqual(self.host_of(), first)
        new_url = f"postgresql://{there['host']}:5432/{self.dbname}"
        self.call("complete_provisioning_job", job["id"], new_url)
        self.assertEqual(self.host_of(), there["id"])
        got = self.call("resolve_environment", self.env, "readwrite")
        self.assertEqual((got["status"], got["databaseUrl"], got["credential"]["token"]),
                         ("active", new_url, "the-token"))
        actions = [r[0] for r in self.db.execute("select action from sys_audit_event where environment_id = ? "
                                                 "order by seq", (self.env,))]
        self.assertIn("environment.move", actions)
        self.assertIn("environment.moved", actions)
        # The old copy's retirement waits for the drop grace, then names the old host, which
        # cannot be removed meanwhile.
        self.assertEqual(self.claim(), [])
        old_name = self.one["name"] if first == self.one["id"] else self.two["name"]
        with self.assertRaises(sqlite3.Error) as e:
            self.call("remove_database_host", old_name)
        self.assertTrue(str(e.exception).startswith("conflict: name"), str(e.exception))
        time.sleep(2.2)
        retire = self.claim("retire_database")
        self.assertEqual(retire["payload"]["hostId"], first)
        self.assertEqual(retire["payload"]["databaseName"], self.dbname)
        with self.assertRaises(sqlite3.Error):  # no URL for a retirement
            self.call("complete_provisioning_job", retire["id"], "postgresql://x/y")
        self.call("complete_provisioning_job", retire["id"])
        self.assertEqual(self.host_of(), there["id"])
        self.assertIsNone(self.call("get_environment", self.env)["database"]["droppedAt"])
        self.call("remove_database_host", old_name)

    def test_a_failed_move_leaves_the_environment_where_it_was(self):
        first = self.host_of()
        there = self.two if first == self.one["id"] else self.one
        # The request form.
        out = json.loads(self.db.execute("select envdb_move_environment(?)", (json.dumps(
            {"environmentId": self.env, "hostId": there["id"]}),)).fetchone()[0])
        self.assertEqual(out["toHostId"], there["id"])
        job = self.claim("move_database")
        self.call("fail_provisioning_job", job["id"], "pg_restore failed", False)
        self.assertEqual(self.call("get_environment", self.env)["environment"]["status"], "active")
        self.assertEqual(self.host_of(), first)
        self.assertEqual(self.claim(), [])

    def test_refusals(self):
        first = self.host_of()
        here = self.one if first == self.one["id"] else self.two
        there = self.two if here is self.one else self.one

        def refused(code, text, *args):
            with self.assertRaises(sqlite3.Error) as e:
                self.call("move_environment", *args)
            self.assertTrue(str(e.exception).startswith(code + ":"), str(e.exception))
            self.assertIn(text, str(e.exception))
        refused("conflict", "already lives", self.env, here["name"])
        self.call("drain_database_host", there["name"])
        refused("conflict", "drained", self.env, there["name"])
        self.call("drain_database_host", there["name"], False)
        sq = self.call("provision_environment", self.org, "lite", None, None, None, "sqlite")["environment"]["id"]
        refused("conflict", "uses driver sqlite", sq, there["name"])
        backup = self.call("backup_environment", self.env, None)
        refused("conflict", "backup", self.env, there["name"])
        self.assertEqual(backup["backup"]["status"], "pending")
        events = self.db.execute("select count(*) from sys_audit_event where action = 'environment.move'").fetchone()
        self.assertEqual(events[0], 0)


if __name__ == "__main__":
    unittest.main()
