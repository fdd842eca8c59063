"""One scenario drives the whole control-plane surface against both hosts;
their answers must agree once generated ids and timestamps are set aside."""
import json
import unittest

from hosts import (HostError, Normalizer, PostgresHost, Request, Seconds, SqliteHost,
                   postgres_available)


def in_block(h, fn, *args):
    """Postgres refuses a context set in autocommit (it would end with that
    statement): a router sets it inside its transaction, as here."""
    if h.name != "postgres":
        return h.call(fn, *args)
    h.conn.autocommit = False
    try:
        return h.call(fn, *args)
    finally:
        h.conn.rollback()
        h.conn.autocommit = True


def scenario(h):
    """Yields (label, thunk). Each step's answer, or its error, is recorded."""
    state = {}

    def keep(name, value):
        state[name] = value
        return value

    yield "config grace", lambda: h.call("config", "rotation_grace_seconds", "600")
    yield "provision organization", lambda: keep("org", h.call(
        "provision_organization", "acme", "Acme Corp", None, "eu-1", "turso", "alice"))
    org = lambda: state["org"]["organization"]["id"]  # noqa: E731
    default_env = lambda: state["org"]["defaultEnvironment"]["environment"]["id"]  # noqa: E731
    yield "duplicate organization", lambda: h.call("provision_organization", "acme", "Again")
    yield "provision dev", lambda: keep("dev", h.call(
        "provision_environment", org(), "dev", "Development", "development", "eu-1", "turso"))
    dev = lambda: state["dev"]["environment"]["id"]  # noqa: E731
    yield "provision prod (request form)", lambda: keep("prod", h.call("provision_environment", Request(
        organizationId=org(), slug="prod", name="Production", envType="production", driver="turso",
        metadata={"tier": "gold"}, storageLimitMb=1024)))
    prod = lambda: state["prod"]["environment"]["id"]  # noqa: E731
    yield "dev again, if_not_exists", lambda: h.call("provision_environment", Request(
        organizationId=org(), slug="dev", driver="turso", ifNotExists=True))
    yield "dev again", lambda: h.call("provision_environment", org(), "dev", None, None, None, "turso")
    yield "second default", lambda: h.call("provision_environment", Request(
        organizationId=org(), slug="other", driver="turso", isDefault=True))
    yield "bad slug", lambda: h.call("provision_environment", org(), "Bad Slug", None, None, None, "turso")
    yield "unknown organization", lambda: h.call("provision_environment", "nope", "x", None, None, None, "turso")
    yield "claim jobs", lambda: keep("jobs", h.call("claim_provisioning_jobs", "turso", 10, "worker-1"))
    yield "claim again finds none", lambda: h.call("claim_provisioning_jobs", "turso", 10, "worker-2")
    job_of = lambda env: next(j["id"] for j in state["jobs"] if j["environmentId"] == env())  # noqa: E731
    yield "complete dev job", lambda: h.call("complete_provisioning_job", job_of(dev), "libsql://dev.example",
                                             {"readwrite": "tok-dev-rw", "admin": "tok-dev-admin"})
    yield "complete prod job", lambda: h.call("complete_provisioning_job", job_of(prod), "libsql://prod.example",
                                              {"readwrite": "tok-prod-rw"})
    yield "fail default job", lambda: h.call("fail_provisioning_job", job_of(default_env), "quota exceeded")
    yield "retry default", lambda: h.call("retry_environment", default_env())
    yield "get dev", lambda: h.call("get_environment", dev())
    yield "add member", lambda: h.call("add_environment_member", dev(), "user-1", "env_maker")
    yield "change role", lambda: h.call("add_environment_member", dev(), "user-1", "env_viewer")
    yield "role", lambda: h.call("environment_role", dev(), "user-1")
    yield "viewer may read", lambda: h.call("check_environment_access", dev(), "user-1", "read")
    yield "viewer may not deploy", lambda: h.call("check_environment_access", dev(), "user-1", "deploy")
    yield "bad role", lambda: h.call("add_environment_member", dev(), "user-2", "owner")
    yield "remove member", lambda: h.call("remove_environment_member", dev(), "user-1")
    yield "remove again", lambda: h.call("remove_environment_member", dev(), "user-1")
    yield "suspend dev", lambda: h.call("set_environment_status", dev(), "suspended", "maintenance")
    yield "suspended -> provisioning refused", lambda: h.call("set_environment_status", dev(), "provisioning")
    yield "resume dev", lambda: h.call("set_environment_status", dev(), "active")
    db_of = lambda env: h.call("get_environment", env())["database"]["id"]  # noqa: E731
    yield "rotate dev readwrite", lambda: keep("rot", h.call("rotate_credential", db_of(dev), "readwrite",
                                                             Seconds(300), "tok-dev-rw-2"))
    yield "reveal new", lambda: h.call("reveal_credential", state["rot"]["credential"]["id"])
    yield "reveal previous (in grace)", lambda: h.call("reveal_credential", state["rot"]["previous"]["id"])
    yield "revoke previous", lambda: h.call("revoke_credential", state["rot"]["previous"]["id"])
    yield "revoke again", lambda: h.call("revoke_credential", state["rot"]["previous"]["id"])
    yield "reveal revoked", lambda: h.call("reveal_credential", state["rot"]["previous"]["id"])
    yield "issue readonly", lambda: h.call("issue_credential", db_of(dev), "readonly", "tok-ro")
    yield "resolve dev readwrite", lambda: h.call("resolve_environment", dev(), "readwrite")
    yield "resolve dev readonly", lambda: h.call("resolve_environment", dev(), "readonly")
    yield "resolve default scope", lambda: h.call("resolve_environment", dev())
    yield "resolve bad scope", lambda: h.call("resolve_environment", dev(), "root")
    yield "resolve unknown", lambda: h.call("resolve_environment", "no-such-env")
    yield "set context as member", lambda: (h.call("add_environment_member", dev(), "user-9", "env_admin"),
                                            in_block(h, "set_active_environment", dev(), "user-9"))[1]
    yield "set context as non-member", lambda: in_block(h, "set_active_environment", dev(), "stranger")
    yield "clear context", lambda: h.call("clear_active_environment")
    yield "expire none", lambda: h.call("expire_credentials")
    yield "resolve suspended", lambda: (h.call("set_environment_status", dev(), "suspended"),
                                        h.call("resolve_environment", dev()))[1]
    yield "resume for the rest", lambda: h.call("set_environment_status", dev(), "active")
    yield "archive protected prod", lambda: h.call("archive_environment", prod())
    yield "archive prod with force", lambda: h.call("archive_environment", prod(), True)
    yield "drop active dev", lambda: h.call("drop_environment_database", dev(), True)
    yield "drop protected prod with force", lambda: h.call("drop_environment_database", prod(), True)
    yield "config drop grace 0", lambda: h.call("config", "drop_grace_seconds", "0")
    yield "drop prod", lambda: keep("drop", h.call("drop_environment_database", prod()))
    yield "drop prod while queued", lambda: h.call("drop_environment_database", prod())
    # A turso database's jobs run in order: prod's archive job (invalidate its tokens) comes first.
    yield "claim the archive jobs", lambda: keep("lifecycle", h.call("claim_provisioning_jobs", "turso", 10,
                                                                   "worker-1"))
    yield "complete prod's archive job", lambda: h.call(
        "complete_provisioning_job", next(j["id"] for j in state["lifecycle"] if j["environmentId"] == prod()))
    yield "claim the drop job", lambda: h.call("claim_provisioning_jobs", "turso", 10, "worker-1")
    yield "complete the drop job", lambda: h.call("complete_provisioning_job", state["drop"]["job"]["id"])
    yield "get dropped prod", lambda: h.call("get_environment", prod())
    yield "archive default", lambda: h.call("archive_environment", default_env(), True)
    yield "archived is final", lambda: h.call("set_environment_status", prod(), "active")
    yield "set default to dev", lambda: h.call("set_default_environment", dev())
    yield "keyring status", lambda: h.call("keyring_status")
    yield "v4 view", lambda: [list(r) for r in h.sql(
        "select organization_id, auth_token, plan from envdb.sys_tenant_database order by 1")]
    yield "audit actions", lambda: sorted({r[0] for r in h.sql("select action from envdb.sys_audit_event")})


