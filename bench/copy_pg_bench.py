"""make bench, the postgres driver's copy: copy_environment of a ~100 MB
environment database (from the call until the job is done and the target is
active again: the worker's clone beside the target, the hand-over to the
target's roles and the swap; the old content is dropped after the report, and
each run waits for that drop, untimed, before the next measurement) against a bare
CREATE DATABASE ... TEMPLATE of the same database on the same server, the
default way (WAL_LOG) and file by file (FILE_COPY), measured interleaved.
Also the longest pause a session of the source sees during the copy.

Runs inside a pg_virtualenv started with shared_preload_libraries = 'envdb';
prints RESULT lines and writes bench/results/copy-pg.md (or the path given).
Usage: copy_pg_bench.py [iterations] [rows] [out.md]"""
import base64
import os
import statistics
import sys
import threading
import time

import psycopg2

KEY = base64.b64encode(bytes(range(32))).decode()
KEYRING = f"printf 'k1 {KEY}\\n'"


def connect(dbname, **kw):
    conn = psycopg2.connect(dbname=dbname, **kw)
    conn.autocommit = True
    return conn


def one(cur, sql, params=()):
    cur.execute(sql, params)
    return cur.fetchone()[0]


def wait_done(c, env, job, started, limit=300):
    while True:
        c.execute("SELECT (SELECT status FROM envdb.sys_provisioning_job WHERE id = %s), "
                  "envdb.get_environment(%s) -> 'environment' ->> 'status'", (job, env))
        job_status, env_status = c.fetchone()
        if job_status == "done" and env_status == "active":
            return time.perf_counter() - started
        if job_status == "failed" or time.perf_counter() - started > limit:
            c.execute("SELECT last_error FROM envdb.sys_provisioning_job WHERE id = %s", (job,))
            raise SystemExit(f"copy job {job} is {job_status}: {c.fetchone()[0]}")
        time.sleep(0.005)


