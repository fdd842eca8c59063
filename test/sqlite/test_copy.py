"""Copies, resets, backups and restores of sqlite-driver environments (tenancy/copy,
tenancy/backups): full and schema copies into an existing sandbox and into a new environment, the
source unchanged, the target stamped with its own identity and still resolved with its own
credentials, the refusals (production, protected, default) and their force, reset, backup ->
change -> restore, retention, and processes ended (_exit, as kill -9) at every step of a copy,
reset, backup and restore: the target is the old or the new content and check() ends clean."""
import base64
import json
import os
import sqlite3
import subprocess
import tempfile
import unittest

from envdb_sqlite import EXTENSION, call_json, connect

PYTHON = "/usr/bin/python3"
KEY = base64.b64encode(bytes(range(32))).decode()

# A user schema: tables, an index, a view, a trigger, an AUTOINCREMENT table, a foreign key.
USER_SCHEMA = """
create table customer (id integer primary key autoincrement, name text not null, email text unique);
create table orders (id integer primary key, customer_id integer references customer(id), total real);
create index orders_customer on orders(customer_id);
create view big_orders as select * from orders where total > 100;
create table audit_log (what text);
create trigger customer_audit after insert on customer begin insert into audit_log values (new.name); end;
create trigger no_delete before delete on orders begin select raise(abort, 'orders are kept'); end;
"""


def dump(path, rows=True):
    """The schema (sqlite_master) and, with rows, every row of every table, of a database file."""
    db = sqlite3.connect(path)
    try:
        schema = sorted(db.execute("select type, name, tbl_name, sql from sqlite_master "
                                   "where name not like 'sqlite_autoindex%'").fetchall(), key=str)
        out = {"schema": schema}
        if rows:
            for (t,) in db.execute("select name from sqlite_master where type = 'table' order by name"):
                out[t] = sorted(db.execute(f'select * from "{t}"').fetchall(), key=repr)
        return out
    finally:
        db.close()


