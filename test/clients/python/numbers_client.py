"""Numbers as envdb's SQLite arguments from Python's sqlite3 (a float binds
as REAL) and from the sqlite3 shell (a literal 10.0 is a REAL): a whole-number
REAL is accepted wherever an integer, a number of seconds or a boolean (0/1)
is expected; 1.5 is still invalid_parameter.

Run by test/clients/run.sh with ENVDB_EXTENSION, ENVDB_KEYRING and CLIENT_DIR."""
import json
import os
import sqlite3
import subprocess
import sys

ext, workdir = os.environ["ENVDB_EXTENSION"], os.environ["CLIENT_DIR"]


def fail(what):
    print(f"python-numbers: {what}")
    sys.exit(1)


db = sqlite3.connect(os.path.join(workdir, "control.db"), isolation_level=None)
db.enable_load_extension(True)
db.load_extension(ext)


def call(name, *args):
    v = db.execute(f"select envdb_{name}({', '.join('?' for _ in args)})", args).fetchone()[0]
    return json.loads(v) if isinstance(v, str) and v[:1] in "{[" else v


call("init")
call("config", "sqlite_data_dir", os.path.join(workdir, "envs"))
if call("config", "rotation_grace_seconds", 3600.0) != "3600":
    fail("config with 3600.0")
org = call("provision_organization", "acme", "Acme", None, None, "turso")
dev = call("provision_environment", org["organization"]["id"], "dev", None, None, None, "turso",
           0.0, 1.0, None, 100.0)
if dev["database"]["storageLimitMb"] != 100 or dev["environment"]["isProtected"] is not True:
    fail(f"provision_environment with REALs: {dev}")
jobs = call("claim_provisioning_jobs", "turso", 10.0)
if len(jobs) != 2:
    fail(f"claimed {len(jobs)} jobs")
job = next(j for j in jobs if j["environmentId"] == dev["environment"]["id"])
call("complete_provisioning_job", job["id"], "libsql://dev", json.dumps({"readwrite": "tok-1"}))
rotated = call("rotate_credential", dev["database"]["id"], "readwrite", 60.0, "tok-2")
if rotated["previous"]["status"] != "rotating":
    fail(f"rotate: {rotated}")
if call("check", 1.0)["ok"] is not True or call("check", True)["ok"] is not True:
    fail("check(1.0)")
for args, word in [(("rotate_credential", dev["database"]["id"], "readwrite", 1.5, "tok-3"), "grace"),
                   (("check", 0.5), "repair"), (("claim_provisioning_jobs", "turso", 2.5), "max_jobs"),
                   (("config", "rotation_grace_seconds", 1.5), "rotation_grace_seconds")]:
    try:
        call(*args)
        fail(f"{args} was accepted")
    except sqlite3.Error as e:
        if not str(e).startswith("invalid_parameter") or word not in str(e):
            fail(f"{args}: {e}")
db.close()

# The sqlite3 shell: literals 10.0, 60.0 and 1.0 are REALs there.
script = f"""
.load {ext}
.bail on
SELECT envdb_config('rotation_grace_seconds', 3600.0);
SELECT json_array_length(envdb_claim_provisioning_jobs('turso', 10.0));
SELECT json_extract(envdb_rotate_credential('{dev["database"]["id"]}', 'readwrite', 60.0, 'tok-4'),
                    '$.previous.status');
SELECT json_extract(envdb_check(1.0), '$.ok');
"""
out = subprocess.run(["sqlite3", os.path.join(workdir, "control.db")], input=script, text=True,
                     capture_output=True)
if out.returncode != 0 or out.stdout.split() != ["3600", "0", "rotating", "1"]:
    fail(f"sqlite3 shell: rc {out.returncode}, out {out.stdout!r}, err {out.stderr!r}")
bad = subprocess.run(["sqlite3", os.path.join(workdir, "control.db")], text=True, capture_output=True,
                     input=f".load {ext}\nSELECT envdb_check(1.5);\n")
if "invalid_parameter: repair" not in bad.stderr:
    fail(f"sqlite3 shell check(1.5): {bad.stderr!r}")
print("python-numbers: python sqlite3 and the sqlite3 shell: whole-number REALs accepted, fractions refused")
