"""move_environment with the postgres driver between two clusters on this
machine: the pg_virtualenv cluster (where the environment is provisioned, on
the server envdb runs on) and a second one started here (test_pg_driver's
SecondServer), registered as a database host of the same region.

What it shows: every row is there on the new host; each credential (one of
them rotated before the move) resolves to the new URL, and its login connects
and reads there with the token it had; the resolve cache does not serve the
old URL; no role of the source server owns or is granted anything in the
moved database; the old database and its roles are gone once the (2 s) drop
grace has passed; bad inputs are refused with the contract's code words and
change nothing."""
import datetime
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import HostError, local_rows  # noqa: E402
from test_pg_driver import (SECOND_PASSWORD, ControlPlane, SecondServer, login, preloaded,  # noqa: E402
                            wait_for)

second = None


def setUpModule():
    global second
    if preloaded() and os.geteuid() == 0:
        second = SecondServer()


def tearDownModule():
    if second:
        second.stop()


@unittest.skipUnless(preloaded() and os.geteuid() == 0,
                     "needs the pg_virtualenv cluster with envdb preloaded, as root (a second cluster)")
class PostgresMove(unittest.TestCase):
    serial = 0

    def setUp(self):
        PostgresMove.serial += 1
        self.cp = ControlPlane(f"move{PostgresMove.serial}")
        self.call("config", "drop_grace_seconds", "2")
        org = self.call("provision_organization", "mv", "Moves", None, None, "turso")
        self.org_id = org["organization"]["id"]

    def tearDown(self):
        self.cp.close()
        # The second server is envdb's alone for check(): what a test moved
        # there goes with its control plane.
        import psycopg2
        conn = psycopg2.connect(dbname="postgres", **second.connect_args())
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("select datname from pg_database where datname like 'env-%%'")
        for (name,) in cur.fetchall():
            cur.execute(f'drop database "{name}" with (force)')
        cur.execute("select rolname from pg_roles where rolname like 'env-%%' order by length(rolname) desc")
        for (name,) in cur.fetchall():
            cur.execute(f'drop role "{name}"')
        conn.close()

    def call(self, *args, **kw):
        return self.cp.call(*args, **kw)

    def refused(self, code, text, *args):
        with self.assertRaises(HostError) as e:
            self.call("move_environment", *args)
        self.assertIn(code + ":", str(e.exception))
        self.assertIn(text, str(e.exception))

    def second_rows(self, dbname, sql, params=()):
        import psycopg2
        conn = psycopg2.connect(dbname=dbname, **second.connect_args())
        try:
            cur = conn.cursor()
            cur.execute(sql, params)
            return cur.fetchall()
        finally:
            conn.close()

    def local_db(self, dbname):
        import psycopg2
        conn = psycopg2.connect(dbname=dbname)
        conn.autocommit = True
        return conn

    def local_db_rows(self, dbname, sql):
        return local_rows(dbname, sql)

    @staticmethod
    def reads(url, cred, **kw):
        import psycopg2
        try:
            conn = login(url, cred, **kw)
        except psycopg2.OperationalError:
            return False
        conn.close()
        return True

    def local_count(self, sql, params=()):
        return self.cp.one(sql, params)[0]

    def test_move_to_a_second_cluster_keeps_rows_and_credentials(self):
        out = self.cp.one("select envdb.provision_environment(%s, 'dev', driver => 'postgres')", (self.org_id,))[0]
        env_id = out["environment"]["id"]
        self.cp.wait_status(env_id, "active")
        self.cp.wait_jobs_done(env_id)
        env = self.cp.environment(env_id)
        db_id, dbname = env["database"]["id"], env["database"]["databaseName"]
        old_url, region = env["database"]["databaseUrl"], env["database"]["region"]
        self.assertEqual(self.local_count("select count(*) from pg_database where datname = %s", (dbname,)), 1)

        # Rows, a sequence, a view and a function, written by the admin login.
        admin = self.call("resolve_environment", env_id, "admin")["credential"]
        conn = login(old_url, admin)
        cur = conn.cursor()
        cur.execute("create table notes (id serial primary key, body text)")
        cur.execute("insert into notes (body) select 'note ' || i from generate_series(1, 500) i")
        cur.execute("create view note_bodies as select body from notes")
        cur.execute("create function answer() returns int language sql as 'select 42'")
        conn.close()
        # A rotated credential keeps its new token across the move.
        self.call("rotate_credential", db_id, "readwrite", None, "rotated-token-before-the-move")
        self.cp.wait_jobs_done(env_id)
        creds = {s: self.call("resolve_environment", env_id, s)["credential"]
                 for s in ("admin", "readwrite", "readonly")}
        self.assertEqual(creds["readwrite"]["token"], "rotated-token-before-the-move")
        # This session's resolve cache now holds the old URL.
        self.assertEqual(self.call("resolve_environment", env_id, "admin")["databaseUrl"], old_url)

        host = self.call("add_database_host", "second", region, "127.0.0.1", second.port, "postgres",
                         SECOND_PASSWORD, "postgres")["host"]

        # Bad inputs first: each refused, nothing written.
        events = self.local_count("select count(*) from envdb.sys_audit_event")
        self.refused("not_found", "no-such-env", "no-such-env", "second")
        self.refused("invalid_parameter", "environment_id", None, "second")
        self.refused("invalid_parameter", "host_id", env_id, None)
        self.refused("not_found", "host_id 'nowhere'", env_id, "nowhere")
        self.call("drain_database_host", "second")
        self.refused("conflict", "drained", env_id, "second")
        self.call("drain_database_host", "second", False)
        other = self.call("add_database_host", "elsewhere", "other-region", "127.0.0.1", second.port, "postgres",
                          SECOND_PASSWORD, "postgres")["host"]
        self.refused("conflict", "region", env_id, other["id"])
        self.call("remove_database_host", "elsewhere")
        events += 4  # the drain, its undo, the add and the remove
        self.assertEqual(self.local_count("select count(*) from envdb.sys_audit_event"), events)
        self.assertEqual(self.cp.environment(env_id)["environment"]["status"], "active")
        self.assertEqual(self.local_count("select count(*) from envdb.sys_provisioning_job where kind = "
                                          "'move_database'"), 0)

        # A grant to a role only this server has cannot go along: the move fails, the target is
        # dropped, and the environment is active where it was, its logins open again.
        local = self.local_db(dbname)
        local.cursor().execute("drop role if exists envdb_move_test_only_here; "
                               "create role envdb_move_test_only_here; "
                               "grant select on notes to envdb_move_test_only_here")
        failed = self.call("move_environment", env_id, "second")["job"]["id"]
        wait_for("the move to fail", lambda: self.local_count(
            "select status = 'failed' from envdb.sys_provisioning_job where id = %s", (failed,)), timeout=60)
        self.assertIn("envdb_move_test_only_here", self.local_count(
            "select last_error from envdb.sys_provisioning_job where id = %s", (failed,)))
        self.cp.wait_status(env_id, "active")
        self.assertIsNone(self.local_count("select host_id from envdb.sys_environment_database where id = %s",
                                           (db_id,)))
        self.assertEqual(self.second_rows("postgres", "select count(*) from pg_database where datname = %s",
                                          (dbname,)), [(0,)])
        wait_for("the admin login open again", lambda: self.reads(old_url, admin), timeout=30)
        local.close()  # the move ended this session with every other on the source
        local = self.local_db(dbname)
        local.cursor().execute("drop owned by envdb_move_test_only_here; drop role envdb_move_test_only_here")
        local.close()
        # Custom grants and policies go along as they are (the roles have the same names there).
        conn = login(old_url, admin)
        cur = conn.cursor()
        cur.execute("create table audit_log (id serial primary key, what text)")
        cur.execute(f'revoke all on audit_log from "{dbname}_readwrite"')
        cur.execute(f'grant select (id) on audit_log to "{dbname}_readonly"')
        cur.execute(f'alter table notes enable row level security')
        cur.execute(f'create policy readers on notes for select to "{dbname}_readonly" using (id > 0)')
        cur.execute(f'create policy writers on notes to "{dbname}_readwrite" using (true)')
        conn.close()
        acl_sql = ("select c.relname::text, c.relowner::regrole::text, c.relacl::text, "
                   "(select array_agg(attname || '=' || attacl::text order by attname) from pg_attribute "
                   "where attrelid = c.oid and attacl is not null) from pg_class c where c.relnamespace = "
                   "'public'::regnamespace order by 1")
        policy_sql = "select polname::text, polroles::regrole[]::text from pg_policy order by 1"
        acl_before, policies_before = self.local_db_rows(dbname, acl_sql), self.local_db_rows(dbname, policy_sql)

        moved = self.call("move_environment", env_id, "second")
        self.assertEqual(moved["environment"]["status"], "maintenance")
        self.assertEqual(moved["toHostId"], host["id"])
        self.assertIsNone(moved["fromHostId"])
        # In maintenance, resolve refuses it.
        with self.assertRaises(HostError):
            self.call("resolve_environment", env_id, "admin")
        self.cp.wait_status(env_id, "active", timeout=90)
        job = self.cp.one("select status, last_error from envdb.sys_provisioning_job where id = %s",
                          (moved["job"]["id"],))
        self.assertEqual(job[0], "done", job[1])

        new_url = self.cp.environment(env_id)["database"]["databaseUrl"]
        self.assertEqual(new_url, f"postgresql://127.0.0.1:{second.port}/{dbname}")
        self.assertEqual(self.local_count("select host_id from envdb.sys_environment_database where id = %s",
                                          (db_id,)), host["id"])
        # Each credential resolves to the new URL (not a cached old one) with
        # the token it had, and its login reads every row there.
        for scope, before in creds.items():
            got = self.call("resolve_environment", env_id, scope)
            self.assertEqual(got["credential"]["token"], before["token"])
            self.assertEqual(got["databaseUrl"], new_url)

            def reads(cred=got["credential"]):
                try:
                    c = login(new_url, cred, host="127.0.0.1", port=second.port)
                except Exception:
                    return False
                try:
                    k = c.cursor()
                    k.execute("select count(*), max(body) from notes")
                    return k.fetchone()
                finally:
                    c.close()
            self.assertEqual(wait_for(f"the {scope} login on the new host", reads, timeout=30),
                             (500, "note 99"))
        # The readwrite login writes; the admin one owns what it made.
        rw = login(new_url, creds["readwrite"], host="127.0.0.1", port=second.port)
        rw.cursor().execute("insert into notes (body) values ('after the move')")
        rw.close()
        self.assertEqual(self.second_rows(dbname, "select answer(), (select count(*) from note_bodies)"),
                         [(42, 501)])
        self.assertEqual(self.second_rows(dbname, "select environment_id from envdb.sys_environment_info"),
                         [(env_id,)])
        self.assertEqual(self.second_rows(dbname, acl_sql), acl_before)
        self.assertEqual(self.second_rows(dbname, policy_sql), policies_before)
        # Owned by the database's own roles; no role of another kind holds
        # anything there but envdb's purpose roles and the restoring user.
        owners = self.second_rows(dbname, "select distinct c.relowner::regrole::text from pg_class c join "
                                  "pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'")
        self.assertEqual(owners, [(f'"{dbname}_admin"',)])
        foreign = self.second_rows(dbname, "select distinct r.rolname from pg_shdepend d join pg_roles r on r.oid = "
                                   "d.refobjid where d.dbid = (select oid from pg_database where datname = "
                                   "current_database()) and not starts_with(r.rolname, %s) and r.rolname not "
                                   "in ('envdb_admin', 'envdb_router', 'envdb_reader', 'envdb_auth', 'postgres')",
                                   (dbname + "_",))
        self.assertEqual(foreign, [])
        # The old copy is gone after the drop grace, with its roles.
        wait_for("the old database to be dropped",
                 lambda: self.local_count("select count(*) from pg_database where datname = %s", (dbname,)) == 0,
                 timeout=60)
        wait_for("the old roles to be dropped",
                 lambda: self.local_count("select count(*) from pg_roles where starts_with(rolname, %s)",
                                          (dbname + "_",)) == 0, timeout=30)
        wait_for("the retirement", lambda: self.local_count("select count(*) from envdb.sys_provisioning_job "
                 "where environment_id = %s and status in ('pending', 'running')", (env_id,)) == 0)
        # Not before its grace: the retirement finished after its dropAfter.
        retired = self.rows("select payload ->> 'dropAfter', finished_at, status from envdb.sys_provisioning_job "
                            "where environment_id = %s and kind = 'retire_database'", (env_id,))
        self.assertEqual(len(retired), 1)
        self.assertEqual(retired[0][2], "done")
        self.assertGreaterEqual(retired[0][1], datetime.datetime.fromisoformat(retired[0][0].replace("Z", "+00:00")))
        events = [r[0] for r in self.rows("select action from envdb.sys_audit_event where environment_id = %s "
                                          "order by seq", (env_id,))]
        self.assertIn("environment.move", events)
        self.assertIn("environment.moved", events)

        # Moving again to where it is: refused.
        self.refused("conflict", "already lives", env_id, "second")
        report = self.call("check")
        self.assertTrue(report["ok"], report)

    def provision_filled(self, slug, rows):
        out = self.cp.one("select envdb.provision_environment(%s, %s, driver => 'postgres')", (self.org_id, slug))[0]
        env_id = out["environment"]["id"]
        self.cp.wait_status(env_id, "active")
        self.cp.wait_jobs_done(env_id)
        env = self.cp.environment(env_id)
        conn = login(env["database"]["databaseUrl"], self.call("resolve_environment", env_id, "admin")["credential"])
        conn.cursor().execute("create table filler as select g, md5(g::text) as h from generate_series(1, %s) g",
                              (rows,))
        conn.close()
        return env_id, env["database"]["databaseName"], env["database"]["region"]

    def worker_pid(self):
        row = self.cp.one("select pid from pg_stat_activity where backend_type = 'envdb database worker' "
                          "and datname = current_database()")
        return row[0] if row else None

    def reconnect(self):
        try:
            conn = self.cp.connect()
            conn.cursor().execute("select 1")
            return conn
        except Exception:
            return None

    def test_kill_9_of_the_worker_mid_move_converges(self):
        """The database worker is killed (-9) while it streams the content:
        the server restarts, the job runs again from the start (the partial
        target dropped first) and the move completes with every row."""
        import psycopg2
        env_id, dbname, region = self.provision_filled("big", 200000)
        self.call("add_database_host", "second", region, "127.0.0.1", second.port, "postgres", SECOND_PASSWORD,
                  "postgres")
        job_id = self.call("move_environment", env_id, "second")["job"]["id"]

        def streaming():
            row = self.cp.one("select pid, query from pg_stat_activity where backend_type = 'envdb database "
                              "worker' and datname = current_database()")
            return row[0] if row and "streaming the content" in (row[1] or "") else None
        pid = wait_for("the worker to stream the content", streaming, timeout=60)
        os.kill(pid, signal.SIGKILL)
        self.cp.conn = wait_for("the server after the crash", self.reconnect, timeout=60)
        self.cp.wait_status(env_id, "active", timeout=120)
        job = self.cp.one("select status, attempts, last_error from envdb.sys_provisioning_job where id = %s",
                          (job_id,))
        self.assertEqual(job[0], "done", job[2])
        self.assertGreaterEqual(job[1], 2)
        self.assertEqual(self.second_rows(dbname, "select count(*) from filler"), [(200000,)])
        url = self.cp.environment(env_id)["database"]["databaseUrl"]
        self.assertEqual(url, f"postgresql://127.0.0.1:{second.port}/{dbname}")
        cred = self.call("resolve_environment", env_id, "readonly")["credential"]

        def reads():
            try:
                c = login(url, cred, host="127.0.0.1", port=second.port)
            except psycopg2.OperationalError:
                return False
            k = c.cursor()
            k.execute("select count(*) from filler")
            n = k.fetchone()[0]
            c.close()
            return n
        self.assertEqual(wait_for("the readonly login on the new host", reads, timeout=30), 200000)
        wait_for("the old database to be dropped",
                 lambda: self.local_count("select count(*) from pg_database where datname = %s", (dbname,)) == 0,
                 timeout=60)

    def rows(self, sql, params=()):
        cur = self.cp.conn.cursor()
        cur.execute(sql, params)
        return cur.fetchall()


if __name__ == "__main__":
    unittest.main()
