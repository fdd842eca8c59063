"""make bench, the postgres driver: time from provision_environment to
`active` (the background worker creates the database, its roles and logins
and runs the schema initializer) against a bare psql script doing the same
work on the same server: the four NOLOGIN roles, CREATE DATABASE, the
database grants, the two logins with their passwords (the server computes
their SCRAM verifiers), then, connected to the new database, the same
data-plane script the worker runs (envdb_data, init_environment_schema and
the grants). Then 100 environments at once: 100 provision_environment calls
(one transaction each, from one client) until all are active, against the
bare script run 100 times one after another (one database worker per control
plane carries out its jobs one at a time, so that is the same parallelism).

Runs inside a pg_virtualenv started with shared_preload_libraries = 'envdb';
prints RESULT and NOTE lines for bench/report.py.
Usage: pg_driver_bench.py [iterations] [concurrent]"""
import base64
import concurrent.futures
import os
import statistics
import subprocess
import sys
import time
import uuid

import psycopg2

KEY = base64.b64encode(bytes(range(32))).decode()
KEYRING = f"printf 'k1 {KEY}\\n'"


def connect(dbname):
    conn = psycopg2.connect(dbname=dbname)
    conn.autocommit = True
    return conn


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def bare_script(name):
    """What the worker does for one environment, as one psql script."""
    owner, admin, rw, ro = (ident(f"{name}_{s}") for s in ("owner", "admin", "readwrite", "readonly"))
    db = ident(name)
    all_scopes = f"{admin}, {rw}, {ro}"
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {admin} IN SCHEMA public "
    logins = ""
    for scope, role in (("a", admin), ("w", rw), ("r", ro)):
        login = ident(f"{name}_{scope}_{uuid.uuid4().hex[:26]}")
        password = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        logins += (f"CREATE ROLE {login} LOGIN INHERIT PASSWORD '{password}' VALID UNTIL 'infinity';\n"
                   f"GRANT {role} TO {login};\nALTER ROLE {login} SET role = '{role[1:-1]}';\n")
    return f"""\\set ON_ERROR_STOP 1
CREATE ROLE {owner} NOLOGIN;
CREATE ROLE {admin} NOLOGIN;
CREATE ROLE {rw} NOLOGIN;
CREATE ROLE {ro} NOLOGIN;
CREATE DATABASE {db} OWNER {owner} TEMPLATE template0;
REVOKE ALL ON DATABASE {db} FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE {db} TO {all_scopes};
GRANT CREATE ON DATABASE {db} TO {admin};
{logins}\\c {name}
BEGIN;
ALTER SCHEMA public OWNER TO {admin};
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO {rw}, {ro};
CREATE EXTENSION IF NOT EXISTS envdb_data;
SELECT envdb.init_environment_schema('{uuid.uuid4()}', '{uuid.uuid4()}', '{name}');
GRANT USAGE ON SCHEMA envdb TO {all_scopes};
GRANT SELECT ON ALL TABLES IN SCHEMA envdb TO {all_scopes};
GRANT EXECUTE ON FUNCTION envdb.environment_schema_version() TO {all_scopes};
GRANT CONNECT ON DATABASE {db} TO envdb_auth;
{defaults}GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {rw};
{defaults}GRANT SELECT ON TABLES TO {ro};
{defaults}GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {rw};
{defaults}GRANT SELECT ON SEQUENCES TO {ro};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {rw};
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ro};
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {rw};
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {ro};
COMMIT;
"""


# psql itself, not Debian's pg_wrapper (a Perl script that costs 100-300 ms a start).
PSQL = os.path.join(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                   check=True).stdout.strip(), "psql")


def run_bare(name):
    subprocess.run([PSQL, "-X", "-q", "-d", "postgres"], input=bare_script(name), text=True, check=True,
                   stdout=subprocess.DEVNULL)


def drop_bare(cur, name):
    cur.execute(f"DROP DATABASE IF EXISTS {ident(name)} WITH (FORCE)")
    cur.execute("SELECT string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE starts_with(rolname, %s)",
                (name + "_",))
    roles = cur.fetchone()[0]
    if roles:
        cur.execute(f"DROP ROLE {roles}")


def wait_active(c, ids, start):
    """Polls every 5 ms until every environment of `ids` is active."""
    while True:
        c.execute("SELECT count(*) FILTER (WHERE status = 'active'), count(*) FILTER (WHERE status = "
                  "'failed') FROM envdb.sys_environment WHERE id = ANY(%s)", (ids,))
        active, failed = c.fetchone()
        if active == len(ids):
            return
        if failed or time.perf_counter() - start > 600:
            raise SystemExit(f"{failed} environment(s) failed, {active} of {len(ids)} active")
        time.sleep(0.005)


