"""The turso driver's lifecycle through the outbox, in both hosts: revoke, rotate (without a token),
expire, suspend, resume, archive and drop each queue a job that holds no secret, and the example
worker (examples/turso_worker.py, run as its own process) carries them out against a fake Turso
Platform API on loopback, whose state shows which tokens work."""
import base64
import json
import os
import secrets
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from hosts import (TEST_KEY, TEST_KEY_ID, AcmeScenario, PostgresHost, Request,  # noqa: E402
                   Seconds, SqliteHost, postgres_available)
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sqlite"))
from envdb_sqlite import EXTENSION  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORKER = os.path.join(ROOT, "examples", "turso_worker.py")
ORG = "acme-turso"
API_TOKEN = "platform-api-token-" + secrets.token_hex(8)


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class FakeTurso:
    """The four Platform API endpoints envdb's worker uses, with their state in memory: databases,
    and the tokens minted for each (valid until the database's tokens are invalidated)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.databases = {}  # name -> {"group", "hostname", "tokens": {jwt: authorization}}
        self.dead = set()    # invalidated tokens
        self.calls = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _route(self, method):
                url = urllib.parse.urlsplit(self.path)
                parts = [urllib.parse.unquote(p) for p in url.path.strip("/").split("/")]
                query = dict(urllib.parse.parse_qsl(url.query))
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                if self.headers.get("Authorization") != "Bearer " + API_TOKEN:
                    return self._send(401, {"error": "unauthorized"})
                if parts[:3] != ["v1", "organizations", ORG] or parts[3:4] != ["databases"]:
                    return self._send(404, {"error": "no such route"})
                with fake.lock:
                    fake.calls.append((method, "/".join(parts[4:])))
                    status, answer = fake.handle(method, parts[4:], query, body)
                self._send(status, answer)

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_DELETE(self):
                self._route("DELETE")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def handle(self, method, rest, query, body):
        if method == "POST" and not rest:
            name = body["name"]
            if name in self.databases:
                return 409, {"error": f"database {name} already exists"}
            content = None
            seed = body.get("seed")
            if seed:  # another database, at a point in time when asked
                if seed.get("type") != "database" or seed.get("name") not in self.databases:
                    return 400, {"error": "bad seed"}
                history = self.databases[seed["name"]]["history"]
                at = seed.get("timestamp")
                content = [c for t, c in history if at is None or t <= at][-1]
            self.databases[name] = {"group": body.get("group"), "hostname": f"{name}-{ORG}.turso.io",
                                    "tokens": {}, "history": [(now_iso(), content)]}
            return 200, self._database(name)
        if not rest or rest[0] not in self.databases:
            return 404, {"error": "database not found"}
        name = rest[0]
        if method == "GET" and len(rest) == 1:
            return 200, self._database(name)
        if method == "DELETE" and len(rest) == 1:
            self.dead.update(self.databases.pop(name)["tokens"])
            return 200, {"database": name}
        if method == "POST" and rest[1:] == ["auth", "tokens"]:
            if query.get("authorization") not in ("full-access", "read-only") or not query.get("expiration"):
                return 400, {"error": "bad token request"}
            jwt = "jwt-" + secrets.token_urlsafe(24)
            self.databases[name]["tokens"][jwt] = query["authorization"]
            return 200, {"jwt": jwt}
        if method == "POST" and rest[1:] == ["auth", "rotate"]:
            self.dead.update(self.databases[name]["tokens"])
            self.databases[name]["tokens"] = {}
            return 200, {}
        return 404, {"error": "no such route"}

    def _database(self, name):
        d = self.databases[name]
        return {"database": {"Name": name, "DbId": name, "Hostname": d["hostname"], "group": d["group"]}}

    def content(self, name):
        with self.lock:
            return self.databases[name]["history"][-1][1]

    def write(self, name, content):
        with self.lock:
            self.databases[name]["history"].append((now_iso(), content))

    def valid(self, token):
        with self.lock:
            return any(token in d["tokens"] for d in self.databases.values())

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class TursoLifecycle(AcmeScenario):
    """Runs against self.host_class; subclasses say which and how the worker reaches it."""

    def setUp(self):
        self.api = FakeTurso()
        self.addCleanup(self.api.stop)
        super().setUp()
        self.run_worker()  # the create_database jobs of acme's two environments
        self.assertEqual(self.env_status(self.dev), "active")

    # ---- helpers

    def worker_args(self):
        raise NotImplementedError

    def run_worker(self):
        env = dict(os.environ, TURSO_API_TOKEN=API_TOKEN)
        args, extra_env = self.worker_args()
        env.update(extra_env)
        done = subprocess.run(["/usr/bin/python3", WORKER, "--org", ORG, "--api-url", self.api.url] + args,
                              env=env, capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertNotIn("Traceback", done.stderr)
        return done.stdout

    def env_status(self, env_id):
        return self.h.call("get_environment", env_id)["environment"]["status"]

    def credentials(self, env_id):
        return self.h.call("get_environment", env_id)["credentials"]

    def live(self, env_id):
        return {c["scope"]: c for c in self.credentials(env_id) if c["status"] == "active"}

    def token(self, credential_id):
        return self.h.call("reveal_credential", credential_id)

    def all_tokens(self):
        """Every token envdb holds (revealed while still revealable) and every token the fake
        Turso ever minted."""
        with self.api.lock:
            minted = {t for d in self.api.databases.values() for t in d["tokens"]} | set(self.api.dead)
        return minted

    def claim_one(self):
        """Claims the turso jobs now claimable, asserts exactly one and that it holds no secret,
        and hands it back (pending) for the worker."""
        jobs = self.h.call("claim_provisioning_jobs", "turso", 10, "test")
        self.assertEqual(len(jobs), 1, jobs)
        job = jobs[0]
        text = json.dumps(job)
        for token in self.all_tokens():
            self.assertNotIn(token, text)
        self.assertNotIn("jwt-", text)
        self.h.call("fail_provisioning_job", job["id"], "inspected by the test", True)
        return job

    # ---- scenarios

    def test_create_mints_the_initial_scopes(self):
        db_name = self.h.call("get_environment", self.dev)["database"]["databaseName"]
        self.assertIn(db_name, self.api.databases)
        live = self.live(self.dev)
        self.assertEqual(sorted(live), ["admin", "readonly", "readwrite"])
        for c in live.values():
            self.assertTrue(self.api.valid(self.token(c["id"])))
        url = self.h.call("get_environment", self.dev)["database"]["databaseUrl"]
        self.assertEqual(url, f"libsql://{db_name}-{ORG}.turso.io")

    def test_revoke_invalidates_and_remints_the_live_scopes(self):
        before = self.live(self.dev)
        rw_token, admin_token = self.token(before["readwrite"]["id"]), self.token(before["admin"]["id"])
        self.h.call("revoke_credential", before["readwrite"]["id"])
        job = self.claim_one()
        self.assertEqual(job["kind"], "disable_login")
        p = job["payload"]
        self.assertEqual(p["action"], "revoke")
        self.assertEqual(p["credentialIds"], [before["readwrite"]["id"]])
        self.assertTrue(p["invalidateTokens"])
        self.assertEqual([(m["scope"], m["replaces"]) for m in p["mint"]],
                         [("admin", before["admin"]["id"]), ("readonly", before["readonly"]["id"])])
        # Until the worker runs, Turso still accepts the revoked token: that is what the job is for.
        self.assertTrue(self.api.valid(rw_token))
        self.run_worker()
        self.assertFalse(self.api.valid(rw_token))
        self.assertFalse(self.api.valid(admin_token))
        after = self.live(self.dev)
        self.assertEqual(sorted(after), ["admin", "readonly"])
        self.assertNotEqual(after["admin"]["id"], before["admin"]["id"])
        self.assertEqual(after["admin"]["rotatedFrom"], before["admin"]["id"])
        self.assertTrue(self.api.valid(self.token(after["admin"]["id"])))
        self.assertEqual(self.h.call("check")["ok"], True)

    def test_rotate_without_a_token_asks_the_worker_to_mint(self):
        db = self.h.call("get_environment", self.dev)["database"]["id"]
        old = self.live(self.dev)["readwrite"]
        old_token = self.token(old["id"])
        out = self.h.call("rotate_credential", db, "readwrite", Seconds(3600))
        self.assertIsNone(out["credential"])
        self.assertEqual(out["previous"]["id"], old["id"])
        self.assertEqual(out["previous"]["status"], "active")  # until Turso has the new token
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("create_login", "rotate"))
        self.assertFalse(job["payload"]["invalidateTokens"])
        self.assertEqual([(m["scope"], m["replaces"]) for m in job["payload"]["mint"]],
                         [("readwrite", old["id"])])
        self.run_worker()
        new = self.live(self.dev)["readwrite"]
        self.assertNotEqual(new["id"], old["id"])
        self.assertEqual(new["rotatedFrom"], old["id"])
        self.assertTrue(self.api.valid(self.token(new["id"])))
        # The old token keeps working through its grace, at Turso and in the catalog.
        self.assertTrue(self.api.valid(old_token))
        previous = [c for c in self.credentials(self.dev) if c["id"] == old["id"]][0]
        self.assertEqual(previous["status"], "rotating")

    def test_expire_after_a_zero_grace_rotation_invalidates_the_old_token(self):
        db = self.h.call("get_environment", self.dev)["database"]["id"]
        old = self.live(self.dev)["readwrite"]
        old_token = self.token(old["id"])
        self.h.call("rotate_credential", db, "readwrite", Seconds(0))
        self.run_worker()
        self.assertTrue(self.api.valid(old_token))
        time.sleep(0.01)
        self.assertEqual(self.h.call("expire_credentials"), 1)
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("disable_login", "expire"))
        self.assertEqual(job["payload"]["credentialIds"], [old["id"]])
        self.run_worker()
        self.assertFalse(self.api.valid(old_token))
        for c in self.live(self.dev).values():
            self.assertTrue(self.api.valid(self.token(c["id"])))

    def test_suspend_invalidates_and_resume_mints_again(self):
        before = self.live(self.dev)
        tokens = [self.token(c["id"]) for c in before.values()]
        self.h.call("set_environment_status", self.dev, "suspended")
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("disable_login", "suspend"))
        self.assertEqual(job["payload"]["mint"], [])
        self.run_worker()
        self.assertFalse(any(self.api.valid(t) for t in tokens))
        self.h.call("set_environment_status", self.dev, "active")
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("create_login", "resume"))
        self.assertEqual(sorted(m["scope"] for m in job["payload"]["mint"]), ["admin", "readonly", "readwrite"])
        self.run_worker()
        after = self.live(self.dev)
        self.assertEqual(sorted(after), ["admin", "readonly", "readwrite"])
        for scope, c in after.items():
            self.assertEqual(c["rotatedFrom"], before[scope]["id"])
            self.assertTrue(self.api.valid(self.token(c["id"])))

    def test_archive_then_drop(self):
        tokens = [self.token(c["id"]) for c in self.live(self.dev).values()]
        db_name = self.h.call("get_environment", self.dev)["database"]["databaseName"]
        self.h.call("archive_environment", self.dev)
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("disable_login", "archive"))
        self.run_worker()
        self.assertFalse(any(self.api.valid(t) for t in tokens))
        self.assertIn(db_name, self.api.databases)
        self.h.call("drop_environment_database", self.dev, True)
        job = self.claim_one()
        self.assertEqual((job["kind"], job["payload"]["action"]), ("drop_database", "drop"))
        self.run_worker()
        self.assertNotIn(db_name, self.api.databases)
        self.assertIsNotNone(self.h.call("get_environment", self.dev)["database"]["droppedAt"])

    def test_jobs_of_one_database_run_in_order(self):
        db = self.h.call("get_environment", self.dev)["database"]["id"]
        old = self.live(self.dev)["readwrite"]
        old_token = self.token(old["id"])
        self.h.call("rotate_credential", db, "readwrite", Seconds(3600))
        self.h.call("revoke_credential", old["id"])
        # The revoke waits for the mint queued before it.
        jobs = self.h.call("claim_provisioning_jobs", "turso", 10, "test")
        self.assertEqual([j["payload"]["action"] for j in jobs], ["rotate"])
        self.h.call("fail_provisioning_job", jobs[0]["id"], "back", True)
        self.run_worker()
        # Both ran: the old token is dead, the minted one and the reminted admin work.
        self.assertFalse(self.api.valid(old_token))
        live = self.live(self.dev)
        self.assertEqual(sorted(live), ["admin", "readonly", "readwrite"])
        for c in live.values():
            self.assertTrue(self.api.valid(self.token(c["id"])))
        statuses = {c["id"]: c["status"] for c in self.credentials(self.dev)}
        self.assertEqual(statuses[old["id"]], "revoked")
        self.assertEqual(self.h.call("claim_provisioning_jobs", "turso", 10, "test"), [])

    def test_completing_with_the_wrong_scopes_is_refused(self):
        before = self.live(self.dev)
        self.h.call("revoke_credential", before["readwrite"]["id"])
        job = self.h.call("claim_provisioning_jobs", "turso", 10, "test")[0]
        with self.assertRaises(Exception) as e:
            self.h.call("complete_provisioning_job", job["id"], None, {"readwrite": "t"})
        self.assertEqual(e.exception.code, "invalid_parameter")
        self.assertIn("tokens.readwrite", e.exception.message)
        with self.assertRaises(Exception) as e:
            self.h.call("complete_provisioning_job", job["id"], None, None)
        self.assertEqual(e.exception.code, "invalid_parameter")
        self.assertIn("tokens.admin is required", e.exception.message)
        self.assertEqual(self.live(self.dev)["admin"]["id"], before["admin"]["id"])


    # ---- copies, resets, backups and restores (action replace)

    def db_name(self, env_id):
        return self.h.call("get_environment", env_id)["database"]["databaseName"]

    def sandbox(self):
        env = self.h.call("provision_environment", self.org, "sandbox", None, "sandbox", None, "turso")
        self.run_worker()
        return env["environment"]["id"]

    def assert_live_tokens_work(self, env_id):
        live = self.live(env_id)
        self.assertEqual(sorted(live), ["admin", "readonly", "readwrite"])
        for c in live.values():
            self.assertTrue(self.api.valid(self.token(c["id"])))
        resolved = self.h.call("resolve_environment", env_id, "readwrite")["credential"]["token"]
        self.assertTrue(self.api.valid(resolved))

    def test_copy_remakes_the_target_and_mints_its_tokens(self):
        sandbox = self.sandbox()
        self.api.write(self.db_name(self.dev), "dev rows")
        self.api.write(self.db_name(sandbox), "sandbox rows")
        old_tokens = [self.token(c["id"]) for c in self.live(sandbox).values()]
        out = self.h.call("copy_environment", self.dev, sandbox)
        self.assertEqual((out["environment"]["status"], out["job"]["kind"]), ("maintenance", "copy_database"))
        with self.assertRaises(Exception) as e:
            self.h.call("resolve_environment", sandbox, "readwrite")
        self.assertEqual(e.exception.code, "conflict")
        job = self.claim_one()
        p = job["payload"]
        self.assertEqual((p["action"], p["mode"], p["previousStatus"], p["invalidateTokens"]),
                         ("replace", "full", "active", True))
        self.assertEqual((p["sourceDatabaseName"], p["targetDatabaseName"]),
                         (self.db_name(self.dev), self.db_name(sandbox)))
        self.assertEqual(sorted(m["scope"] for m in p["mint"]), ["admin", "readonly", "readwrite"])
        self.run_worker()
        self.assertEqual(self.env_status(sandbox), "active")
        self.assertEqual(self.api.content(self.db_name(sandbox)), "dev rows")
        self.assertEqual(self.api.content(self.db_name(self.dev)), "dev rows")  # source unchanged
        self.assertFalse(any(self.api.valid(t) for t in old_tokens))
        self.assert_live_tokens_work(sandbox)
        self.assertEqual(sorted(self.api.databases), sorted(
            {self.db_name(e) for e in (self.default_env, self.dev, sandbox)}))  # no temporary left

    def test_a_failed_copy_gives_the_status_back(self):
        sandbox = self.sandbox()
        self.api.write(self.db_name(sandbox), "sandbox rows")
        self.h.call("set_environment_status", sandbox, "suspended")
        self.run_worker()
        out = self.h.call("copy_environment", self.dev, sandbox, "schema")  # the example refuses schema
        self.assertEqual(out["environment"]["status"], "maintenance")
        self.run_worker()
        self.assertEqual(self.env_status(sandbox), "suspended")
        self.assertEqual(self.api.content(self.db_name(sandbox)), "sandbox rows")
        jobs = self.h.sql("select status from envdb.sys_provisioning_job where kind = 'copy_database'")
        self.assertEqual(jobs, [("failed",)])

    def test_backup_change_restore_and_reset(self):
        name = self.db_name(self.dev)
        self.api.write(name, "v1")
        time.sleep(0.01)
        backup = self.h.call("backup_environment", self.dev, "v1")
        self.assertEqual((backup["backup"]["status"], backup["job"]["kind"]), ("pending", "backup_database"))
        self.assertTrue(backup["backup"]["location"].startswith(f"turso:{name}@"))
        self.run_worker()
        listed = self.h.call("list_environment_backups", self.dev)
        self.assertEqual([(b["id"], b["status"]) for b in listed], [(backup["backup"]["id"], "ready")])
        time.sleep(0.01)
        self.api.write(name, "v2")
        out = self.h.call("restore_environment", self.dev, backup["backup"]["id"])
        self.assertEqual((out["environment"]["status"], out["job"]["kind"]), ("maintenance", "restore_database"))
        self.run_worker()
        self.assertEqual(self.env_status(self.dev), "active")
        self.assertEqual(self.api.content(name), "v1")
        self.assert_live_tokens_work(self.dev)
        self.h.call("reset_environment", self.dev)
        self.run_worker()
        self.assertEqual((self.env_status(self.dev), self.api.content(name)), ("active", None))
        self.assert_live_tokens_work(self.dev)
        deleted = self.h.call("delete_environment_backup", backup["backup"]["id"])
        self.assertEqual(deleted["backup"]["status"], "deleting")
        self.run_worker()
        self.assertEqual(self.h.call("list_environment_backups", self.dev), [])

    def test_new_environment_as_a_copy(self):
        self.api.write(self.db_name(self.dev), "dev rows")
        req = {"organizationId": self.org, "slug": "from-dev", "copyFrom": self.dev}
        out = self.h.call("provision_environment", Request(req))
        self.assertEqual(out["database"]["driver"], "turso")
        self.run_worker()
        new = out["environment"]["id"]
        self.assertEqual(self.env_status(new), "active")
        self.assertEqual(self.api.content(self.db_name(new)), "dev rows")
        self.assert_live_tokens_work(new)


class SqliteTursoLifecycle(TursoLifecycle, unittest.TestCase):
    host_class = SqliteHost

    def worker_args(self):
        keyring = os.path.join(self.h.dir.name, "keyring")
        if not os.path.exists(keyring):
            with open(keyring, "w") as f:
                f.write(f"{TEST_KEY_ID} {TEST_KEY}\n")
            os.chmod(keyring, stat.S_IRUSR | stat.S_IWUSR)
        return (["--sqlite", os.path.join(self.h.dir.name, "control.db"), "--extension", EXTENSION],
                {"ENVDB_KEYRING": keyring})


@unittest.skipUnless(postgres_available(), "no Postgres cluster (run under pg_virtualenv)")
class PostgresTursoLifecycle(TursoLifecycle, unittest.TestCase):
    host_class = PostgresHost

    def worker_args(self):
        # The worker's own sessions need the keyring: a database setting (superuser here).
        self.h.sql(f"ALTER DATABASE \"{self.h.dbname}\" SET envdb.keyring_command = "
                   f"'printf ''{TEST_KEY_ID} {TEST_KEY}\\n'''")
        return (["--postgres", f"dbname={self.h.dbname}"], {})


if __name__ == "__main__":
    unittest.main()
