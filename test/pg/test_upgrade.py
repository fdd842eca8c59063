"""ALTER EXTENSION ... UPDATE from every frozen release's install scripts: every row
kept, every credential still opens, and the catalog left is the one a fresh
install of the current version makes (tables, columns, constraints, indexes,
triggers, views, policies, functions with their attributes and ACLs, grants,
comments, extension membership and pg_extension_config_dump settings)."""
import io
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import CATALOG_TABLES, HostError, PostgresHost, postgres_available  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FROZEN = os.path.join(ROOT, "pg_ext", "sql")


def releases():
    """Every earlier version whose install script is frozen in pg_ext/sql."""
    found = sorted({f[len("envdb--"):-len(".sql")] for f in os.listdir(FROZEN)
                    if f.startswith("envdb--") and f.endswith(".sql")},
                   key=lambda v: tuple(int(x) for x in v.split(".")))
    assert {"0.1.0", "0.2.0", "0.3.0"} <= set(found), found
    return found


def current_version():
    for line in open(os.path.join(ROOT, "shared", "core", "version.hpp"), encoding="utf-8"):
        if "kVersion" in line:
            return line.split('"')[1]
    raise AssertionError("no kVersion in shared/core/version.hpp")


def copy_rows(source, target, columns):
    """Copies the rows of each table from source into target, as the columns
    target's catalog has, in the catalog's order (parents first); rows target
    already holds (its own settings) are kept."""
    for table, cols in columns.items():
        names = ", ".join(cols)
        out = source.conn.cursor()
        data = io.StringIO()
        out.copy_expert(f"COPY (SELECT {names} FROM envdb.{table}) TO STDOUT", data)
        data.seek(0)
        cur = target.conn.cursor()
        cur.execute(f"CREATE TEMP TABLE copy_{table} AS SELECT {names} FROM envdb.{table} WITH NO DATA")
        cur.copy_expert(f"COPY copy_{table} ({names}) FROM STDIN", data)
        cur.execute(f"INSERT INTO envdb.{table} ({names}) SELECT {names} FROM copy_{table} ON CONFLICT DO NOTHING")
        cur.execute(f"DROP TABLE copy_{table}")


