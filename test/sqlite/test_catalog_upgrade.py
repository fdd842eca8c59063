"""init() on an existing control database upgrades its catalog in place: a
database made by each earlier release (fixtures/control-<version>.db, with its
keyring and expected rows in control-<version>.json, made by
fixtures/make_control_fixture.py) ends with the same sqlite_master and columns
as a fresh init(), every row kept, every credential still opening."""
import json
import os
import shutil
import sqlite3
import tempfile
import unittest

from envdb_sqlite import call, call_json, connect

HERE = os.path.dirname(os.path.abspath(__file__))
# Each released version's control database, and the catalog version it records.
RELEASES = {"0.1.0": 1, "0.2.0": 2, "0.3.0": 3}


def fixture(version):
    return os.path.join(HERE, "fixtures", f"control-{version}.db")


def expected(version):
    return json.load(open(os.path.join(HERE, "fixtures", f"control-{version}.json"), encoding="utf-8"))


def schema(db):
    """sqlite_master (without page numbers) and every table's columns."""
    objects = sorted(db.execute("select type, name, tbl_name, sql from sqlite_master "
                                "where name not like 'sqlite_%'").fetchall())
    columns = {t: db.execute(f"select * from pragma_table_info('{t}')").fetchall()
               for (kind, t, _, _) in objects if kind == "table"}
    return objects, columns


def rows(db, table, columns=None):
    cols = ", ".join(columns) if columns else "*"
    return sorted(map(repr, db.execute(f"select {cols} from {table}").fetchall()))


