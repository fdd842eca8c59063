"""envdb from Python with psycopg2: provision an environment on the turso
driver, act as the provisioning worker (claim the job, complete it with the
token the database service minted), resolve it the way a request router does,
and use it as the transaction's tenant context.

Connection from PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE. Every value is
passed as a parameter (%s), never formatted into SQL by hand; note that psycopg2
itself quotes parameters into the statement text (see the worker step).
"""
import re
import secrets
import sys

import psycopg2
from psycopg2.extras import Json


def check(condition, what):
    if not condition:
        sys.exit(f"python-psycopg2: {what}")


conn = psycopg2.connect("")
conn.autocommit = True
cur = conn.cursor()


def one(sql, params=()):
    """The single value of a one-row answer; psycopg2 decodes jsonb itself."""
    cur.execute(sql, params)
    return cur.fetchone()[0]


org = one("SELECT envdb.provision_organization(%s::jsonb)",
          (Json({"slug": "acme", "name": "Acme", "driver": "turso"}),))
dev = one("SELECT envdb.provision_environment(%s::jsonb)", (Json({
    "organizationId": org["organization"]["id"], "slug": "dev", "name": "Development",
    "envType": "development", "driver": "turso"}),))
env_id, db_name = dev["environment"]["id"], dev["database"]["databaseName"]
check(dev["environment"]["status"] == "provisioning", f"new turso environment is {dev['environment']['status']}")
check(dev["job"] and dev["job"]["id"], "no provisioning job queued")

# The worker: claim the queued jobs, complete this environment's one.
jobs = one("SELECT envdb.claim_provisioning_jobs(%s, 10, %s)", ("turso", "python-psycopg2-worker"))
job = next((j for j in jobs if j["environmentId"] == env_id), None)
check(job and job["id"] == dev["job"]["id"], "job not claimed")
token = secrets.token_urlsafe(32)  # as Turso would mint it
url = f"libsql://{db_name}.turso.example"
complete = "SELECT envdb.complete_provisioning_job(%s, %s, %s::jsonb)"
# psycopg2 quotes parameters into the statement text on the client (it does not
# send protocol bind parameters), so this token is part of the statement the
# server sees: keep log_statement at none/ddl for the worker's role, or hand
# tokens over with a driver that binds (libpq's PQexecParams, node pg, psycopg 3).
check(token.encode() in cur.mogrify(complete, (job["id"], url, Json({"readwrite": token}))),
      "psycopg2 now binds parameters server-side: update docs/guides/clients.md")
done = one(complete, (job["id"], url, Json({"readwrite": token})))
check(done["environment"]["status"] == "active", f"completed environment is {done['environment']['status']}")

# The router: resolve the environment to its database and credential.
route = one("SELECT envdb.resolve_environment(%s, %s)", (env_id, "readwrite"))
check(route["status"] == "active", f"resolved status {route['status']}")
check(route["environmentId"] == env_id, "resolved another environment")
check(re.fullmatch(r"env-[a-z2-7]{26}", route["databaseName"]) and route["databaseName"] == db_name,
      f"databaseName {route['databaseName']!r}")
check(route["databaseUrl"] == url, f"databaseUrl {route['databaseUrl']!r}")
check(route["credential"]["scope"] == "readwrite", "credential scope")
check(route["credential"]["token"] == token, "resolved token differs from the minted one")

# Use it: the environment as this transaction's tenant context.
conn.autocommit = False
context = one("SELECT envdb.set_active_environment(%s)", (env_id,))
check(context["databaseName"] == db_name, f"context databaseName {context['databaseName']}")
check(one("SELECT envdb.current_environment_id()") == env_id, "current_environment_id")
conn.commit()
check(one("SELECT envdb.current_environment_id()") is None, "context outlived its transaction")
conn.rollback()
conn.close()
print(f"python-psycopg2: {env_id} active, {db_name}, token resolved")
