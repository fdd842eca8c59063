"""A SQLite process killed (SIGKILL) while it provisions sqlite-driver
environments leaves no half-made file in place once envdb_check(1) has run,
and the registry agrees with the files: every envdb file in sqlite_data_dir
has a registry row, every active sqlite environment has its file, and a
second check finds nothing."""
import base64
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

from envdb_sqlite import EXTENSION, connect

PYTHON = "/usr/bin/python3"
KEY = base64.b64encode(bytes(range(32))).decode()
KILLS = int(os.environ.get("ENVDB_CRASH_KILLS", "100"))
BUDGET_SECONDS = 45  # the whole test stays under a minute
ENV_FILE = re.compile(r"^env-[a-z2-7]{26}\.db")

# The child: provisions environments one after another until it is killed.
CHILD = r"""
import sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.enable_load_extension(True)
db.load_extension(sys.argv[2])
db.execute("select envdb_keyring_add('k1', ?)", (sys.argv[3],))
org = sys.argv[4]
print("ready", flush=True)
while True:
    db.execute("select envdb_provision_environment(?, ?, NULL, NULL, NULL, 'sqlite')",
               (org, "e-" + uuid.uuid4().hex[:20])).fetchone()
"""


class SqliteCrash(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.control = os.path.join(self.dir.name, "control.db")
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.db = connect(self.control)
        self.db.execute("pragma busy_timeout = 10000")
        self.db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (self.data_dir,))
        org = json.loads(self.db.execute(
            "select envdb_provision_organization('acme', 'Acme', NULL, NULL, 'sqlite')").fetchone()[0])
        self.org = org["organization"]["id"]

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def check(self, repair):
        return json.loads(self.db.execute("select envdb_check(?)", (1 if repair else 0,)).fetchone()[0])

    def assert_registry_agrees_with_files(self):
        files = sorted(f for f in os.listdir(self.data_dir) if os.path.isfile(os.path.join(self.data_dir, f)))
        self.assertEqual([f for f in files if ".tmp-" in f], [], "a temporary file survived the check")
        registered = {name for (name,) in self.db.execute("select database_name from sys_environment_database")}
        for f in files:
            if ENV_FILE.match(f) and f.endswith(".db"):
                self.assertIn(f[:-3], registered, f"{f} has no registry row")
        for env_id, url in self.db.execute(
                "select e.id, d.database_url from sys_environment e join sys_environment_database d "
                "on d.environment_id = e.id where e.status = 'active' and d.driver = 'sqlite'"):
            self.assertTrue(url.startswith("file:"), url)
            self.assertTrue(os.path.isfile(url[5:]), f"active environment {env_id} lost its file")

    def test_killed_while_provisioning(self):
        started = time.monotonic()
        kills = 0
        repairs = {}
        provisioned_before = 0
        while kills < KILLS and time.monotonic() - started < BUDGET_SECONDS:
            child = subprocess.Popen([PYTHON, "-c", CHILD, self.control, EXTENSION, KEY, self.org],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if child.stdout.readline().strip() != "ready":
                child.kill()
                self.fail(f"the child did not start: {child.stderr.read()}")
            time.sleep(random.uniform(0, 0.08))
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
            child.stdout.close()
            child.stderr.close()
            self.assertEqual(child.returncode, -signal.SIGKILL)
            kills += 1

            report = self.check(True)
            self.assertTrue(report["ok"], json.dumps(report, indent=2))
            for f in report["findings"]:
                key = (f["kind"], f["detail"].split(";")[-1].split(" to ")[0].strip())
                repairs[key] = repairs.get(key, 0) + 1
            self.assert_registry_agrees_with_files()
            self.assertEqual(self.check(False), {"ok": True, "repaired": 0, "findings": []})

        provisioned = self.db.execute("select count(*) from sys_environment").fetchone()[0]
        elapsed = time.monotonic() - started
        summary = ", ".join(f"{k[0]} ({k[1]}): {n}" for k, n in sorted(repairs.items())) or "none"
        print(f"\n  {kills} kills in {elapsed:.1f} s; {provisioned - 1} environments provisioned; "
              f"repairs: {summary}", file=sys.stderr)
        self.assertGreaterEqual(kills, 20)
        # The kills must land mid-provisioning: some left a file to clean up.
        self.assertGreater(sum(repairs.values()), 0, "no kill landed while a file was being made")
        self.assertGreater(provisioned, provisioned_before + 1)


class RolledBack(unittest.TestCase):
    """A transaction that does not commit after envdb put a file in place.
    envdb's own (a COMMIT busy past the timeout): the file is removed with it.
    The caller's (ROLLBACK): SQLite gives an extension no hook after the
    caller's COMMIT or ROLLBACK, so the file stays; check() finds it, and moves
    it aside when its stamp names an organization of this catalog."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.db = connect(os.path.join(self.dir.name, "control.db"))
        self.db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (self.data_dir,))

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def rolled_back(self, sql, params=()):
        before = set(os.listdir(self.data_dir)) if os.path.isdir(self.data_dir) else set()
        self.db.execute("begin")
        self.db.execute(sql, params).fetchone()
        self.db.execute("rollback")
        made = sorted(set(os.listdir(self.data_dir)) - before)
        self.assertEqual(len(made), 1, made)
        return os.path.join(self.data_dir, made[0])

    def findings(self, repair):
        return json.loads(self.db.execute("select envdb_check(?)", (1 if repair else 0,)).fetchone()[0])["findings"]

    def test_environment_of_a_known_organization_is_moved_aside(self):
        org = json.loads(self.db.execute(
            "select envdb_provision_organization('acme', 'Acme', NULL, NULL, 'turso')").fetchone()[0])
        path = self.rolled_back("select envdb_provision_environment(?, 'dev', NULL, NULL, NULL, 'sqlite')",
                                (org["organization"]["id"],))
        self.assertEqual([(f["kind"], f["id"]) for f in self.findings(False)], [("file_without_registry", path)])
        repaired = self.findings(True)
        self.assertTrue(repaired[0]["repaired"], repaired)
        self.assertFalse(os.path.exists(path))
        self.assertTrue(os.path.isfile(os.path.join(self.data_dir, "unregistered", os.path.basename(path))))
        self.assertEqual(self.findings(False), [])

    def test_a_commit_that_fails_takes_its_file_with_it(self):
        # envdb's own write transaction: BEGIN IMMEDIATE gets the write lock
        # beside a reader, but COMMIT must wait for the reader (rollback
        # journal) and gives up after the busy timeout. The call is refused
        # with conflict, saying nothing was changed: the file goes too.
        org = json.loads(self.db.execute(
            "select envdb_provision_organization('acme', 'Acme', NULL, NULL, 'turso')").fetchone()[0])
        os.makedirs(self.data_dir, exist_ok=True)
        self.assertEqual(self.db.execute("pragma journal_mode").fetchone()[0], "delete")
        self.db.execute("pragma busy_timeout = 200")
        reader = sqlite3.connect(os.path.join(self.dir.name, "control.db"), isolation_level=None)
        reader.execute("begin")
        reader.execute("select count(*) from sys_environment").fetchone()
        try:
            with self.assertRaisesRegex(sqlite3.OperationalError, "^conflict: .*nothing was changed"):
                self.db.execute("select envdb_provision_environment(?, 'dev', NULL, NULL, NULL, 'sqlite')",
                                (org["organization"]["id"],)).fetchone()
        finally:
            reader.execute("rollback")
            reader.close()
        self.assertEqual(os.listdir(self.data_dir), [])
        self.assertEqual(self.findings(False), [])
        made = json.loads(self.db.execute(
            "select envdb_provision_environment(?, 'dev', NULL, NULL, NULL, 'sqlite')",
            (org["organization"]["id"],)).fetchone()[0])
        self.assertEqual(made["environment"]["status"], "active")

    def test_file_of_an_organization_never_committed_is_reported_and_left(self):
        path = self.rolled_back("select envdb_provision_organization('acme', 'Acme')")
        found = self.findings(True)
        self.assertEqual([(f["kind"], f["id"], f["repaired"]) for f in found],
                         [("file_without_registry", path, False)])
        self.assertIn("not in this catalog", found[0]["detail"])
        self.assertTrue(os.path.isfile(path))
        # Nothing else was kept: the same organization can be provisioned again.
        again = json.loads(self.db.execute("select envdb_provision_organization('acme', 'Acme')").fetchone()[0])
        self.assertEqual(again["defaultEnvironment"]["environment"]["status"], "active")


if __name__ == "__main__":
    unittest.main()
