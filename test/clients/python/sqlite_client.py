"""envdb from Python's sqlite3: load the extension, provision an environment
with the sqlite driver, resolve it, and open the environment's own file.

Run by test/clients/run.sh with:
  ENVDB_EXTENSION  path of build/envdb.so
  ENVDB_KEYRING    key file (`<kms_key_id> <base64 key>`, mode 0600), read when the extension loads
  CLIENT_DIR       an empty directory for the control database and the environment files
Every value reaches SQL as a bind parameter (`?`), never spliced into the text.
"""
import json
import os
import re
import sqlite3
import sys

EXTENSION = os.environ["ENVDB_EXTENSION"]
WORKDIR = os.environ["CLIENT_DIR"]


def check(condition, what):
    if not condition:
        sys.exit(f"python-sqlite3: {what}")


def connect(path):
    db = sqlite3.connect(path, isolation_level=None)
    db.enable_load_extension(True)
    db.load_extension(EXTENSION)
    db.enable_load_extension(False)  # only envdb may be loaded, not SQL-chosen files
    return db


def call(db, name, *args):
    """envdb_<name>(?, ?, ...) with every argument bound; JSON answers decoded."""
    sql = f"select envdb_{name}({', '.join('?' for _ in args)})"
    value = db.execute(sql, args).fetchone()[0]
    return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


control = connect(os.path.join(WORKDIR, "control.db"))
call(control, "init")
call(control, "config", "sqlite_data_dir", os.path.join(WORKDIR, "envs"))

org = call(control, "provision_organization",
           json.dumps({"slug": "acme", "name": "Acme", "driver": "sqlite"}))
dev = call(control, "provision_environment", json.dumps({
    "organizationId": org["organization"]["id"], "slug": "dev", "name": "Development",
    "envType": "development", "driver": "sqlite"}))
env_id = dev["environment"]["id"]
check(dev["environment"]["status"] == "active", f"new environment is {dev['environment']['status']}")

route = call(control, "resolve_environment", env_id, "readwrite")
check(route["status"] == "active", f"resolved status {route['status']}")
check(route["environmentId"] == env_id, "resolved another environment")
check(re.fullmatch(r"env-[a-z2-7]{26}", route["databaseName"]), f"databaseName {route['databaseName']!r}")
check(route["databaseName"] == dev["database"]["databaseName"], "databaseName differs from provisioning")
check(route["credential"]["scope"] == "readwrite", "credential scope")
check(len(route["credential"]["token"] or "") >= 32, "credential token missing")

# Open the environment's own database (the URL is file:<path>) and use it.
check(route["databaseUrl"].startswith("file:"), f"databaseUrl {route['databaseUrl']!r}")
env = connect(route["databaseUrl"][len("file:"):])
stamp = env.execute("select environment_id, database_name from sys_environment_info").fetchone()
check(stamp == (env_id, route["databaseName"]), f"environment stamp {stamp}")
check(call(env, "environment_schema_version") >= 1, "environment schema not initialized")
env.execute("create table note (id integer primary key, body text)")
env.execute("insert into note (body) values (?)", ("hello from python",))
check(env.execute("select count(*) from note").fetchone()[0] == 1, "write to environment")
env.close()

# The token is sealed in the control database, never stored in clear.
control.close()
with open(os.path.join(WORKDIR, "control.db"), "rb") as f:
    check(route["credential"]["token"].encode() not in f.read(), "token stored in clear")
print(f"python-sqlite3: {env_id} active, {route['databaseName']}, token resolved")