def stamp(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("select environment_id, organization_id, database_name from "
                          "sys_environment_info").fetchone()
    finally:
        db.close()


class CopyBase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.control = os.path.join(self.dir.name, "control.db")
        self.data_dir = os.path.join(self.dir.name, "envs")
        self.db = connect(self.control)
        self.db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
        self.db.execute("select envdb_config('sqlite_data_dir', ?)", (self.data_dir,))
        org = self.call("provision_organization", "acme", "Acme", None, None, "sqlite")
        self.org = org["organization"]["id"]
        self.default_env = org["defaultEnvironment"]["environment"]["id"]
        self.dev = self.new_env("dev", "development")
        self.sandbox = self.new_env("sandbox", "sandbox")
        with self.open(self.dev) as f:
            f.executescript(USER_SCHEMA)
            for i in range(50):
                f.execute("insert into customer (name, email) values (?, ?)", (f"c{i}", f"c{i}@x"))
                f.execute("insert into orders values (?, ?, ?)", (i, i + 1, i * 7.5))
            f.execute("insert into sys_package_installation (id, package_id, version, status) "
                      "values ('p1', 'crm', '1.0', 'active')")
            f.commit()
        with self.open(self.sandbox) as f:
            f.execute("create table sandbox_only (x)")
            f.execute("insert into sandbox_only values (1)")
            f.commit()

    def tearDown(self):
        self.db.close()
        self.dir.cleanup()

    def call(self, fn, *args):
        return call_json(self.db, fn, *args)

    def new_env(self, slug, env_type, **kw):
        return self.call("provision_environment", self.org, slug, None, env_type, None, "sqlite",
                         False, kw.get("protected"))["environment"]["id"]

    def path(self, env_id):
        return self.call("resolve_environment", env_id, "admin")["databaseUrl"][len("file:"):]

    def open(self, env_id):
        return sqlite3.connect(self.path(env_id))

    def identity(self, env_id):
        e = self.call("get_environment", env_id)
        return (env_id, self.org, e["database"]["databaseName"])

    def check_clean(self):
        first = json.loads(self.db.execute("select envdb_check(1)").fetchone()[0])
        second = json.loads(self.db.execute("select envdb_check(0)").fetchone()[0])
        self.assertTrue(second["ok"], second)
        return first


class Copies(CopyBase):
    def test_full_copy_into_an_existing_sandbox(self):
        source_before = dump(self.path(self.dev))
        credentials = self.call("get_environment", self.sandbox)["credentials"]
        token = self.call("resolve_environment", self.sandbox, "readwrite")["credential"]
        out = self.call("copy_environment", self.dev, self.sandbox, "full")
        self.assertEqual((out["environment"]["id"], out["mode"], out["job"]),
                         (self.sandbox, "full", None))
        self.assertEqual(out["environment"]["status"], "active")
        # The source is unchanged, rows and schema.
        self.assertEqual(dump(self.path(self.dev)), source_before)
        target = dump(self.path(self.sandbox))
        for t in ("customer", "orders", "audit_log", "sys_schema_migration", "sys_package_installation"):
            self.assertEqual(target[t], source_before[t], t)
        self.assertNotIn("sandbox_only", target)
        self.assertEqual(target["schema"], source_before["schema"])
        # Stamped with its own identity, same credentials, resolved to its own file.
        self.assertEqual(stamp(self.path(self.sandbox)), self.identity(self.sandbox))
        self.assertEqual(stamp(self.path(self.dev)), self.identity(self.dev))
        self.assertEqual(self.call("get_environment", self.sandbox)["credentials"], credentials)
        self.assertEqual(self.call("resolve_environment", self.sandbox, "readwrite")["credential"], token)
        # The data plane accepts the copy as the target's own (another stamp is schema_mismatch).
        f = connect(self.path(self.sandbox), init=False)
        init = call_json(f, "init_environment_schema", *self.identity(self.sandbox))
        f.close()
        self.assertEqual((init["environmentId"], init["applied"]), (self.sandbox, []))
        # The copy works: the trigger and the AUTOINCREMENT sequence came along.
        with self.open(self.sandbox) as f:
            f.execute("insert into customer (name) values ('new')")
            self.assertEqual(f.execute("select count(*) from audit_log").fetchone()[0], 51)
            self.assertEqual(f.execute("select max(id) from customer").fetchone()[0], 51)
        events = self.db.execute("select action, detail from sys_audit_event where environment_id = ? "
                                 "and action = 'environment.copy'", (self.sandbox,)).fetchall()
        self.assertEqual(len(events), 1)
        self.assertEqual(json.loads(events[0][1])["sourceEnvironmentId"], self.dev)
        self.assertEqual(self.check_clean()["findings"], [])

    def test_schema_copy_keeps_objects_without_rows(self):
        source_before = dump(self.path(self.dev))
        self.call("copy_environment", self.dev, self.sandbox, "schema")
        self.assertEqual(dump(self.path(self.dev)), source_before)
        target = dump(self.path(self.sandbox))
        self.assertEqual(target["schema"], source_before["schema"])  # tables, index, view, triggers
        for t in ("customer", "orders", "audit_log"):
            self.assertEqual(target[t], [], t)
        # envdb's data plane stays consistent: ledger and packages as in the source, stamp re-made.
        self.assertEqual(target["sys_schema_migration"], source_before["sys_schema_migration"])
        self.assertEqual(target["sys_package_installation"], source_before["sys_package_installation"])
        self.assertEqual(stamp(self.path(self.sandbox)), self.identity(self.sandbox))
        self.assertEqual(target.get("sqlite_sequence", []), [])
        with self.open(self.sandbox) as f:  # the triggers are back and fire
            f.execute("insert into customer (name) values ('first')")
            self.assertEqual(f.execute("select id from customer").fetchone()[0], 1)
            self.assertEqual(f.execute("select count(*) from audit_log").fetchone()[0], 1)
        self.assertEqual(self.check_clean()["findings"], [])

    def test_new_environment_as_a_copy(self):
        source_before = dump(self.path(self.dev))
        for mode in ("full", "schema"):
            with self.subTest(mode=mode):
                out = call_json(self.db, "provision_environment", self.org, "copy-" + mode, None, "sandbox",
                                None, None, False, None, None, None, None, None, False, None, self.dev, mode)
                new = out["environment"]["id"]
                self.assertEqual(out["environment"]["status"], "active")
                self.assertEqual(out["database"]["driver"], "sqlite")  # the source's driver
                target = dump(self.path(new))
                self.assertEqual(target["customer"], source_before["customer"] if mode == "full" else [])
                self.assertEqual(target["schema"], source_before["schema"])
                self.assertEqual(stamp(self.path(new)), self.identity(new))
        # The request form too.
        out = json.loads(self.db.execute("select envdb_provision_environment(?)", (json.dumps(
            {"organizationId": self.org, "slug": "copy-req", "copyFrom": self.dev, "copyMode": "schema"}),))
            .fetchone()[0])
        self.assertEqual(dump(self.path(out["environment"]["id"]))["customer"], [])
        self.assertEqual(dump(self.path(self.dev)), source_before)
        self.assertEqual(self.check_clean()["findings"], [])

    def test_production_protected_and_default_targets_need_force(self):
        prod = self.new_env("prod", "production")
        guarded = self.new_env("guarded", "sandbox", protected=True)
        for target, word in ((prod, "production"), (guarded, "protected"), (self.default_env, "default")):
            with self.subTest(target=word):
                before = dump(self.path(target))
                for fn, args in (("copy_environment", (self.dev, target, "full")),
                                 ("reset_environment", (target,))):
                    with self.assertRaises(sqlite3.Error) as e:
                        self.call(fn, *args)
                    self.assertTrue(str(e.exception).startswith("conflict:"), str(e.exception))
                    self.assertIn("force", str(e.exception))
                    self.assertEqual(dump(self.path(target)), before)
                self.call("copy_environment", self.dev, target, "full", True)
                self.assertEqual(len(dump(self.path(target))["customer"]), 50)

    def test_suspended_source_copies_and_suspended_target_stays_suspended(self):
        self.call("set_environment_status", self.dev, "suspended")
        self.call("set_environment_status", self.sandbox, "suspended")
        out = self.call("copy_environment", self.dev, self.sandbox)
        self.assertEqual(out["environment"]["status"], "suspended")
        self.assertEqual(out["mode"], "full")

    def test_a_target_whose_wal_is_in_use_is_refused(self):
        reader = self.open(self.sandbox)
        reader.execute("pragma journal_mode = wal")
        reader.execute("insert into sandbox_only values (2)")
        reader.commit()
        reader.execute("begin")
        reader.execute("select count(*) from sandbox_only").fetchone()  # holds a read snapshot
        with self.assertRaises(sqlite3.Error) as e:
            self.call("copy_environment", self.dev, self.sandbox)
        self.assertTrue(str(e.exception).startswith("conflict:"), str(e.exception))
        reader.rollback()
        reader.close()
        self.assertEqual(dump(self.path(self.sandbox))["sandbox_only"], [(1,), (2,)])
        self.call("copy_environment", self.dev, self.sandbox)
        self.assertNotIn("sandbox_only", dump(self.path(self.sandbox)))
        self.assertEqual(self.check_clean()["findings"], [])

    def test_reset_empties_back_to_the_data_plane(self):
        credentials = self.call("get_environment", self.dev)["credentials"]
        self.call("reset_environment", self.dev)
        after = dump(self.path(self.dev))
        self.assertEqual({name for _, name, _, _ in after["schema"] if not name.startswith("sys_")}, set())
        self.assertEqual(after["sys_package_installation"], [])
        self.assertEqual([v for v, *_ in after["sys_schema_migration"]], [1])
        self.assertEqual(stamp(self.path(self.dev)), self.identity(self.dev))
        self.assertEqual(self.call("get_environment", self.dev)["credentials"], credentials)
        self.assertEqual(self.db.execute("select count(*) from sys_audit_event where action = "
                                         "'environment.reset'").fetchone()[0], 1)
        self.assertEqual(self.check_clean()["findings"], [])


class Backups(CopyBase):
    def rows(self, env_id):
        with self.open(env_id) as f:
            return f.execute("select id, name from customer order by id").fetchall()

    def test_backup_change_restore(self):
        before = self.rows(self.dev)
        b = self.call("backup_environment", self.dev, "before the change")["backup"]
        self.assertEqual((b["status"], b["label"], b["driver"]), ("ready", "before the change", "sqlite"))
        self.assertGreater(b["sizeBytes"], 0)
        self.assertTrue(os.path.isfile(b["location"]))
        self.assertEqual(os.path.dirname(b["location"]), os.path.join(os.path.realpath(self.data_dir), "backups"))
        with self.open(self.dev) as f:
            f.execute("delete from audit_log")
            f.execute("update customer set name = 'changed'")
            f.execute("insert into customer (name) values ('later')")
            f.commit()
        self.assertNotEqual(self.rows(self.dev), before)
        self.assertEqual([x["id"] for x in self.call("list_environment_backups", self.dev)], [b["id"]])
        out = self.call("restore_environment", self.dev, b["id"])
        self.assertEqual(out["environment"]["status"], "active")
        self.assertEqual(self.rows(self.dev), before)
        self.assertEqual(stamp(self.path(self.dev)), self.identity(self.dev))
        # Another environment's backup is refused; a deleted one too.
        with self.assertRaises(sqlite3.Error) as e:
            self.call("restore_environment", self.sandbox, b["id"])
        self.assertTrue(str(e.exception).startswith("invalid_parameter:"))
        deleted = self.call("delete_environment_backup", b["id"])["backup"]
        self.assertEqual(deleted["status"], "deleted")
        self.assertFalse(os.path.exists(b["location"]))
        self.assertEqual(self.call("list_environment_backups", self.dev), [])
        with self.assertRaises(sqlite3.Error) as e:
            self.call("restore_environment", self.dev, b["id"])
        self.assertTrue(str(e.exception).startswith("invalid_transition:"))
        actions = [a for (a,) in self.db.execute("select action from sys_audit_event where environment_id = ? "
                                                 "order by occurred_at, id", (self.dev,))]
        for a in ("environment.backup", "environment.restore", "backup.delete"):
            self.assertIn(a, actions)
        self.assertEqual(self.check_clean()["findings"], [])

    def test_restore_into_production_needs_force(self):
        prod = self.new_env("prod", "production")
        b = self.call("backup_environment", prod)["backup"]
        with self.assertRaises(sqlite3.Error) as e:
            self.call("restore_environment", prod, b["id"])
        self.assertTrue(str(e.exception).startswith("conflict:"))
        self.call("restore_environment", prod, b["id"], True)

    def test_retention_count_and_age(self):
        self.db.execute("select envdb_config('backup_retention_count', '2')")
        made = [self.call("backup_environment", self.dev, f"b{i}")["backup"] for i in range(4)]
        listed = self.call("list_environment_backups", self.dev)
        self.assertEqual([b["label"] for b in listed], ["b3", "b2"])
        for b in made[:2]:
            self.assertFalse(os.path.exists(b["location"]))
        self.db.execute("select envdb_config('backup_retention_count', '0')")
        self.db.execute("select envdb_config('backup_retention_seconds', '1')")
        self.db.execute("update sys_environment_backup set created_at = '2000-01-01T00:00:00.000Z' "
                        "where status = 'ready'")
        self.call("backup_environment", self.dev, "fresh")
        self.assertEqual([b["label"] for b in self.call("list_environment_backups", self.dev)], ["fresh"])
        with self.assertRaises(sqlite3.Error) as e:
            self.db.execute("select envdb_config('backup_retention_count', 'many')")
        self.assertIn("backup_retention_count", str(e.exception))

    def test_archive_keeps_backups_and_drop_removes_them(self):
        b = self.call("backup_environment", self.sandbox)["backup"]
        self.call("archive_environment", self.sandbox)
        self.assertTrue(os.path.exists(b["location"]))
        self.assertEqual(len(self.call("list_environment_backups", self.sandbox)), 1)
        self.call("drop_environment_database", self.sandbox, True)
        self.assertFalse(os.path.exists(b["location"]))
        self.assertEqual(self.call("list_environment_backups", self.sandbox), [])
        self.assertEqual(self.check_clean()["findings"], [])


class PostgresDriverJobs(CopyBase):
    """The postgres driver's side as the catalog sees it (the worker that carries the jobs out is
    Postgres's): the jobs queued, their payloads, the maintenance hold and its release."""

    def pg_env(self, slug, env_type="sandbox"):
        out = self.call("provision_environment", self.org, slug, None, env_type, None, "postgres")
        job = self.call("claim_provisioning_jobs", "postgres", 10, "test")
        self.call("complete_provisioning_job", job[0]["id"], f"postgresql://server/{slug}")
        return out["environment"]["id"], out["database"]["databaseName"]

    def claim(self, kind):
        jobs = self.call("claim_provisioning_jobs", "postgres", 10, "test")
        self.assertEqual([j["kind"] for j in jobs], [kind])
        return jobs[0]

    def status(self, env_id):
        return self.call("get_environment", env_id)["environment"]["status"]

    def test_copy_reset_restore_hold_the_environment_until_the_job_ends(self):
        source, source_name = self.pg_env("pg-dev", "development")
        target, target_name = self.pg_env("pg-sandbox")
        with self.assertRaises(sqlite3.Error) as e:  # another driver
            self.call("copy_environment", self.dev, target)
        self.assertTrue(str(e.exception).startswith("conflict:"))
        out = self.call("copy_environment", source, target, "schema")
        self.assertEqual((out["environment"]["status"], out["job"]["kind"]), ("maintenance", "copy_database"))
        with self.assertRaises(sqlite3.Error) as e:
            self.call("resolve_environment", target, "readwrite")
        self.assertTrue(str(e.exception).startswith("conflict:"))
        for fn, args in (("set_environment_status", (target, "active")), ("archive_environment", (target, True)),
                         ("copy_environment", (source, target, "full", True)), ("backup_environment", (target,))):
            with self.assertRaises(sqlite3.Error) as e:
                self.call(fn, *args)
            self.assertTrue(str(e.exception).startswith("invalid_transition:"), (fn, str(e.exception)))
        job = self.claim("copy_database")
        self.assertEqual(job["payload"], {
            "databaseName": target_name, "hostId": None, "mode": "schema", "previousStatus": "active",
            "sourceDatabaseId": self.call("get_environment", source)["database"]["id"],
            "sourceDatabaseName": source_name, "sourceEnvironmentId": source, "sourceHostId": None,
            "targetDatabaseName": target_name, "targetHostId": None})
        with self.assertRaises(sqlite3.Error) as e:  # the database stays where it is
            self.call("complete_provisioning_job", job["id"], "postgresql://elsewhere/x")
        self.assertTrue(str(e.exception).startswith("invalid_parameter:"))
        self.call("fail_provisioning_job", job["id"], "try again", True)
        self.assertEqual(self.status(target), "maintenance")  # a retry keeps the hold
        job = self.claim("copy_database")
        self.call("complete_provisioning_job", job["id"])
        self.assertEqual(self.status(target), "active")
        # A suspended target gets suspended back, after a failure too.
        self.call("set_environment_status", target, "suspended")
        self.call("reset_environment", target)
        job = self.claim("reset_database")
        self.assertEqual((job["payload"]["previousStatus"], job["payload"]["databaseName"]),
                         ("suspended", target_name))
        self.call("fail_provisioning_job", job["id"], "server gone", False)
        self.assertEqual(self.status(target), "suspended")
        ends = self.db.execute("select json_extract(detail, '$.outcome') from sys_audit_event where action = "
                               "'environment.maintenance_end' order by occurred_at, id").fetchall()
        self.assertEqual(ends, [("done",), ("failed",)])

    def test_backup_restore_delete_and_drop(self):
        env, name = self.pg_env("pg-app")
        b = self.call("backup_environment", env, "nightly")
        self.assertEqual((b["backup"]["status"], b["job"]["kind"]), ("pending", "backup_database"))
        self.assertRegex(b["backup"]["location"], r"^env-[a-z2-7]{26}_b_[a-z2-7]{26}$")
        job = self.claim("backup_database")
        self.assertEqual(job["payload"], {"backupId": b["backup"]["id"], "databaseName": name, "hostId": None,
                                          "location": b["backup"]["location"]})
        with self.assertRaises(sqlite3.Error) as e:  # not ready yet
            self.call("restore_environment", env, b["backup"]["id"])
        self.assertTrue(str(e.exception).startswith("invalid_transition:"))
        self.call("complete_provisioning_job", job["id"])
        self.assertEqual(self.call("list_environment_backups", env)[0]["status"], "ready")
        self.call("restore_environment", env, b["backup"]["id"])
        job = self.claim("restore_database")
        self.assertEqual((job["payload"]["backupId"], job["payload"]["location"], job["payload"]["previousStatus"]),
                         (b["backup"]["id"], b["backup"]["location"], "active"))
        self.call("complete_provisioning_job", job["id"])
        self.assertEqual(self.status(env), "active")
        failed = self.call("backup_environment", env)["backup"]
        self.call("fail_provisioning_job", self.claim("backup_database")["id"], "disk full", False)
        self.assertEqual(self.call("list_environment_backups", env)[0]["status"], "failed")
        deleting = self.call("delete_environment_backup", failed["id"])["backup"]
        self.assertEqual(deleting["status"], "deleting")
        self.call("complete_provisioning_job", self.claim("delete_backup")["id"])
        self.assertEqual([x["id"] for x in self.call("list_environment_backups", env)], [b["backup"]["id"]])
        # Archiving keeps the backup; the drop queues its deletion with the database's.
        self.call("archive_environment", env, True)
        self.claim("disable_login")
        self.assertEqual(len(self.call("list_environment_backups", env)), 1)
        self.call("drop_environment_database", env, True)
        jobs = self.call("claim_provisioning_jobs", "postgres", 10, "test")
        self.assertEqual(sorted(j["kind"] for j in jobs), ["delete_backup", "drop_database"])
        for j in jobs:
            self.call("complete_provisioning_job", j["id"])
        self.assertEqual(self.call("list_environment_backups", env), [])


# The child: one envdb call, ended by ENVDB_TEST_CRASH_AT at its n-th crash point.
CHILD = r"""
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
db.enable_load_extension(True)
db.load_extension(sys.argv[2])
db.execute("select envdb_keyring_add('k1', ?)", (sys.argv[3],))
print(db.execute(sys.argv[4], json.loads(sys.argv[5])).fetchone()[0], flush=True)
"""


class Crashes(CopyBase):
    """A process ended at each step of a file operation leaves the target's old content or its new
    one, never a mix, and at most a temporary file that check(1) deletes."""

    def run_child(self, sql, params, at):
        env = dict(os.environ, ENVDB_TEST_CRASH_AT=str(at))
        return subprocess.run([PYTHON, "-c", CHILD, self.control, EXTENSION, KEY, sql, json.dumps(params)],
                              env=env, capture_output=True, text=True, timeout=60)

    def crash_series(self, sql, params, target_path, old, new, content):
        """Runs the call with a crash at points 1, 2, ... until one run finishes; returns how many
        crash points were hit."""
        hit = 0
        for at in range(1, 20):
            done = self.run_child(sql, params, at)
            self.assertNotIn("Traceback", done.stderr[:2000] if done.returncode == 0 else "")
            now = content(target_path)
            self.assertIn(now, (old, new), f"crash point {at}: neither the old nor the new content")
            self.check_clean()
            leftovers = [n for n in os.listdir(os.path.dirname(target_path)) if ".tmp-" in n]
            self.assertEqual(leftovers, [], f"crash point {at}")
            if done.returncode == 0:
                self.assertEqual(now, new)
                return hit
            self.assertEqual(done.returncode, 137, done.stderr)
            hit += 1
            if now == new:  # killed after the rename: put the old content back for the next point
                self.restore_old(target_path)
        self.fail("the call never finished")

    def test_kill_at_every_step(self):
        target = self.path(self.sandbox)
        self.backup_of_old = self.call("backup_environment", self.sandbox)["backup"]["id"]

        def customers(path):
            db = sqlite3.connect(path)
            try:
                tables = {n for (n,) in db.execute("select name from sqlite_master where type = 'table'")}
                return ("customer" in tables,
                        db.execute("select count(*) from customer").fetchone()[0] if "customer" in tables else 0,
                        "sandbox_only" in tables, db.execute("select environment_id from "
                                                             "sys_environment_info").fetchone())
            finally:
                db.close()

        old = customers(target)

        def restore_old(path):
            self.call("restore_environment", self.sandbox, self.backup_of_old)
        self.restore_old = restore_old

        points = 0
        points += self.crash_series("select envdb_copy_environment(?, ?, 'full')", [self.dev, self.sandbox],
                                    target, old, (True, 50, False, (self.sandbox,)), customers)
        restore_old(target)
        points += self.crash_series("select envdb_copy_environment(?, ?, 'schema')", [self.dev, self.sandbox],
                                    target, old, (True, 0, False, (self.sandbox,)), customers)
        restore_old(target)
        points += self.crash_series("select envdb_reset_environment(?)", [self.sandbox],
                                    target, old, (False, 0, False, (self.sandbox,)), customers)
        restore_old(target)
        # A restore: from the reset content back to the backup.
        self.call("reset_environment", self.sandbox)
        reset = customers(target)
        self.restore_old = lambda path: self.call("reset_environment", self.sandbox)
        points += self.crash_series("select envdb_restore_environment(?, ?)", [self.sandbox, self.backup_of_old],
                                    target, reset, old, customers)
        # A backup: the environment's content never changes; a killed backup leaves no file.
        before = sorted(os.listdir(os.path.join(self.data_dir, "backups")))
        self.restore_old = lambda path: None
        points += self.crash_series("select envdb_backup_environment(?)", [self.sandbox],
                                    target, old, old, customers)
        after = sorted(os.listdir(os.path.join(self.data_dir, "backups")))
        self.assertEqual(len(after), len(before) + 1)  # only the finished backup's file
        self.assertGreaterEqual(points, 30)
        print(f"\n  [copy crashes] {points} crash points, each left the old or the new content", flush=True)


if __name__ == "__main__":
    unittest.main()
