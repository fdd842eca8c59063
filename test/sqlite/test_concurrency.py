"""Two processes on one SQLite control database, each with a busy timeout,
keep the invariants the Postgres suite checks with 16 clients:

- the same slug provisioned by both: one wins, the other gets already_exists;
- both rotating one credential: at every sampled instant exactly one active
  credential per (database, scope), and every rotation reported is a row;
- both claiming jobs: no job is claimed twice, every job is claimed once.

A writing envdb call takes the write lock first (BEGIN IMMEDIATE) when no
transaction is open; a lock held past the busy timeout is `conflict`."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from envdb_sqlite import EXTENSION, call_json, connect  # noqa: E402

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # bytes 0..31
PROCESSES = 2
ROTATION_SECONDS = float(os.environ.get("ENVDB_SQLITE_ROTATION_SECONDS", "6"))

# One worker process: waits for the shared start instant, runs its part, and
# prints one JSON line of what it was told.
WORKER = r"""
import json, sqlite3, sys, time
extension, path, key, task, start_at, arg = sys.argv[1:7]
db = sqlite3.connect(path, isolation_level=None, timeout=20)
db.enable_load_extension(True)
db.load_extension(extension)
db.execute("select envdb_keyring_add('k1', ?)", (key,))
def call(sql, *params):
    try:
        return ("ok", db.execute(sql, params).fetchone()[0])
    except sqlite3.Error as e:
        text = str(e)
        return (text.split(":", 1)[0], text)
while time.time() < float(start_at):
    time.sleep(0.001)
out = []
if task == "provision":
    org, slugs = json.loads(arg)
    for slug in slugs:
        out.append(call("select envdb_provision_environment(?, ?, null, null, null, 'turso')", org, slug)[:1] +
                   (slug,))
elif task == "organizations":
    for slug in json.loads(arg):
        out.append(call("select envdb_provision_organization(?, ?, null, null, 'turso')", slug, slug)[:1] + (slug,))
elif task == "rotate":
    database, seconds = json.loads(arg)
    stop = time.time() + seconds
    while time.time() < stop:
        code, value = call("select envdb_rotate_credential(?, 'readwrite', 86400)", database)
        if code == "ok":
            r = json.loads(value)
            out.append(["ok", r["credential"]["id"], r["previous"]["id"]])
        else:
            out.append([code, value])
elif task == "claim":
    worker = arg
    empty = 0
    while empty < 3:
        code, value = call("select envdb_claim_provisioning_jobs('turso', 3, ?)", worker)
        if code != "ok":
            out.append([code, value])
            continue
        got = [j["id"] for j in json.loads(value)]
        out.append(["ok"] + got)
        empty = 0 if got else empty + 1
