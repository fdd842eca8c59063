"""make bench, the postgres driver: time from provision_environment to
`active` (the background worker creates the database, its roles and logins
and runs the schema initializer) against a bare CREATE DATABASE plus the same
schema script run by hand on the same server. Runs inside a pg_virtualenv
started with shared_preload_libraries = 'envdb'; prints RESULT lines for
bench/report.py. Usage: pg_driver_bench.py [iterations]"""
import base64
import statistics
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


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
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

    envdb_s, bare_s = [], []
    for i in range(n):
        # envdb: provision, then poll get_environment until active.
        start = time.perf_counter()
        c.execute("SELECT envdb.provision_environment(%s, %s, driver => 'postgres')", (org, f"e{i}"))
        env = c.fetchone()[0]["environment"]["id"]
        while True:
            c.execute("SELECT envdb.get_environment(%s) -> 'environment' ->> 'status'", (env,))
            status = c.fetchone()[0]
            if status == "active":
                break
            if status == "failed" or time.perf_counter() - start > 120:
                raise SystemExit(f"environment {env} is {status}")
            time.sleep(0.005)
        envdb_s.append(time.perf_counter() - start)

        # Baseline: the database and the same data-plane schema, by hand.
        name = f"bench_bare_{i}"
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        start = time.perf_counter()
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        db = connect(name)
        db.cursor().execute("CREATE EXTENSION envdb_data; SELECT envdb.init_environment_schema(%s, NULL, %s)",
                            (str(uuid.uuid4()), name))
        db.close()
        bare_s.append(time.perf_counter() - start)
        cur.execute(f'DROP DATABASE "{name}"')

    e, b = statistics.median(envdb_s) * 1e6, statistics.median(bare_s) * 1e6
    print("RESULT\tProvisioning\tPostgres driver: provision_environment to active vs CREATE DATABASE + schema "
          f"by hand\t{e:.6g}\t{b:.6g}\tus\tle:3\tmedian of {n}; envdb also creates 4 roles and 2 logins "
          "(SCRAM verifiers), grants, and polls get_environment every 5 ms", flush=True)
    cp.close()
    cur.execute("DROP DATABASE envdb_bench_driver WITH (FORCE)")
    admin.close()


if __name__ == "__main__":
    main()
