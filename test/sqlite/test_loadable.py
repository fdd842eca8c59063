"""The built extension loads into SQLite, registers exactly the documented
functions with deliberate flags, and reports errors with the contract's code
words without harming the connection."""
import os
import subprocess
import tempfile
import unittest

from envdb_sqlite import EXTENSION, ROOT, call, call_json, connect, documented_functions


class Loadable(unittest.TestCase):
    def test_version_from_the_sqlite3_shell(self):
        out = subprocess.run(["sqlite3", ":memory:", f".load {EXTENSION}", "select envdb_version()"],
                             cwd=ROOT, capture_output=True, text=True, check=True)
        self.assertRegex(out.stdout.strip(), r"^\d+\.\d+\.\d+$")

    def test_core_exception_reaches_the_shell_as_an_error(self):
        out = subprocess.run(["sqlite3", ":memory:", f".load {EXTENSION}", "select envdb_init()",
                              "select envdb_config('no_such_setting')"],
                             cwd=ROOT, capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("invalid_parameter: key 'no_such_setting' is not a setting", out.stderr)

    def test_connection_survives_an_error(self):
        db = connect()
        with self.assertRaisesRegex(Exception, "^invalid_parameter: "):
            call(db, "config", "no_such_setting")
        self.assertEqual(call(db, "config", "default_driver"), "sqlite")

    def test_registered_functions_match_the_reference(self):
        db = connect(init=False)
        rows = db.execute("select name, narg, flags from pragma_function_list "
                          "where name like 'envdb\\_%' escape '\\'").fetchall()
        registered = {name[len("envdb_"):] for name, _, _ in rows}
        self.assertEqual(registered, {n for n, hosts in documented_functions().items() if hosts != "postgres-data"})

    def test_side_effects_are_direct_only_and_pure_functions_deterministic(self):
        db = connect(init=False)
        flags = {name: f for name, _, f in db.execute(
            "select name, narg, flags from pragma_function_list where name like 'envdb\\_%' escape '\\'")}
        SQLITE_DETERMINISTIC, SQLITE_DIRECTONLY = 0x800, 0x80000
        self.assertTrue(flags["envdb_version"] & SQLITE_DETERMINISTIC)
        for name in ("envdb_init", "envdb_config"):
            self.assertTrue(flags[name] & SQLITE_DIRECTONLY, name)
            self.assertFalse(flags[name] & SQLITE_DETERMINISTIC, name)

    def test_uninitialized_database_says_what_to_do(self):
        db = connect(init=False)
        with self.assertRaisesRegex(Exception, "^not_found: .*envdb_init"):
            call(db, "config", "default_driver")

    def test_init_is_idempotent_and_records_the_catalog_version(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "control.db")
            db = connect(path)
            db.execute("select envdb_init()")
            version = db.execute("select value from sys_config where key = 'catalog_version'").fetchone()[0]
            self.assertEqual(version, str(call_json(db, "build_info")["catalogVersion"]))
            tables = {r[0] for r in db.execute("select name from sqlite_master where type = 'table'")}
            self.assertTrue({"sys_organization", "sys_environment", "sys_environment_database",
                             "sys_database_credential", "sys_environment_member",
                             "sys_provisioning_job", "sys_audit_event"} <= tables)

    def test_bad_arguments_are_refused_with_the_field_named(self):
        db = connect()
        cases = [
            (("config", 42), "key must be text"),
            (("config", "default_driver\x00x"), "key contains a NUL byte"),
            (("config", b"\xff\xfe".decode("latin-1")), "not a setting"),
            (("config", "a", "b", "c"), "takes at most 2 arguments"),
            (("config", "rotation_grace_seconds", "-5"), "whole number of seconds"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                with self.assertRaisesRegex(Exception, "^invalid_parameter: .*" + message):
                    call(db, *args)
        self.assertEqual(db.execute("select count(*) from sys_config where key <> 'catalog_version'").fetchone()[0], 0)

    def test_catalog_changes_inside_a_write_statement_are_refused_cleanly(self):
        db = connect()
        db.execute("create table log (r text)")
        with self.assertRaisesRegex(Exception, "^conflict: .*from a SELECT statement"):
            db.execute("insert into log select envdb_config('default_region', 'eu-9')")
        self.assertEqual(call(db, "config", "default_region"), "default")
        self.assertEqual(db.execute("select count(*) from log").fetchone()[0], 0)
        # Reading functions work anywhere.
        db.execute("insert into log select envdb_config('default_region')")
        self.assertEqual(db.execute("select r from log").fetchone()[0], "default")

    def test_setting_survives_reconnect(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "control.db")
            call(connect(path), "config", "default_region", "eu-1")
            self.assertEqual(call(connect(path), "config", "default_region"), "eu-1")


if __name__ == "__main__":
    unittest.main()
