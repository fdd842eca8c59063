#!/usr/bin/env python3
"""An external worker for envdb's `turso` jobs (docs/guides/turso-worker.md).

It claims turso jobs from an envdb control plane (Postgres through psycopg2, or SQLite through the
envdb loadable extension), carries each out with the Turso Platform API, and reports it back with
complete_provisioning_job or fail_provisioning_job. Run it from cron or a loop:

    TURSO_API_TOKEN=... examples/turso_worker.py --org my-org --postgres "dbname=app"
    ENVDB_KEYRING=/etc/envdb/keyring TURSO_API_TOKEN=... \\
        examples/turso_worker.py --org my-org --sqlite control.db --extension ./build/envdb.so

Standard library only, plus psycopg2 for a Postgres control plane. Every step is idempotent, so a job
run twice (the worker died before reporting, check(repair => true) requeued it) converges.
"""
import argparse
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_API = "https://api.turso.tech"


class ApiError(Exception):
    """A Turso API failure. `transient`: worth retrying (network, 429, 5xx)."""

    def __init__(self, message, transient):
        super().__init__(message)
        self.transient = transient


class TursoApi:
    """The four Platform API calls envdb's jobs need."""

    def __init__(self, base_url, org, token, timeout=30):
        self.base = base_url.rstrip("/") + "/v1/organizations/" + urllib.parse.quote(org, safe="")
        self.token = token
        self.timeout = timeout

    def _call(self, method, path, body=None, query=None, ok_statuses=(200,)):
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
                return response.status, (json.loads(text) if text else {})
        except urllib.error.HTTPError as e:
            if e.code in ok_statuses:
                text = e.read()
                return e.code, (json.loads(text) if text else {})
            # Never echo a response body: it may hold a token.
            raise ApiError(f"Turso API {method} {path}: HTTP {e.code}",
                           e.code == 429 or e.code >= 500) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
            raise ApiError(f"Turso API {method} {path}: {getattr(e, 'reason', e)}", True) from None

    def _db(self, name):
        return "/databases/" + urllib.parse.quote(name, safe="")

    def create_database(self, name, group, seed=None):
        """Creates the database (from `seed`, another database, when given), or finds the one an
        earlier attempt created. Returns its URL."""
        request = {"name": name, "group": group}
        if seed:
            request["seed"] = seed
        status, body = self._call("POST", "/databases", request, ok_statuses=(200, 409))
        if status == 409:
            status, body = self._call("GET", self._db(name))
        return "libsql://" + body["database"]["Hostname"]

    def create_token(self, name, authorization, expires_at):
        expiration = "never"
        if expires_at:
            seconds = expires_at_epoch(expires_at) - time.time()
            # Whole minutes, rounded down: the token never outlives the credential.
            expiration = f"{max(1, int(seconds // 60))}m"
        _, body = self._call("POST", self._db(name) + "/auth/tokens",
                             query={"expiration": expiration, "authorization": authorization})
        return body["jwt"]

    def invalidate_tokens(self, name):
        self._call("POST", self._db(name) + "/auth/rotate")

    def delete_database(self, name):
        self._call("DELETE", self._db(name), ok_statuses=(200, 404))

    def exists(self, name):
        status, _ = self._call("GET", self._db(name), ok_statuses=(200, 404))
        return status == 200


def expires_at_epoch(iso):
    from datetime import datetime
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class PostgresControlPlane:
    def __init__(self, dsn):
        import psycopg2
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True
        self.errors = psycopg2.Error

    def call(self, fn, *args, secret=False):
        cur = self.conn.cursor()
        placeholders = ", ".join("%s::jsonb" if isinstance(a, dict) else "%s" for a in args)
        values = [json.dumps(a) if isinstance(a, dict) else a for a in args]
        if not secret:
            cur.execute(f"SELECT envdb.{fn}({placeholders})", values)
            return _decoded(cur.fetchone()[0])
        # psycopg2 writes parameters into the statement text: keep that statement out of the
        # server log (log_statement and log_min_error_statement may only be set by a superuser;
        # otherwise give the worker's role these settings, ALTER ROLE ... SET).
        self.conn.autocommit = False
        try:
            try:
                cur.execute("SET LOCAL log_statement = 'none'")
                cur.execute("SET LOCAL log_min_error_statement = 'panic'")
            except self.errors:
                self.conn.rollback()
                cur.execute("SELECT current_setting('log_statement'), "
                            "current_setting('log_min_error_statement')")
                statement, on_error = cur.fetchone()
                if statement == "all" or on_error not in ("log", "fatal", "panic"):
                    raise RuntimeError("refusing to send tokens: this role's statements may be "
                                       "logged (set log_statement = none and "
                                       "log_min_error_statement = panic for it)")
            cur.execute(f"SELECT envdb.{fn}({placeholders})", values)
            result = _decoded(cur.fetchone()[0])
            self.conn.commit()
            return result
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            self.conn.autocommit = True


class SqliteControlPlane:
    def __init__(self, path, extension):
        import sqlite3
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        self.conn.enable_load_extension(True)
        self.conn.load_extension(extension)  # reads the keyring named by ENVDB_KEYRING
        self.conn.enable_load_extension(False)
        self.errors = sqlite3.Error

    def call(self, fn, *args, secret=False):
        values = [json.dumps(a) if isinstance(a, dict) else a for a in args]
        placeholders = ", ".join("?" for _ in values)
        row = self.conn.execute(f"SELECT envdb_{fn}({placeholders})", values).fetchone()
        return _decoded(row[0])