def provision(c, org, slug):
    c.execute("SELECT envdb.provision_environment(%s, %s, driver => 'postgres')", (org, slug))
    return c.fetchone()[0]["environment"]["id"]


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    many = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    admin = connect("postgres")
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS envdb_bench_driver")
    cur.execute("CREATE DATABASE envdb_bench_driver")
    cur.execute("ALTER DATABASE envdb_bench_driver SET envdb.keyring_command = %s", (KEYRING,))
    cp = connect("envdb_bench_driver")
    c = cp.cursor()
    c.execute("CREATE EXTENSION envdb")
    c.execute("SELECT envdb.provision_organization('bench', 'Bench', NULL, NULL, 'turso')")
    org = c.fetchone()[0]["organization"]["id"]

    # A warm-up pair (first CREATE DATABASE, first worker start, psql's caches).
    wait_active(c, [provision(c, org, "warm")], time.perf_counter())
    run_bare("bench_bare_warm")
    drop_bare(cur, "bench_bare_warm")

    envdb_s, bare_s = [], []
    load_one = load()
    for i in range(n):
        # envdb: provision, then poll until active.
        start = time.perf_counter()
        env = provision(c, org, f"e{i}")
        wait_active(c, [env], start)
        envdb_s.append(time.perf_counter() - start)
        # Baseline: the same work by hand.
        start = time.perf_counter()
        run_bare(f"bench_bare_{i}")
        bare_s.append(time.perf_counter() - start)
    # Dropped afterwards: a DROP DATABASE ends in a checkpoint, which would
    # weigh on the envdb run that follows it.
    for i in range(n):
        drop_bare(cur, f"bench_bare_{i}")
    c.execute("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND starts_with(rolname, (SELECT "
              "database_name FROM envdb.sys_environment_database WHERE environment_id = %s) || '_')",
              (env,))
    logins = c.fetchone()[0]

    e, b = statistics.median(envdb_s) * 1e6, statistics.median(bare_s) * 1e6
    print("RESULT\tProvisioning\tPostgres driver: provision_environment to active vs the same work as a bare "
          f"psql script\t{e:.6g}\t{b:.6g}\tus\tle:1.5\tmedian of {n} (load average {load_one}); both sides "
          f"create 4 roles, the database, its grants, {logins} logins with passwords (SCRAM verifiers), and "
          "run the same data-plane script in the new database; envdb's time runs from the call to the first "
          "poll (every 5 ms) that sees `active`", flush=True)

    # 100 at once: one transaction per call, then wait until all are active.
    load_before = load()
    start = time.perf_counter()
    ids = [provision(c, org, f"m{i}") for i in range(many)]
    queued = time.perf_counter() - start
    wait_active(c, ids, start)
    envdb_total = time.perf_counter() - start
    names = [f"bench_many_{i}" for i in range(many)]
    start = time.perf_counter()
    for name in names:
        run_bare(name)
    bare_total = time.perf_counter() - start
    load_after = load()
    for name in names:
        drop_bare(cur, name)
    # For scale, not a target: the script 4 at a time (the worker runs one).
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(run_bare, names))
    parallel_total = time.perf_counter() - start
    for name in names:
        drop_bare(cur, name)
    print(f"RESULT\tProvisioning\tPostgres driver: {many} environments at once, environments per second vs the "
          f"bare psql script run {many} times one after another\t{many / envdb_total:.6g}\t"
          f"{many / bare_total:.6g}\tper_s\tle:1.5\t{many} provision_environment calls, one transaction each "
          f"from one client ({queued * 1000:.0f} ms to queue them all), until all are active: "
          f"{envdb_total:.2f} s; the bare script {many} times in a row: {bare_total:.2f} s. One database "
          "worker per control plane carries out its jobs one after another, so the baseline runs with the "
          f"same parallelism (load average {load_before} before, {load_after} after)", flush=True)
    print(f"NOTE\tProvisioning\tThe bare psql script {many} times, 4 at a time: {parallel_total:.2f} s, "
          f"{many / parallel_total:.2f} environments/s (for scale: envdb's worker runs one job at a time per "
          "control plane; the server lets several CREATE DATABASE from template0 run at once, each takes a "
          "share lock on the template)", flush=True)
    cp.close()
    cur.execute("DROP DATABASE envdb_bench_driver WITH (FORCE)")
    admin.close()


if __name__ == "__main__":
    main()
