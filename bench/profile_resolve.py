"""Where a resolve's time goes in a Postgres backend, with and without the
resolve cache: perf samples of the one backend that runs
SELECT count(envdb.resolve_environment(id, 'readwrite')) over 1,000
environments, again and again, written as text (perf report --stdio) to
bench/results/profile-resolve-postgres-{before,after}.txt. "before" is the
same statement with envdb.resolve_cache_entries = 0 (every row read through
SPI, as before the cache).

Run under pg_virtualenv with the extension installed (bench/profile_resolve.sh
does it):  pg_virtualenv -t python3 bench/profile_resolve.py OUTDIR"""
import os
import signal
import subprocess
import sys
import time

import psycopg2

KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OUT = sys.argv[1] if len(sys.argv) > 1 else "bench/results"
SECONDS = float(os.environ.get("PROFILE_SECONDS", "8"))

admin = psycopg2.connect(dbname="postgres")
admin.autocommit = True
admin.cursor().execute("DROP DATABASE IF EXISTS envdb_profile")
admin.cursor().execute("CREATE DATABASE envdb_profile")
admin.close()
conn = psycopg2.connect(dbname="envdb_profile")
conn.autocommit = True
cur = conn.cursor()
cur.execute("CREATE EXTENSION envdb")
cur.execute("SELECT set_config('envdb.keyring_command', %s, false)", (f"printf 'k1 {KEY}\\n'",))
cur.execute("BEGIN")
for i in range(100):
    cur.execute("SELECT envdb.provision_organization(%s, %s, NULL, NULL, 'postgres')", (f"o{i}", f"Org {i}"))
    org = cur.fetchone()[0]["organization"]["id"]
    for j in range(9):
        cur.execute("SELECT envdb.provision_environment(%s, %s, NULL, 'development', NULL, 'postgres')",
                    (org, f"e{j}"))
cur.execute("COMMIT")
# postgres-driver environments stay 'provisioning' until the worker has run: mark them active.
cur.execute("UPDATE envdb.sys_environment SET status = 'active'")
cur.execute("CREATE TABLE public.ids AS SELECT id FROM envdb.sys_environment")
cur.execute("SELECT count(*) FROM public.ids")
n = cur.fetchone()[0]
cur.execute("SELECT pg_backend_pid()")
pid = cur.fetchone()[0]
statement = "SELECT count(envdb.resolve_environment(id, 'readwrite')) FROM public.ids"

for label, entries in (("before", 0), ("after", 10000)):
    cur.execute(f"SET envdb.resolve_cache_entries = {entries}")
    for _ in range(3):
        cur.execute(statement)  # warm: plans, cache, last_accessed_at
    data = os.path.join(OUT, f"perf-{label}.data")
    perf = subprocess.Popen(["perf", "record", "-F", "2999", "-g", "-p", str(pid), "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    runs, t0 = 0, time.time()
    while time.time() - t0 < SECONDS:
        cur.execute(statement)
        runs += 1
    elapsed = time.time() - t0
    perf.send_signal(signal.SIGINT)
    perf.wait()
    text = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.7",
                           "-g", "none", "--sort", "symbol"],
                          capture_output=True, text=True).stdout
    tree = subprocess.run(["perf", "report", "-i", data, "--stdio", "--children", "--percent-limit", "3",
                           "-g", "caller,0.5,callee,function,percent", "--sort", "symbol"],
                          capture_output=True, text=True).stdout
    os.remove(data)
    with open(os.path.join(OUT, f"profile-resolve-postgres-{label}.txt"), "w") as f:
        f.write(f"# {label}: {statement}\n# envdb.resolve_cache_entries = {entries}; {n} environments; "
                f"{runs} statements in {elapsed:.1f} s = {elapsed / runs / n * 1e6:.2f} us per row "
                f"(perf adds overhead)\n# perf record -F 2999 -g -p <backend>; self time by symbol, then "
                f"inclusive time with callers\n\n")
        f.write(text)
        f.write("\n\n# ---- inclusive (children), call graph ----\n\n")
        f.write(tree)
    print(label, f"{elapsed / runs / n * 1e6:.2f} us per row")
conn.close()
