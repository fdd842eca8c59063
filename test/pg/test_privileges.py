"""Privileges, as non-superusers, and search_path shadowing.

- PUBLIC (a login role in no envdb role) can do nothing: every function in
  schema envdb is refused, every table and view is unreadable.
- envdb_reader reads the registry, but neither token_cipher nor a plaintext.
- envdb_router resolves, but every writing function is refused.
- envdb_admin manages.
The function list comes from pg_proc: a function missing from ACCESS below
fails the suite, so a new one cannot slip through unclassified.

Shadowing: a role puts, in a schema ahead of pg_catalog on its search_path
(and in pg_temp), functions, an operator and tables named like the ones envdb
uses. Every envdb answer stays the same and no shadow is ever invoked."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import CATALOG_TABLES, Normalizer, PostgresHost, postgres_available  # noqa: E402
from envdb_calls import pg_statement  # noqa: E402

ADMIN, ROUTER, READER = "envdb_admin", "envdb_router", "envdb_reader"
EVERYONE = {ADMIN, ROUTER, READER}
# Which purpose roles may run each function; nobody else may. Writing
# functions belong to envdb_admin alone.
ACCESS = {
    "version": EVERYONE, "build_info": EVERYONE, "get_environment": EVERYONE,
    "environment_role": EVERYONE, "check_environment_access": EVERYONE,
    # Only the trusted router speaks for a user; a reader reads inside its context.
    "set_active_environment": {ADMIN, ROUTER}, "clear_active_environment": EVERYONE,
    "current_environment_id": EVERYONE, "current_organization_id": EVERYONE,
    "current_context": EVERYONE,
    "resolve_environment": {ADMIN, ROUTER}, "reveal_credential": {ADMIN, ROUTER},
    "config": {ADMIN}, "keyring_status": {ADMIN}, "check": {ADMIN},
    "add_database_host": {ADMIN}, "list_database_hosts": {ADMIN}, "remove_database_host": {ADMIN},
    "provision_organization": {ADMIN}, "provision_environment": {ADMIN},
    "set_environment_status": {ADMIN}, "archive_environment": {ADMIN},
    "drop_environment_database": {ADMIN}, "deprovision_organization": {ADMIN},
    "set_default_environment": {ADMIN}, "retry_environment": {ADMIN},
    "add_environment_member": {ADMIN}, "remove_environment_member": {ADMIN},
    "issue_credential": {ADMIN}, "rotate_credential": {ADMIN}, "revoke_credential": {ADMIN},
    "expire_credentials": {ADMIN}, "rewrap_credentials": {ADMIN},
    "claim_provisioning_jobs": {ADMIN}, "complete_provisioning_job": {ADMIN},
    "fail_provisioning_job": {ADMIN},
    "provision_tenant_database": {ADMIN}, "migrate_legacy_tenant_databases": {ADMIN},
    "add_environment_hostname": {ADMIN}, "remove_environment_hostname": {ADMIN},
    "resolve_hostname": {ADMIN, ROUTER}, "find_environment": EVERYONE,
    "events_since": {ADMIN, ROUTER},
    "update_database_host": {ADMIN}, "drain_database_host": {ADMIN},
    "extend_environment_trial": {ADMIN}, "set_environment_type": {ADMIN}, "enforce_policies": {ADMIN},
    "set_storage_limit": {ADMIN}, "measure_environment_usage": {ADMIN}, "report_environment_usage": {ADMIN},
    # Copies and backups replace or read a database's content: envdb_admin alone.
    "copy_environment": {ADMIN}, "reset_environment": {ADMIN}, "backup_environment": {ADMIN},
    "list_environment_backups": {ADMIN}, "restore_environment": {ADMIN},
    "delete_environment_backup": {ADMIN},
    # A move copies a database to another server and switches it there.
    "move_environment": {ADMIN},
}
TEST_ROLES = {"nobody": None, "admin": ADMIN, "router": ROUTER, "reader": READER}


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Privileges(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.h = PostgresHost()
        h = cls.h
        cls.roles = {}
        for label, purpose in TEST_ROLES.items():
            role = f"envdb_priv_{label}_{os.getpid()}"
            h.sql(f'DROP ROLE IF EXISTS "{role}"')
            h.sql(f'CREATE ROLE "{role}" LOGIN' + (f" IN ROLE {purpose}" if purpose else ""))
            cls.roles[label] = role
        org = h.call("provision_organization", "acme", "Acme", None, None, "postgres")
        cls.org = org["organization"]["id"]
        dev = h.call("provision_environment", cls.org, "dev", None, None, None, "turso")
        for job in h.call("claim_provisioning_jobs", "turso", 10):
            h.call("complete_provisioning_job", job["id"], "libsql://dev", {"readwrite": "secret-token"})
        cls.env = dev["environment"]["id"]
        cls.credential = h.sql("select id from envdb.sys_database_credential where status = 'active' "
                               "and database_id = %s", (dev["database"]["id"],))[0][0]
        h.call("add_environment_member", cls.env, "alice", "env_user")
        h.call("add_environment_hostname", cls.env, "dev.acme.example")
        h.call("report_environment_usage", cls.env, 4096)  # a row of sys_environment_usage

    @classmethod
    def tearDownClass(cls):
        cls.h.sql("reset role")
        cls.h.close()
        import psycopg2
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        for role in cls.roles.values():
            admin.cursor().execute(f'DROP ROLE IF EXISTS "{role}"')
        admin.close()

    def as_role(self, label, sql, params=()):
        """(sqlstate, message) of one statement run as a test role; ('ok', rows) when it works."""
        import psycopg2
        cur = self.h.conn.cursor()
        cur.execute(f'SET ROLE "{self.roles[label]}"')
        try:
            cur.execute(sql, params)
            return ("ok", cur.fetchall() if cur.description else None)
        except psycopg2.Error as e:
            return (e.pgcode, e.pgerror or str(e))
        finally:
            cur.execute("RESET ROLE")

    def functions(self):
        """Every function of schema envdb with its argument types, from pg_proc."""
        return self.h.sql(
            "select p.proname, coalesce(array_to_string(array(select format_type(t, null) from "
            "unnest(p.proargtypes) t), ','), ''), p.prorettype = 'trigger'::regtype "
            "from pg_proc p where p.pronamespace = 'envdb'::regnamespace order by 1, 2")

    def call_sql(self, name, types):
        args = ", ".join(f"NULL::{t}" for t in types.split(",")) if types else ""
        return f"SELECT envdb.{name}({args})"

    def test_every_function_is_classified(self):
        names = {name for name, _, trigger in self.functions() if not trigger}
        self.assertEqual(names - set(ACCESS), set(), "functions with no expected privileges in ACCESS")
        self.assertEqual(set(ACCESS) - names, set(), "ACCESS names functions that do not exist")

    def test_each_role_runs_exactly_its_functions(self):
        checked = 0
        for name, types, trigger in self.functions():
            for label, purpose in TEST_ROLES.items():
                with self.subTest(function=f"{name}({types})", role=label):
                    if trigger:  # the trigger function: nobody may call it
                        self.assertEqual(self.h.sql("select has_function_privilege(%s, %s, 'execute')",
                                                    (self.roles[label], f"envdb.{name}()")), [(False,)])
                        continue
                    state, detail = self.as_role(label, self.call_sql(name, types))
                    allowed = purpose in ACCESS.get(name, set())
                    if allowed:
                        self.assertNotEqual(state, "42501", detail)
                    else:
                        self.assertEqual(state, "42501", detail)
                    checked += 1
        self.assertGreater(checked, 4 * 30)

    def test_public_reads_no_table(self):
        relations = self.h.sql("select relname from pg_class where relnamespace = 'envdb'::regnamespace "
                               "and relkind in ('r', 'v', 'p', 'm')")
        self.assertGreaterEqual(len(relations), len(CATALOG_TABLES) + 1)
        for (rel,) in relations:
            with self.subTest(relation=rel):
                state, detail = self.as_role("nobody", f"SELECT count(*) FROM envdb.{rel}")
                self.assertEqual(state, "42501", detail)
                state, detail = self.as_role("nobody", f"DELETE FROM envdb.{rel}")
                self.assertEqual(state, "42501", detail)
        # Not even the schema.
        self.assertEqual(self.h.sql("select has_schema_privilege(%s, 'envdb', 'usage')",
                                    (self.roles["nobody"],)), [(False,)])

    def in_context(self, label, sql, params=()):
        """as_role, inside the context a superuser (standing in for the
        router) set for alice in the same transaction."""
        cur = self.h.conn.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT envdb.set_active_environment(%s, 'alice')", (self.env,))
            return self.as_role(label, sql, params)
        finally:
            cur.execute("ROLLBACK")

    def test_reader_reads_the_registry_but_no_secret(self):
        for table in CATALOG_TABLES + ["sys_tenant_database"]:
            columns = [c for (c,) in self.h.sql(
                "select attname from pg_attribute where attrelid = %s::regclass and attnum > 0 and "
                "not attisdropped and attname <> 'token_cipher'", (f"envdb.{table}",))]
            with self.subTest(table=table):
                state, rows = self.as_role("reader", f"SELECT {', '.join(columns)} FROM envdb.{table}")
                # Fail closed: no context, no rows.
                self.assertEqual((state, rows), ("ok", []))
                state, rows = self.in_context("reader", f"SELECT {', '.join(columns)} FROM envdb.{table}")
                self.assertEqual(state, "ok", rows)
                if table != "sys_config":
                    self.assertGreater(len(rows), 0)
        for sql in ["SELECT token_cipher FROM envdb.sys_database_credential",
                    "SELECT * FROM envdb.sys_database_credential",
                    "SELECT count(token_cipher) FROM envdb.sys_database_credential"]:
            with self.subTest(sql=sql):
                state, detail = self.as_role("reader", sql)
                self.assertEqual(state, "42501", detail)
        state, detail = self.as_role("reader", "SELECT envdb.reveal_credential(%s)", (self.credential,))
        self.assertEqual(state, "42501", detail)
        state, detail = self.as_role("reader", "SELECT envdb.resolve_environment(%s)", (self.env,))
        self.assertEqual(state, "42501", detail)
        # ... and writes nothing, even to the tables it reads.
        for sql in ["UPDATE envdb.sys_environment SET name = 'x'", "DELETE FROM envdb.sys_audit_event",
                    "INSERT INTO envdb.sys_config (key, value) VALUES ('k', 'v')"]:
            with self.subTest(sql=sql):
                self.assertEqual(self.as_role("reader", sql)[0], "42501")
        state, rows = self.in_context("reader", "SELECT envdb.get_environment(%s)", (self.env,))
        self.assertEqual(state, "ok")
        self.assertNotIn("secret-token", json.dumps(rows[0][0]))
        self.assertNotIn("tokenCipher", json.dumps(rows[0][0]))

    def test_router_resolves_but_cannot_write(self):
        state, rows = self.as_role("router", "SELECT envdb.resolve_environment(%s)", (self.env,))
        self.assertEqual(state, "ok", rows)
        self.assertEqual(rows[0][0]["credential"]["token"], "secret-token")
        state, rows = self.as_role("router", "SELECT envdb.reveal_credential(%s)", (self.credential,))
        self.assertEqual((state, rows), ("ok", [("secret-token",)]))
        counts = self.h.counts()
        for sql, params in [
            ("SELECT envdb.rotate_credential(%s)", (self.credential,)),
            ("SELECT envdb.provision_environment(%s, 'x')", (self.org,)),
            ("SELECT envdb.archive_environment(%s, true)", (self.env,)),
            ("SELECT envdb.drop_environment_database(%s, true)", (self.env,)),
            ("SELECT envdb.deprovision_organization(%s, true)", (self.org,)),
            ("SELECT envdb.add_environment_member(%s, 'bob', 'env_admin')", (self.env,)),
            ("SELECT envdb.config('default_region', 'x')", ()),
            ("SELECT envdb.claim_provisioning_jobs('turso')", ()),
            ("SELECT envdb.rewrap_credentials()", ()),
            ("SELECT envdb.expire_credentials()", ()),
            ("SELECT envdb.enforce_policies()", ()),
            ("SELECT envdb.set_storage_limit(%s, 1)", (self.env,)),
            ("SELECT envdb.report_environment_usage(%s, 1)", (self.env,)),
        ]:
            with self.subTest(sql=sql):
                self.assertEqual(self.as_role("router", sql, params)[0], "42501")
        # No table is the router's to read or write directly.
        for table in CATALOG_TABLES:
            with self.subTest(table=table):
                self.assertEqual(self.as_role("router", f"SELECT count(*) FROM envdb.{table}")[0], "42501")
        self.assertEqual(self.h.counts(), counts, "a refused call wrote something")

    def refused_in_context(self, label, sql):
        """(sqlstate, message) of a statement that fails as a test role inside alice's context."""
        import psycopg2
        cur = self.h.conn.cursor()
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT envdb.set_active_environment(%s, 'alice')", (self.env,))
            cur.execute(f'SET ROLE "{self.roles[label]}"')
            cur.execute(sql)
            return ("ok", cur.fetchall())
        except psycopg2.Error as e:
            return (e.pgcode, e.pgerror or str(e))
        finally:
            cur.execute("ROLLBACK")

    def test_hostnames_and_slugs(self):
        # The router resolves by hostname exactly as by id, and cannot give or take a hostname.
        state, by_name = self.as_role("router", "SELECT envdb.resolve_hostname('DEV.acme.example')")
        self.assertEqual(state, "ok", by_name)
        state, by_id = self.as_role("router", "SELECT envdb.resolve_environment(%s)", (self.env,))
        self.assertEqual(by_name, by_id)
        counts = self.h.counts()
        for label in ("router", "reader", "nobody"):
            for sql in ["SELECT envdb.add_environment_hostname(%s, 'x.acme.example')",
                        "SELECT envdb.remove_environment_hostname('dev.acme.example')"]:
                with self.subTest(role=label, sql=sql):
                    params = (self.env,) if "%s" in sql else ()
                    self.assertEqual(self.as_role(label, sql, params)[0], "42501")
        self.assertEqual(self.h.counts(), counts, "a refused call wrote something")
        self.assertEqual(self.as_role("reader", "SELECT envdb.resolve_hostname('dev.acme.example')")[0], "42501")
        # A reader finds an environment by its slugs only inside its context's organization.
        state, detail = self.as_role("reader", "SELECT envdb.find_environment('acme', 'dev')")
        self.assertEqual(state, "42501", detail)
        self.assertIn("permission_denied", detail)
        state, rows = self.in_context("reader", "SELECT envdb.find_environment('acme', 'dev')")
        self.assertEqual(state, "ok", rows)
        self.assertEqual(rows[0][0]["environment"]["id"], self.env)
        self.assertNotIn("secret-token", json.dumps(rows[0][0]))
        other = self.h.call("provision_organization", "other-corp", "Other", None, None, "turso")
        try:
            state, detail = self.refused_in_context("reader", "SELECT envdb.find_environment('other-corp', 'default')")
            self.assertEqual(state, "P0002", detail)
            missing = self.refused_in_context("reader", "SELECT envdb.find_environment('no-such-corp', 'default')")
            self.assertEqual(detail.replace("other-corp", "X"), missing[1].replace("no-such-corp", "X"))
        finally:
            self.h.call("deprovision_organization", other["organization"]["id"], True)

    def test_admin_manages_without_superuser(self):
        admin = self.roles["admin"]
        self.assertEqual(self.h.sql("select rolsuper from pg_roles where rolname = %s", (admin,)), [(False,)])
        steps = [
            ("SELECT envdb.provision_environment(%s, 'by-admin', driver => 'postgres')", (self.org,)),
            ("SELECT envdb.config('rotation_grace_seconds', '60')", ()),
            ("SELECT envdb.keyring_status()", ()),
            ("SELECT envdb.add_environment_member(%s, 'bob', 'env_viewer')", (self.env,)),
            ("SELECT envdb.remove_environment_member(%s, 'bob')", (self.env,)),
        ]
        for sql, params in steps:
            with self.subTest(sql=sql):
                state, rows = self.as_role("admin", sql, params)
                self.assertEqual(state, "ok", rows)
        db = self.h.sql("select d.id from envdb.sys_environment_database d join envdb.sys_environment e on "
                        "e.id = d.environment_id where e.slug = 'by-admin'")[0][0]
        state, rows = self.as_role("admin", "SELECT envdb.rotate_credential(%s, 'admin')", (db,))
        self.assertEqual(state, "ok", rows)
        state, rows = self.as_role("admin", "SELECT envdb.reveal_credential(%s)", (rows[0][0]["credential"]["id"],))
        self.assertEqual(state, "ok", rows)
        actor = self.h.sql("select actor from envdb.sys_audit_event where action = 'credential.rotate' "
                           "order by occurred_at desc, id desc limit 1")
        self.assertEqual(actor, [(admin,)])
        # Admin manages through the functions only: the tables are not its to edit.
        self.assertEqual(self.as_role("admin", "UPDATE envdb.sys_environment SET name = 'x'")[0], "42501")
        self.assertEqual(self.as_role("admin", "SELECT token_cipher FROM envdb.sys_database_credential")[0], "42501")