def provision(c, org, slug):
    c.execute("SELECT envdb.provision_environment(%s, %s, env_type => 'sandbox', driver => 'postgres')",
              (org, slug))
    env = c.fetchone()[0]["environment"]["id"]
    deadline = time.time() + 120
    while one(c, "SELECT envdb.get_environment(%s) -> 'environment' ->> 'status'", (env,)) != "active":
        if time.time() > deadline:
            raise SystemExit(f"environment {slug} did not become active")
        time.sleep(0.05)
    return env, one(c, "SELECT envdb.get_environment(%s) -> 'database' ->> 'databaseName'", (env,))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rows = int(sys.argv[2]) if len(sys.argv) > 2 else 600000
    out_path = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "results",
                                                                  "copy-pg.md")
    load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    admin = connect("postgres")
    cur = admin.cursor()
    cur.execute("DROP DATABASE IF EXISTS envdb_bench_copy")
    cur.execute("CREATE DATABASE envdb_bench_copy")
    cur.execute("ALTER DATABASE envdb_bench_copy SET envdb.keyring_command = %s", (KEYRING,))
    cp = connect("envdb_bench_copy")
    c = cp.cursor()
    c.execute("CREATE EXTENSION envdb")
    c.execute("SELECT envdb.provision_organization('bench', 'Bench', NULL, NULL, 'turso')")
    org = c.fetchone()[0]["organization"]["id"]
    src, src_db = provision(c, org, "source")
    dst, dst_db = provision(c, org, "target")

    # ~100 MB in the source, in a table its admin role owns.
    s = connect(src_db).cursor()
    s.execute(f'SET ROLE "{src_db}_admin"')
    s.execute("CREATE TABLE big (id bigserial PRIMARY KEY, v text)")
    s.execute("INSERT INTO big (v) SELECT repeat(md5(i::text), 3) FROM generate_series(1, %s) i", (rows,))
    s.connection.close()
    cur.execute("CHECKPOINT")
    size = one(cur, "SELECT pg_database_size(%s)", (src_db,))

    envdb_s, wal_s, file_s, pauses, profiles, drops = [], [], [], [], [], []
    for i in range(n):
        for strategy, bucket in (("WAL_LOG", wal_s), ("FILE_COPY", file_s)):
            cur.execute("DROP DATABASE IF EXISTS bench_bare")
            started = time.perf_counter()
            cur.execute(f'CREATE DATABASE bench_bare TEMPLATE "{src_db}" STRATEGY {strategy}')
            bucket.append(time.perf_counter() - started)
            cur.execute("DROP DATABASE bench_bare")

        # A client of the source polling during the copy: its longest gap.
        stop, gaps = threading.Event(), []
        # Both observers are connected and polling before the call is timed.
        ready = [threading.Event(), threading.Event()]

        def prober():
            conn = connect(src_db)
            conn.cursor().execute("SELECT 1")
            ready[0].set()
            last = time.perf_counter()
            while not stop.is_set():
                try:
                    conn.cursor().execute("SELECT 1")
                except psycopg2.Error:
                    conn = connect(src_db)  # ended for the clone: reconnect (waits on the lock)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now
                time.sleep(0.005)
            conn.close()
        # The worker's steps as pg_stat_activity shows them: when each was first seen.
        steps = []

        def stepper():
            conn = connect("envdb_bench_copy")
            cur2 = conn.cursor()
            last = None
            while not stop.is_set():
                cur2.execute("SELECT query FROM pg_stat_activity WHERE backend_type = 'envdb database worker' "
                             "AND datname = current_database()")
                row = cur2.fetchone()
                text = row[0] if row else ""
                step = (text.split(": ", 2)[2].split(" ")[0] if text.count(": ") >= 2 else
                        "claimed" if text.startswith("envdb: postgres job copy_database") else "idle")
                if step != last:
                    steps.append((time.perf_counter(), step))
                    last = step
                ready[1].set()
                time.sleep(0.002)
            conn.close()
        probe = threading.Thread(target=prober)
        probe.start()
        step_thread = threading.Thread(target=stepper)
        step_thread.start()
        for r in ready:
            r.wait(30)
        started = time.perf_counter()
        c.execute("SELECT envdb.copy_environment(%s, %s, 'full', false)", (src, dst))
        job = c.fetchone()[0]["job"]["id"]
        envdb_s.append(wait_done(c, dst, job, started))
        ended = time.perf_counter()
        # The old content goes after the report: waited for (not timed in the copy) so that its
        # drop does not run beside the next bare measurement.
        while one(cur, "SELECT count(*) FROM pg_database WHERE datname = %s", (dst_db + "_old",)):
            if time.perf_counter() - ended > 60:
                raise SystemExit("the old content was not dropped within 60 s")
            time.sleep(0.002)
        drops.append(time.perf_counter() - ended)
        stop.set()
        probe.join()
        step_thread.join()
        pauses.append(max(gaps))
        # Durations: the call until the worker claimed it, each step, and the report until seen.
        profile = {}
        marks = [(started, "queued")]
        for t, name in steps:
            if started <= t <= ended and not (name == "idle" and len(marks) == 1):
                marks.append((t, name))
        marks.append((ended, "end"))
        for (t0, name), (t1, _) in zip(marks, marks[1:]):
            profile[name] = profile.get(name, 0) + t1 - t0
        profiles.append(profile)
        print(f"run {i}: envdb {envdb_s[-1]:.3f} s, WAL_LOG {wal_s[-1]:.3f} s, FILE_COPY {file_s[-1]:.3f} s; "
              + ", ".join(f"{k} {v * 1000:.0f}" for k, v in profile.items()) + " ms", flush=True)

    e, w, f = (statistics.median(x) for x in (envdb_s, wal_s, file_s))
    print(f"RESULT copy_pg envdb_s={e:.3f} bare_wal_log_s={w:.3f} bare_file_copy_s={f:.3f} "
          f"ratio_wal_log={e / w:.2f} ratio_file_copy={e / f:.2f} size_bytes={size} "
          f"source_pause_s={statistics.median(pauses):.3f}")
    lines = [
        "# Postgres copy vs CREATE DATABASE ... TEMPLATE",
        "",
        f"Database of {size / 1048576:.0f} MiB ({rows} rows), {n} interleaved runs, medians; "
        f"PostgreSQL {one(cur, 'SHOW server_version')}, shared_buffers {one(cur, 'SHOW shared_buffers')}.",
        "envdb: from `copy_environment(source, target, 'full')` until its job is done and the target is "
        "active (the worker's wake-up, its clone beside the target, hand-over to the target's roles, "
        "swap and report). The old content is dropped after the report: "
        f"{statistics.median(drops) * 1000:.0f} ms later (median), waited for before the next measurement.",
        "",
        "| figure | time | envdb's ratio | target | met? |",
        "|---|---|---|---|---|",
        f"| envdb copy_environment (full) | {e:.2f} s | | | |",
        f"| bare CREATE DATABASE ... TEMPLATE (default, WAL_LOG) | {w:.2f} s | {e / w:.2f}x | <= 1.5x | "
        f"{'yes' if e / w <= 1.5 else 'no'} |",
        f"| bare CREATE DATABASE ... TEMPLATE STRATEGY FILE_COPY | {f:.2f} s | {e / f:.2f}x | <= 1.5x | "
        f"{'yes' if e / f <= 1.5 else 'no'} |",
        "",
        f"Longest pause a session of the source saw during a copy (median of runs): "
        f"{statistics.median(pauses) * 1000:.0f} ms. Its open session is ended just before the clone "
        "and a new one waits on the source's lock until the files are copied; nothing is refused.",
        "",
        "envdb clones a database of 64 MiB or more with STRATEGY FILE_COPY (two checkpoints, no WAL "
        "for its pages), a smaller one the default way; against the same FILE_COPY baseline the "
        "extra is the hand-over, the swap and the job round trip.",
        "",
        "Runs: envdb " + ", ".join(f"{x:.2f}" for x in envdb_s) + " s; WAL_LOG " +
        ", ".join(f"{x:.2f}" for x in wal_s) + " s; FILE_COPY " + ", ".join(f"{x:.2f}" for x in file_s) + " s.",
        "",
    ]
    names = []
    for p in profiles:
        names += [k for k in p if k not in names]
    lines += ["Where envdb's time goes (first run's steps as the worker's `pg_stat_activity.query` shows them, "
              "polled every 2 ms; `queued`: from the call until the worker claimed the job; `swapping`: the "
              "swap and the report; `dropping`: the drop of the old content after the report, until the "
              "client saw the target active; `idle`: the same when the worker is done), medians:", "", "| step | time |", "|---|---|"]
    for name in names:
        values = [p.get(name, 0) for p in profiles]
        lines.append(f"| {name} | {statistics.median(values) * 1000:.0f} ms |")
    lines += ["", f"Load average at the start: {load_start}; at the end: "
              f"{' '.join(open('/proc/loadavg').read().split()[:3])} (2 CPUs, shared with other builds and tests).", ""]
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as fh:
        fh.write("\n".join(lines))
    cp.close()
    # Cleanup only (the results are written): the database worker the launcher starts again may
    # connect between FORCE's ending of sessions and the drop; the throwaway cluster goes anyway.
    try:
        cur.execute("DROP DATABASE envdb_bench_copy WITH (FORCE)")
    except psycopg2.Error as e:
        print(f"cleanup: {e}".strip(), file=sys.stderr)


if __name__ == "__main__":
    main()