EXPECTED_REFUSALS = [
    "duplicate organization", "dev again", "second default", "bad slug", "unknown organization",
    "bad role", "suspended -> provisioning refused", "revoke again", "reveal revoked", "resolve bad scope",
    "resolve unknown", "set context as non-member", "resolve suspended", "archive protected prod",
    "drop active dev", "drop protected prod with force", "drop prod while queued",
    "archive default", "archived is final"]


def run(h):
    out, norm = [], Normalizer()
    for label, thunk in scenario(h):
        try:
            result = thunk()
        except HostError as e:
            result = {"error": e.code, "message": e.message}
        out.append((label, norm(result)))
    return out


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Parity(unittest.TestCase):
    maxDiff = None

    def test_the_same_scenario_gives_the_same_answers(self):
        s, p = SqliteHost(), PostgresHost()
        try:
            sqlite_steps, pg_steps = run(s), run(p)
        finally:
            s.close()
            p.close()
        self.assertEqual([l for l, _ in sqlite_steps], [l for l, _ in pg_steps])
        for (label, a), (_, b) in zip(sqlite_steps, pg_steps):
            with self.subTest(step=label):
                self.assertEqual(json.dumps(a, indent=1, sort_keys=True), json.dumps(b, indent=1, sort_keys=True))
        # Exactly the steps meant to be refused were refused; everything else worked.
        errors = [l for l, r in sqlite_steps if isinstance(r, dict) and "error" in r]
        self.assertEqual(errors, EXPECTED_REFUSALS)


if __name__ == "__main__":
    unittest.main()