# Shadows: each records that it ran, then answers wrongly, so that an
# invocation shows both in public.shadow_hits and in the answers.
SHADOWS = """
CREATE TABLE public.shadow_hits (what text);
GRANT INSERT, SELECT ON public.shadow_hits TO PUBLIC;
CREATE FUNCTION public.shadow_hit(what text) RETURNS void LANGUAGE sql
  AS $$ INSERT INTO public.shadow_hits VALUES (what) $$;
CREATE FUNCTION public.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('gen_random_uuid'); RETURN '00000000-0000-0000-0000-000000000000'; END $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('now'); RETURN '1999-01-01'; END $$;
CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('clock_timestamp'); RETURN '1999-01-01'; END $$;
CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('jsonb_build_object'); RETURN '{"shadow": true}'; END $$;
CREATE FUNCTION public.lower(text) RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('lower'); RETURN 'shadow'; END $$;
CREATE FUNCTION public.length(text) RETURNS integer LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('length'); RETURN 1; END $$;
CREATE FUNCTION public.count(text) RETURNS bigint LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('count'); RETURN 0; END $$;
CREATE FUNCTION public.shadow_texteq(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('='); RETURN false; END $$;
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.shadow_texteq);
CREATE FUNCTION public.shadow_textne(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('<>'); RETURN true; END $$;
CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.shadow_textne);
CREATE FUNCTION public.current_organization_id() RETURNS text LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('current_organization_id'); RETURN 'shadow'; END $$;
CREATE FUNCTION public.reject_change() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('reject_change'); RETURN NEW; END $$;
CREATE FUNCTION public.provision_environment(text, text) RETURNS jsonb LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('provision_environment'); RETURN '{}'; END $$;
CREATE FUNCTION pg_temp.now() RETURNS timestamptz LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('pg_temp.now'); RETURN '1999-01-01'; END $$;
CREATE FUNCTION pg_temp.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('pg_temp.gen_random_uuid'); RETURN '00000000-0000-0000-0000-000000000000'; END $$;
CREATE FUNCTION public.shadow_rows() RETURNS TABLE (id text) LANGUAGE plpgsql AS
  $$ BEGIN PERFORM public.shadow_hit('table'); RETURN; END $$;
"""
SHADOW_TABLES = ["sys_organization", "sys_environment", "sys_environment_database",
                 "sys_database_credential", "sys_environment_member", "sys_provisioning_job",
                 "sys_audit_event", "sys_config"]


