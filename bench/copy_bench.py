"""Copying a sqlite-driver environment (copy_environment, mode full) next to a bare VACUUM INTO of
the same file, in one run, on tmpfs and on disk.

    /usr/bin/python3 bench/copy_bench.py EXTENSION TMPFS_DIR DISK_DIR [MB] [RUNS] > copy.md

envdb's copy is VACUUM INTO a temporary file, the identity stamp re-written in it (one small
transaction, which syncs the file), an fsync, the target's WAL checkpointed and a rename; the
baselines are a bare VACUUM INTO (not synced) and VACUUM INTO followed by one fsync (what a
durable copy costs at least). Prints a markdown table; each figure is the median of RUNS."""
import base64
import json
import os
import sqlite3
import statistics
import sys
import time

KEY = base64.b64encode(bytes(range(32))).decode()


def connect(path, extension):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(extension)
    return db


def fill(path, megabytes):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("begin")
    db.execute("create table payload (id integer primary key, k text, v blob)")
    db.execute("create index payload_k on payload (k)")
    row = 4000
    for i in range(megabytes * 1024 * 1024 // row):
        db.execute("insert into payload (k, v) values (?, randomblob(?))", (f"key-{i:08d}", row - 40))
    db.execute("commit")
    db.close()


def median_ms(fn, runs):
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return statistics.median(out)


def measure(extension, where, megabytes, runs):
    control = os.path.join(where, "control.db")
    db = connect(control, extension)
    db.execute("select envdb_init()")
    db.execute("select envdb_keyring_add('k1', ?)", (KEY,))
    db.execute("select envdb_config('sqlite_data_dir', ?)", (os.path.join(where, "envs"),))
    org = json.loads(db.execute("select envdb_provision_organization('bench', 'Bench', NULL, NULL, "
                                "'sqlite')").fetchone()[0])["organization"]["id"]

    def env(slug):
        return json.loads(db.execute("select envdb_provision_environment(?, ?, NULL, 'sandbox', NULL, "
                                     "'sqlite')", (org, slug)).fetchone()[0])["environment"]["id"]

    source, target = env("source"), env("target")
    path = json.loads(db.execute("select envdb_resolve_environment(?, 'admin')", (source,))
                      .fetchone()[0])["databaseUrl"][len("file:"):]
    fill(path, megabytes)
    size = os.path.getsize(path)
    out_path = os.path.join(where, "bare.db")

    def bare(sync):
        def run():
            if os.path.exists(out_path):
                os.remove(out_path)
            src = sqlite3.connect(path, isolation_level=None)
            src.execute("vacuum into ?", (out_path,))
            src.close()
            if sync:
                fd = os.open(out_path, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
        return run

    def envdb_copy():
        db.execute("select envdb_copy_environment(?, ?, 'full')", (source, target)).fetchone()

    # Warm the page cache once, then alternate so drift hits both alike.
    bare(False)()
    envdb_copy()
    results = {"bare": [], "bare_sync": [], "envdb": []}
    for _ in range(runs):
        results["bare"].append(median_ms(bare(False), 1))
        results["bare_sync"].append(median_ms(bare(True), 1))
        results["envdb"].append(median_ms(envdb_copy, 1))
    db.close()
    return size, {k: statistics.median(v) for k, v in results.items()}


def main():
    extension, tmpfs, disk = sys.argv[1:4]
    megabytes = int(sys.argv[4]) if len(sys.argv) > 4 else 100
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    print("| storage | file | bare `VACUUM INTO` | `VACUUM INTO` + fsync | `copy_environment` (full) "
          "| ratio to bare | ratio to bare + fsync |")
    print("|---|---|---|---|---|---|---|")
    for label, where in (("tmpfs", tmpfs), ("disk", disk)):
        size, r = measure(extension, where, megabytes, runs)
        print(f"| {label} | {size / 1048576:.0f} MiB | {r['bare']:.0f} ms | {r['bare_sync']:.0f} ms "
              f"| {r['envdb']:.0f} ms | {r['envdb'] / r['bare']:.2f}x | {r['envdb'] / r['bare_sync']:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