class Database(PostgresHost):
    """A scratch database with one extension at a chosen version."""

    def __init__(self, extension, version=None):
        super().__init__("envdb_upgrade",
                         f"CREATE EXTENSION {extension}" + (f" VERSION '{version}'" if version else ""))

    def columns(self, tables):
        return {t: [r[0] for r in self.sql("select attname from pg_attribute where attrelid = %s::regclass "
                                           "and attnum > 0 and not attisdropped order by attnum",
                                           (f"envdb.{t}",))] for t in tables}

    def rows(self, columns):
        """Every row of each table, as the given columns (a later version may add some)."""
        return {t: sorted(map(repr, self.sql(f"select {', '.join(cols)} from envdb.{t}")))
                for t, cols in columns.items()}

    def catalog(self, extension):
        """Everything in schema envdb and the extension that a user or pg_dump can see."""
        q = {
            "relations": """
                select c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                       c.reloptions::text, c.relacl::text, obj_description(c.oid, 'pg_class'),
                       c.relpersistence
                  from pg_class c where c.relnamespace = 'envdb'::regnamespace""",
            "columns": """
                select c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                       a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl::text,
                       col_description(c.oid, a.attnum), a.attidentity, a.attgenerated,
                       a.attcollation::regcollation::text
                  from pg_class c join pg_attribute a on a.attrelid = c.oid
                  left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
                 where c.relnamespace = 'envdb'::regnamespace and a.attnum > 0 and not a.attisdropped""",
            "constraints": """
                select conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid),
                       condeferrable, condeferred, convalidated, obj_description(oid, 'pg_constraint')
                  from pg_constraint where connamespace = 'envdb'::regnamespace""",
            "indexes": """
                select tablename, indexname, indexdef from pg_indexes where schemaname = 'envdb'""",
            "triggers": """
                select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled
                  from pg_trigger
                 where not tgisinternal and tgrelid in (select oid from pg_class
                                                         where relnamespace = 'envdb'::regnamespace)""",
            "views": """
                select viewname, definition from pg_views where schemaname = 'envdb'""",
            "policies": """
                select tablename, policyname, permissive, roles::text, cmd, qual, with_check
                  from pg_policies where schemaname = 'envdb'""",
            "functions": """
                select p.proname, pg_get_function_identity_arguments(p.oid),
                       pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
                       p.prokind, p.provolatile, p.prosecdef, p.proparallel, p.proisstrict,
                       p.proleakproof, p.proconfig::text, p.proacl::text, p.prosrc, p.probin,
                       l.lanname, p.procost, p.prorows, obj_description(p.oid, 'pg_proc'),
                       p.proowner::regrole::text
                  from pg_proc p join pg_language l on l.oid = p.prolang
                 where p.pronamespace = 'envdb'::regnamespace""",
            "schema": """
                select nspname, nspacl::text, obj_description(oid, 'pg_namespace'),
                       nspowner::regrole::text
                  from pg_namespace where nspname = 'envdb'""",
            "extension": """
                select extname, extversion, extrelocatable, extnamespace::regnamespace::text,
                       (select array_agg(c::regclass::text order by c::regclass::text)
                          from unnest(extconfig) c)::text,
                       (select array_agg(x order by x) from unnest(extcondition) x)::text
                  from pg_extension where extname = %s""",
            "members": """
                select pg_describe_object(classid, objid, objsubid) from pg_depend
                 where refclassid = 'pg_extension'::regclass and deptype = 'e'
                   and refobjid = (select oid from pg_extension where extname = %s)""",
            "roles": """
                select rolname from pg_roles where rolname like 'envdb\\_%%'""",
        }
        out = {}
        for name, sql in q.items():
            params = (extension,) if "%s" in sql else ()
            out[name] = sorted(map(repr, self.sql(sql, params)))
        return out


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Upgrade(unittest.TestCase):
    maxDiff = None

    def assertSameCatalog(self, upgraded, fresh):
        self.assertEqual(set(upgraded), set(fresh))
        for part in fresh:
            self.assertEqual(upgraded[part], fresh[part], f"catalog part {part!r} differs after the upgrade")

    def test_update_paths_are_installed(self):
        for old in releases():
            with self.subTest(version=old):
                self.update_path_installed(old)

    def update_path_installed(self, release):
        db = Database("envdb", release)
        try:
            paths = db.sql("select source, target, path from pg_extension_update_paths('envdb') "
                           "where source = %s and target = %s", (release, current_version()))
            self.assertEqual(paths, [(release, current_version(), f"{release}--{current_version()}")])
            self.assertEqual(db.sql("select extversion from pg_extension where extname = 'envdb'"), [(release,)])
        finally:
            db.close()

    def test_control_plane_update_keeps_rows_and_matches_a_fresh_install(self):
        for old in releases():
            with self.subTest(version=old):
                self.control_plane_update(old)

    def control_plane_update(self, release):
        old = Database("envdb", release)
        fresh = Database("envdb")
        source = Database("envdb")
        try:
            # The library installed is the current version's, and it refuses
            # to run against older SQL objects (below). So the rows an older
            # installation holds are made by envdb in a scratch database and
            # copied into the older catalog, column by column: organizations,
            # environments, credentials (sealed, bound to their row ids, so
            # they open after the copy), members, jobs, audit.
            org = source.call("provision_organization", "acme", "Acme", None, "eu-1", "turso")
            org_id = org["organization"]["id"]
            env = source.call("provision_environment", org_id, "dev", None, None, None, "turso")
            source.call("provision_environment", org_id, "queued", None, None, None, "postgres")
            for job in source.call("claim_provisioning_jobs", "turso", 10):
                source.call("complete_provisioning_job", job["id"], "libsql://x",
                            {"readwrite": f"tok-{job['id']}", "readonly": f"ro-{job['id']}"})
            source.call("add_environment_member", env["environment"]["id"], "user-1", "env_user")
            source.call("add_environment_member", env["environment"]["id"], "user-2", "env_admin")
            source.call("rotate_credential", env["database"]["id"], "readwrite", None, "tok-rotated")
            source.call("issue_credential", env["database"]["id"], "admin", "tok-admin")
            source.call("config", "rotation_grace_seconds", "3600")
            # The tables the older version has (a table a later version adds
            # is created by the update, empty).
            tables = [t for t in CATALOG_TABLES
                      if old.sql("select to_regclass(%s) is not null", (f"envdb.{t}",))[0][0]]
            columns = old.columns(tables)
            copy_rows(source, old, columns)

            # Before the update: a clear refusal, not a failure half-way.
            with self.assertRaises(HostError) as refused:
                old.call("version")
            self.assertEqual(refused.exception.code, "schema_mismatch")
            self.assertIn("ALTER EXTENSION envdb UPDATE", refused.exception.message)

            for t in tables:
                self.assertGreater(old.sql(f"select count(*) from envdb.{t}")[0][0], 0,
                                   f"{t} holds no row before the upgrade")
            creds = [r[0] for r in old.sql("select id from envdb.sys_database_credential where status <> 'revoked'")]
            secrets = {c: source.call("reveal_credential", c) for c in creds}
            self.assertGreater(len(secrets), 3)
            before = old.rows(columns)

            old.sql("ALTER EXTENSION envdb UPDATE")
            self.assertEqual(old.sql("select extversion from pg_extension where extname = 'envdb'"),
                             [(current_version(),)])
            self.assertEqual(old.rows(columns), before)
            for cred, token in secrets.items():
                self.assertEqual(old.call("reveal_credential", cred), token)
            self.assertEqual(old.call("version"), current_version())
            self.assertSameCatalog(old.catalog("envdb"), fresh.catalog("envdb"))
            # And it keeps working: a new organization after the upgrade.
            self.assertEqual(old.call("provision_organization", "globex", "Globex", None, None, "turso")
                             ["organization"]["slug"], "globex")
        finally:
            old.close()
            fresh.close()
            source.close()

    def test_data_plane_update_matches_a_fresh_install(self):
        for old in releases():
            with self.subTest(version=old):
                self.data_plane_update(old)

    def data_plane_update(self, release):
        old = Database("envdb_data", release)
        fresh = Database("envdb_data")
        env_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        try:
            old.call("init_environment_schema", env_id, None, "env-db")
            columns = old.columns(["sys_schema_migration", "sys_environment_info", "sys_package_installation"])
            before = old.rows(columns)
            old.sql("ALTER EXTENSION envdb_data UPDATE")
            self.assertEqual(old.sql("select extversion from pg_extension where extname = 'envdb_data'"),
                             [(current_version(),)])
            self.assertEqual(old.rows(columns), before)
            self.assertEqual(old.call("init_environment_schema", env_id)["environmentId"], env_id)
            fresh.call("init_environment_schema", env_id, None, "env-db")
            self.assertSameCatalog(old.catalog("envdb_data"), fresh.catalog("envdb_data"))
        finally:
            old.close()
            fresh.close()


if __name__ == "__main__":
    unittest.main()