def scenario(call):
    """The same calls against a clean and a shadowed database; returns every answer."""
    out = []
    org = call("provision_organization", "acme", "Acme", driver="postgres")
    out.append(org)
    org_id = org["organization"]["id"]
    dev = call("provision_environment", org_id, "dev", driver="turso")
    out.append(dev)
    jobs = call("claim_provisioning_jobs", "turso", 10)
    out.append(jobs)
    out.append(call("complete_provisioning_job", jobs[0]["id"], "libsql://dev", {"readwrite": "tok-1"}))
    env = dev["environment"]["id"]
    db = dev["database"]["id"]
    out.append(call("add_environment_member", env, "alice", "env_maker"))
    out.append(call("check_environment_access", env, "alice", "deploy"))
    out.append(call("check_environment_access", env, "alice", "manage_members"))
    out.append(call("environment_role", env, "alice"))
    out.append(call("rotate_credential", db, "readwrite", None, "tok-2"))
    out.append(call("issue_credential", db, "readonly", "tok-3"))
    out.append(call("resolve_environment", env))
    out.append(call("resolve_environment", env, "readonly"))
    out.append(call("reveal_credential", out[-1]["credential"]["id"]))
    out.append(call("get_environment", env))
    out.append(call("set_active_environment", env, "alice"))
    out.append(call("keyring_status"))
    out.append(call("config", "default_region"))
    out.append(call("provision_environment", org_id, "dev", driver="turso", if_not_exists=True)["warnings"])
    qa = call("provision_environment", org_id, "qa", driver="postgres", env_type="production")
    out.append(qa)
    out.append(call("archive_environment", qa["environment"]["id"], True))
    out.append(call("expire_credentials"))
    out.append(call("rewrap_credentials"))
    out.append(call("provision_tenant_database", org_id))
    for fn, args in [("provision_environment", (org_id, "Dev")), ("rotate_credential", ("nope",)),
                     ("add_environment_member", (env, "bob", "owner"))]:
        try:
            call(fn, *args)
            out.append("no error")
        except Exception as e:  # the sentence must match too
            out.append(str(e))
    return out


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class SearchPathShadowing(unittest.TestCase):
    def setUp(self):
        self.clean = PostgresHost()
        self.shadowed = PostgresHost()
        self.role = f"envdb_shadow_{os.getpid()}"
        self.shadowed.sql(f'DROP ROLE IF EXISTS "{self.role}"')
        self.shadowed.sql(f'CREATE ROLE "{self.role}" IN ROLE envdb_admin')
        self.shadowed.sql(f'GRANT CREATE, USAGE ON SCHEMA public TO "{self.role}"')
        self.shadowed.sql(f'GRANT TEMPORARY ON DATABASE "{self.shadowed.dbname}" TO "{self.role}"')

    def tearDown(self):
        self.shadowed.sql("reset role")
        self.clean.close()
        self.shadowed.close()
        import psycopg2
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute(f'DROP ROLE IF EXISTS "{self.role}"')
        admin.close()

    def runner(self, host):
        import psycopg2

        def call(fn, *args, **named):
            sql, values = pg_statement(fn, args, named)
            cur = host.conn.cursor()
            # A context is set inside a transaction block (refused in autocommit).
            block = fn == "set_active_environment"
            try:
                if block:
                    cur.execute("BEGIN")
                # Unqualified names in the caller's own SQL resolve through the
                # shadowed path too; envdb's must not.
                cur.execute(sql, values)
                value = cur.fetchone()[0]
            except psycopg2.Error as e:
                raise RuntimeError((e.pgerror or str(e)).splitlines()[0]) from None
            finally:
                if block:
                    cur.execute("ROLLBACK")
            return value
        return call

    def test_shadows_change_nothing(self):
        s = self.shadowed
        s.sql(f'SET ROLE "{self.role}"')
        for statement in SHADOWS.strip().split(";\n"):
            s.sql(statement)
        for table in SHADOW_TABLES:
            s.sql(f"CREATE TABLE public.{table} AS SELECT * FROM public.shadow_rows()")
            s.sql(f"CREATE TEMP TABLE {table} AS SELECT * FROM public.shadow_rows()")
        s.sql("DELETE FROM public.shadow_hits")
        s.sql("SET search_path = public, pg_catalog")
        # The shadows work for anyone who calls them unqualified.
        self.assertEqual(s.sql("select 'a' = 'a'"), [(False,)])
        self.assertEqual(s.sql("select count(*) from public.shadow_hits"), [(1,)])
        s.sql("DELETE FROM public.shadow_hits")

        shadowed_answers = scenario(self.runner(s))
        hits = s.sql("select what, count(*) from public.shadow_hits group by 1")
        s.sql("reset role")
        clean_answers = scenario(self.runner(self.clean))
        self.assertEqual(hits, [], "envdb invoked a shadow")
        self.assertEqual(Normalizer()(clean_answers), Normalizer()(shadowed_answers))
        # envdb wrote its own tables, not the shadows.
        for table in SHADOW_TABLES:
            self.assertEqual(s.sql(f"select count(*) from public.{table}"), [(0,)])
        self.assertEqual(self.clean.counts(), s.counts())
        # The answers name real timestamps, not the shadow now().
        self.assertFalse(any("1999-01-01" in json.dumps(a) for a in shadowed_answers))


if __name__ == "__main__":
    unittest.main()