class Upgrade(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.fresh = connect()

    def tearDown(self):
        self.fresh.close()
        self.dir.cleanup()

    def copy_fixture(self, version="0.1.0"):
        path = os.path.join(self.dir.name, f"control-{version}.db")
        shutil.copy(fixture(version), path)
        return path

    def test_fixtures_hold_their_releases_catalogs(self):
        for version, catalog in RELEASES.items():
            db = sqlite3.connect(fixture(version))
            try:
                self.assertEqual(db.execute("select value from sys_config where key = 'catalog_version'").fetchone(),
                                 (str(catalog),), version)
                self.assertEqual(expected(version)["version"], version)
            finally:
                db.close()

    def test_init_upgrades_every_release_in_place(self):
        for version in RELEASES:
            with self.subTest(version=version):
                self.upgrade_in_place(version)

    def upgrade_in_place(self, version):
        EXPECTED = expected(version)
        path = self.copy_fixture(version)
        db = connect(path, init=False)
        columns = {t: [r[1] for r in db.execute(f"select * from pragma_table_info('{t}')")]
                   for t in EXPECTED["counts"]}
        before = {t: rows(db, t, cols) for t, cols in columns.items() if t != "sys_config"}
        call(db, "init")
        version = call_json(db, "build_info")["catalogVersion"]
        self.assertEqual(db.execute("select value from sys_config where key = 'catalog_version'").fetchone()[0],
                         str(version))
        self.assertEqual(schema(db), schema(self.fresh))
        for t, cols in columns.items():
            if t != "sys_config":
                self.assertEqual(rows(db, t, cols), before[t], t)
        for t, n in EXPECTED["counts"].items():
            self.assertEqual(db.execute(f"select count(*) from {t}").fetchone()[0], n, t)
        # The events the release wrote are numbered in the order they happened.
        numbered = [r[0] for r in db.execute("select seq from sys_audit_event order by occurred_at, id")]
        self.assertEqual(numbered, list(range(1, len(numbered) + 1)))
        for kid, key in EXPECTED["keyring"].items():
            call(db, "keyring_add", kid, key)
        for cred, token in EXPECTED["tokens"].items():
            self.assertEqual(call(db, "reveal_credential", cred), token)
        # Still a working control plane, and init() again changes nothing.
        org = call_json(db, "provision_organization", "initech", "Initech", None, None, "turso")
        self.assertEqual(org["organization"]["slug"], "initech")
        after = schema(db)
        call(db, "init")
        self.assertEqual(schema(db), after)
        db.close()

    def make_older_catalog(self, path):
        """A catalog whose definitions differ from this version's in every way
        init() must repair: a table without a column and with another CHECK,
        a missing and a changed index, a changed trigger and view, and rows."""
        db = connect(path)
        org = call_json(db, "provision_organization", "acme", "Acme", None, None, "turso")
        env_id = org["defaultEnvironment"]["environment"]["id"]
        call(db, "add_environment_member", env_id, "user-1", "env_user")
        sql = db.execute("select sql from sqlite_master where name = 'sys_environment'").fetchone()[0]
        self.assertIn("  dlp_policy_id TEXT,\n", sql)
        self.assertIn("  archived_at TEXT,\n", sql)
        older = (sql.replace("  dlp_policy_id TEXT,\n", "").replace("  archived_at TEXT,\n", "")
                 .replace("  expires_at TEXT,\n", "")
                 .replace("  trial_extensions INTEGER NOT NULL DEFAULT 0,\n", "")
                 .replace(", 'trial'", ""))
        db.executescript(f"""
            begin;
            create temp table saved as select * from sys_environment;
            drop table sys_environment;
            {older};
            insert into sys_environment select id, organization_id, slug, name, description, env_type, region,
              is_default, is_protected, status, created_by, metadata, created_at, updated_at from saved;
            drop table saved;
            drop index if exists sys_environment_member_user_idx;
            drop index if exists sys_provisioning_job_queue_idx;
            create index sys_provisioning_job_queue_idx on sys_provisioning_job (status);
            drop trigger sys_audit_event_append_only_UPDATE;
            create trigger sys_audit_event_append_only_UPDATE before update on sys_audit_event
              begin select raise(abort, 'old message'); end;
            drop view sys_tenant_database;
            create view sys_tenant_database as select id from sys_environment;
            update sys_config set value = '1' where key = 'catalog_version';
            commit;
        """)
        db.close()
        return org

    def test_init_rebuilds_what_differs_and_keeps_every_row(self):
        path = os.path.join(self.dir.name, "older.db")
        self.make_older_catalog(path)
        db = connect(path, init=False)
        db.execute("pragma foreign_keys = on")  # the rebuild must hold with the user's foreign keys on
        tables = [r[0] for r in db.execute("select name from sqlite_master where type = 'table'")]
        columns = {t: [r[1] for r in db.execute(f"select * from pragma_table_info('{t}')")] for t in tables}
        before = {t: rows(db, t, cols) for t, cols in columns.items() if t != "sys_config"}
        self.assertNotEqual(schema(db), schema(self.fresh))
        call(db, "init")
        self.assertEqual(schema(db), schema(self.fresh))
        for t, cols in columns.items():
            if t != "sys_config":
                self.assertEqual(rows(db, t, cols), before[t], t)
        self.assertEqual(db.execute("select dlp_policy_id, archived_at, expires_at, trial_extensions from "
                                    "sys_environment").fetchall(), [(None, None, None, 0)])
        self.assertEqual(db.execute("pragma foreign_key_check").fetchall(), [])
        with self.assertRaisesRegex(sqlite3.Error, "append-only"):
            db.execute("update sys_audit_event set actor = 'x'")
        db.close()

    def test_calls_before_init_are_refused_with_what_to_do_and_write_nothing(self):
        for version, catalog in RELEASES.items():
            with self.subTest(version=version):
                self.refused_before_init(version, catalog)

    def refused_before_init(self, version, catalog):
        EXPECTED = expected(version)
        path = self.copy_fixture(version)
        db = connect(path, init=False)
        call(db, "keyring_add", "k1", EXPECTED["keyring"]["k1"])
        counts = {t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in EXPECTED["counts"]}
        for fn, args in (("provision_organization", ("later", "Later")), ("list_database_hosts", ()),
                         ("check", ())):
            with self.assertRaisesRegex(sqlite3.Error,
                                        rf"schema_mismatch: .*catalog is version {catalog} .*envdb_init\(\)"):
                call(db, fn, *args)
        self.assertEqual({t: db.execute(f"select count(*) from {t}").fetchone()[0] for t in counts}, counts)
        call(db, "init")
        self.assertEqual(call_json(db, "provision_organization", "later", "Later")["organization"]["slug"], "later")
        db.close()

    def assert_init_refused_untouched(self, db, error):
        before = schema(db)
        with self.assertRaisesRegex(sqlite3.Error, error):
            call(db, "init")
        self.assertEqual(schema(db), before)
        db.close()

    def test_a_newer_catalog_is_refused_untouched(self):
        path = self.copy_fixture()
        db = connect(path, init=False)
        db.execute("update sys_config set value = '999' where key = 'catalog_version'")
        self.assert_init_refused_untouched(db, r"schema_mismatch: .*version 999")

    def test_a_column_envdb_does_not_define_stops_the_upgrade_with_nothing_changed(self):
        path = os.path.join(self.dir.name, "extra.db")
        self.make_older_catalog(path)
        db = connect(path, init=False)
        db.execute("alter table sys_environment add column custom TEXT")
        self.assert_init_refused_untouched(db, r"schema_mismatch: table sys_environment has a column custom")


if __name__ == "__main__":
    unittest.main()