def _decoded(value):
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


class Worker:
    def __init__(self, control, api, name, group=None, max_attempts=5, log=print):
        self.control, self.api, self.name = control, api, name
        self.group, self.max_attempts, self.log = group, max_attempts, log

    def run_once(self, max_jobs=10):
        """Claims and carries out one batch; returns how many jobs it handled."""
        jobs = self.control.call("claim_provisioning_jobs", "turso", max_jobs, self.name)
        for job in jobs:
            self.handle(job)
        return len(jobs)

    def run_until_empty(self):
        total = 0
        while True:
            n = self.run_once()
            if n == 0:
                return total
            total += n

    def replace(self, job, name, group):
        """Makes database `name` again from the job's seed (a copy, a point in time, or empty),
        never deleting the old one before the new content exists."""
        payload = job["payload"]
        seed = None
        if job["kind"] == "copy_database":
            if payload.get("mode") != "full":
                raise ApiError("schema copies need a libSQL connection to empty the tables; this "
                               "example worker copies mode full only", False)
            seed = {"type": "database", "name": payload["sourceDatabaseName"]}
        elif job["kind"] == "restore_database":
            location = payload["location"]
            source, _, when = location[len("turso:"):].partition("@")
            seed = {"type": "database", "name": source, "timestamp": when}
        temporary = f"{name}-r{job['id'].replace('-', '')[-8:]}"
        self.api.delete_database(temporary)  # a crashed attempt's
        self.api.create_database(temporary, group, seed)
        self.api.delete_database(name)
        url = self.api.create_database(name, group, {"type": "database", "name": temporary})
        self.api.delete_database(temporary)
        return url

    def handle(self, job):
        payload = job["payload"]
        kind = job["kind"]
        action = payload.get("action") or {"drop_database": "drop", "backup_database": "backup",
                                           "delete_backup": "delete_backup"}.get(kind, "create")
        name = payload.get("databaseName") or job["databaseName"]
        group = self.group or payload.get("region") or job.get("region") or "default"
        try:
            url = None
            if action in ("backup", "delete_backup"):
                # Turso keeps the history a point-in-time restore needs.
                if action == "backup" and not self.api.exists(name):
                    raise ApiError(f"database {name} does not exist", False)
                self.control.call("complete_provisioning_job", job["id"])
                self.log(f"{job['id']} {action} {name}: done")
                return
            if action == "replace":
                self.replace(job, name, group)
            if action == "create":
                copy_from = payload.get("copyFrom")
                seed = ({"type": "database", "name": copy_from["sourceDatabaseName"]}
                        if copy_from else None)
                if copy_from and copy_from.get("mode") != "full":
                    raise ApiError("schema copies need a libSQL connection to empty the tables; "
                                   "this example worker copies mode full only", False)
                url = self.api.create_database(name, group, seed)
            if action == "drop":
                self.api.delete_database(name)
            elif payload.get("invalidateTokens") and action != "replace":
                self.api.invalidate_tokens(name)
            tokens = {}
            for mint in payload.get("mint", []):
                tokens[mint["scope"]] = self.api.create_token(name, mint["authorization"],
                                                              mint.get("expiresAt"))
            if action == "drop":
                self.control.call("complete_provisioning_job", job["id"])
            else:
                self.control.call("complete_provisioning_job", job["id"], url, tokens or None,
                                  secret=bool(tokens))
            self.log(f"{job['id']} {action} {name}: done")
        except ApiError as e:
            retry = e.transient and job["attempts"] < self.max_attempts
            self.control.call("fail_provisioning_job", job["id"], str(e), retry)
            self.log(f"{job['id']} {action} {name}: {e} ({'will retry' if retry else 'failed'})")
        except self.control.errors as e:
            # envdb refused the report (e.g. conflict: the environment was archived meanwhile).
            message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.control.call("fail_provisioning_job", job["id"], message, False)
            self.log(f"{job['id']} {action} {name}: {message}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--org", required=True, help="the Turso organization slug")
    parser.add_argument("--api-url", default=os.environ.get("TURSO_API_URL", DEFAULT_API))
    parser.add_argument("--group", help="Turso group for new databases (default: the job's region)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--postgres", metavar="DSN", help="libpq connection string of the control plane")
    where.add_argument("--sqlite", metavar="PATH", help="the SQLite control database")
    parser.add_argument("--extension", default="./build/envdb.so", help="envdb's SQLite extension")
    parser.add_argument("--worker-name", default=f"turso-worker {socket.gethostname()} {os.getpid()}")
    parser.add_argument("--loop", type=float, metavar="SECONDS", help="poll again after SECONDS")
    parser.add_argument("--max-attempts", type=int, default=5)
    args = parser.parse_args(argv)
    token = os.environ.get("TURSO_API_TOKEN")
    if not token:
        parser.error("TURSO_API_TOKEN must hold a Turso Platform API token")
    control = (PostgresControlPlane(args.postgres) if args.postgres
               else SqliteControlPlane(args.sqlite, args.extension))
    worker = Worker(control, TursoApi(args.api_url, args.org, token), args.worker_name,
                    args.group, args.max_attempts)
    while True:
        worker.run_until_empty()
        if not args.loop:
            return 0
        time.sleep(args.loop)


if __name__ == "__main__":
    sys.exit(main())