print(json.dumps(out))
"""


class TwoProcesses(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "control.db")
        self.db = connect(self.path)
        self.db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (os.path.join(self.dir.name, "envs"),))

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def call(self, fn, *args):
        return call_json(self.db, fn, *args)

    def run_workers(self, task, args, during=None):
        """Starts one process per entry of args, all released at the same
        instant; `during` runs in this process meanwhile. Returns each
        process's list of outcomes."""
        start_at = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, EXTENSION, self.path, KEY, task,
                                   str(start_at), a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for a in args]
        if during:
            during()
        outputs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 0, err)
            outputs.append(json.loads(out))
        return outputs

    def test_same_slugs_from_two_processes(self):
        org = self.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        slugs = [f"env-{i}" for i in range(40)]
        started = time.monotonic()
        outputs = self.run_workers("provision", [json.dumps([org, slugs])] * PROCESSES)
        for i, slug in enumerate(slugs):
            codes = sorted(out[i][0] for out in outputs)
            self.assertEqual(codes, ["already_exists"] + ["ok"], f"{slug}: {codes}")
        self.assertEqual(self.db.execute("select count(*) from sys_environment where organization_id = ?",
                                         (org,)).fetchone()[0], len(slugs) + 1)
        self.assertEqual(self.db.execute("select count(*) from sys_provisioning_job").fetchone()[0], len(slugs) + 1)
        print(f"\n  [concurrency] sqlite: {len(slugs)} slugs provisioned by {PROCESSES} processes at once: "
              f"one winner each, the other already_exists, {time.monotonic() - started:.2f} s", flush=True)

    def test_same_organization_slugs_from_two_processes(self):
        slugs = [f"org-{i}" for i in range(25)]
        outputs = self.run_workers("organizations", [json.dumps(slugs)] * PROCESSES)
        for i, slug in enumerate(slugs):
            self.assertEqual(sorted(out[i][0] for out in outputs), ["already_exists", "ok"], slug)
        self.assertEqual(self.db.execute("select count(*) from sys_organization").fetchone()[0], len(slugs))
        self.assertEqual(self.db.execute("select count(*) from sys_environment").fetchone()[0], len(slugs))

    def test_rotating_one_credential_from_two_processes(self):
        org = self.call("provision_organization", "acme", "Acme", None, None, "postgres")
        database = org["defaultEnvironment"]["database"]["id"]
        samples, bad = [], []
        sampler = sqlite3.connect(self.path, isolation_level=None, timeout=20)

        def sample():
            stop = time.time() + 1.0 + ROTATION_SECONDS + 0.5
            while time.time() < stop:
                rows = sampler.execute(
                    "select database_id, scope, sum(status = 'active') from sys_database_credential "
                    "group by 1, 2").fetchall()
                samples.append(rows)
                if not rows or any(r[2] != 1 for r in rows):
                    bad.append(rows)
                time.sleep(0.002)

        started = time.monotonic()
        outputs = self.run_workers("rotate", [json.dumps([database, ROTATION_SECONDS])] * PROCESSES, during=sample)
        sampler.close()
        elapsed = time.monotonic() - started
        failures = [o for out in outputs for o in out if o[0] != "ok"]
        self.assertEqual(failures, [])
        rotations = [(o[1], o[2]) for out in outputs for o in out]
        self.assertTrue(all(out for out in outputs), "a process never got a rotation through")
        self.assertEqual(bad[:3], [])
        self.assertGreater(len(samples), 50)
        created = self.db.execute("select id, rotated_from from sys_database_credential where database_id = ? "
                                  "and scope = 'readwrite' and rotated_from is not null", (database,)).fetchall()
        self.assertEqual(dict(created), dict(rotations))
        self.assertEqual(len(created), len(rotations))
        self.assertEqual(len({p for _, p in rotations}), len(rotations), "two rotations replaced one credential")
        events = self.db.execute("select count(*) from sys_audit_event where action = 'credential.rotate'").fetchone()[0]
        self.assertEqual(events, len(rotations))
        self.assertEqual(self.db.execute("select count(*) from sys_database_credential where database_id = ? and "
                                         "scope = 'readwrite' and status = 'active'", (database,)).fetchone()[0], 1)
        print(f"\n  [concurrency] sqlite: {PROCESSES} processes rotating one credential for {ROTATION_SECONDS:.0f} s: "
              f"{len(rotations)} rotations, none lost, {len(samples)} samples with exactly one active, "
              f"{elapsed:.1f} s", flush=True)

    def test_claimers_in_two_processes_never_share(self):
        org = self.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        for i in range(119):
            self.call("provision_environment", org, f"env-{i}", None, None, None, "turso")
        pending = {r[0] for r in self.db.execute("select id from sys_provisioning_job where status = 'pending'")}
        self.assertEqual(len(pending), 120)
        outputs = self.run_workers("claim", ["w0", "w1"])
        failures = [o for out in outputs for o in out if o[0] != "ok"]
        self.assertEqual(failures, [])
        claimed = [j for out in outputs for o in out for j in o[1:]]
        self.assertEqual(len(claimed), len(set(claimed)), "a job was claimed twice")
        self.assertEqual(set(claimed), pending)
        for w, out in enumerate(outputs):
            for o in out:
                for j in o[1:]:
                    self.assertEqual(self.db.execute("select worker, attempts from sys_provisioning_job where id = ?",
                                                     (j,)).fetchone(), (f"w{w}", 1))
        print(f"\n  [concurrency] sqlite: {PROCESSES} claimer processes: {len(claimed)} jobs claimed once each",
              flush=True)

    def test_a_lock_held_past_the_busy_timeout_is_conflict(self):
        org = self.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        holder = sqlite3.connect(self.path, isolation_level=None)
        impatient = connect(self.path, init=False)
        impatient.execute("pragma busy_timeout = 50")
        impatient.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        try:
            holder.execute("begin immediate")
            before = self.db.execute("select count(*) from sys_environment").fetchone()[0]
            for sql, args in [
                ("select envdb_provision_environment(?, 'late', null, null, null, 'turso')", (org,)),
                ("select envdb_config('default_region', 'eu')", ()),
                ("select envdb_claim_provisioning_jobs('turso')", ()),
            ]:
                with self.subTest(sql=sql):
                    with self.assertRaises(sqlite3.Error) as caught:
                        impatient.execute(sql, args).fetchone()
                    message = str(caught.exception)
                    self.assertTrue(message.startswith("conflict: "), message)
                    self.assertIn("locked", message)
                    self.assertIn("retry", message)
                    self.assertTrue(impatient.in_transaction is False)
            holder.execute("rollback")
            self.assertEqual(self.db.execute("select count(*) from sys_environment").fetchone()[0], before)
            # Once the lock is gone the same call goes through.
            impatient.execute("select envdb_provision_environment(?, 'late', null, null, null, 'turso')", (org,))
            self.assertEqual(self.db.execute("select count(*) from sys_environment").fetchone()[0], before + 1)
        finally:
            holder.close()
            impatient.close()

    def test_a_callers_transaction_is_kept(self):
        # Inside the caller's own transaction envdb opens none of its own: a
        # rollback undoes the call.
        org = self.call("provision_organization", "acme", "Acme", None, None, "turso")["organization"]["id"]
        self.db.execute("begin")
        self.db.execute("select envdb_provision_environment(?, 'undone', null, null, null, 'turso')", (org,))
        self.assertTrue(self.db.in_transaction)
        self.db.execute("rollback")
        self.assertEqual(self.db.execute("select count(*) from sys_environment where slug = 'undone'").fetchone()[0], 0)


if __name__ == "__main__":
    unittest.main()
