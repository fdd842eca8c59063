"""The bad-input table: every case must fail with the contract's code word,
name what was wrong, write nothing, and leave the connection usable — in both
hosts."""
import unittest

from hosts import HostError, PostgresHost, Request, SqliteHost, postgres_available

INJECTION = "x'); DROP TABLE sys_organization; --"
LONG = "x" * 10000


def cases(f):
    """(label, function, args, code, fragment of the message). `f` holds the fixture ids."""
    org, env, prov, db = f["org"], f["env"], f["prov_env"], f["db"]
    return [
        ("empty slug", "provision_organization", ("", "Acme"), "invalid_parameter", "slug"),
        ("uppercase slug", "provision_organization", ("ACME", "Acme"), "invalid_parameter", "slug"),
        ("slug starting with -", "provision_organization", ("-acme", "Acme"), "invalid_parameter", "slug"),
        ("slug of 64", "provision_organization", ("a" * 64, "Acme"), "invalid_parameter", "slug"),
        ("injection slug", "provision_organization", (INJECTION, "Acme"), "invalid_parameter", "slug"),
        ("non-ASCII slug", "provision_organization", ("café", "Acme"), "invalid_parameter", "slug"),
        # Postgres text cannot hold NUL at all (the client refuses to send it), so SQLite only.
        ("NUL in slug", "provision_organization", ("ab\x00c", "Acme"), "invalid_parameter", "slug", "sqlite"),
        ("missing name", "provision_organization", ("newco", None), "invalid_parameter", "name"),
        ("oversized name", "provision_organization", ("newco", LONG), "invalid_parameter", "name"),
        ("id with a space", "provision_organization", ("newco", "N", "bad id"), "invalid_parameter", "id"),
        ("id starting with _", "provision_organization", ("newco", "N", "_x"), "invalid_parameter", "id"),
        ("unknown driver", "provision_organization", ("newco", "N", None, None, "oracle"), "invalid_parameter", "driver"),
        ("metadata array", "provision_organization", ("newco", "N", None, None, "turso", None, [1, 2]),
         "invalid_parameter", "metadata"),
        ("oversized region", "provision_organization", ("newco", "N", None, "r" * 1000, "turso"), "invalid_parameter", "region"),
        ("duplicate organization slug", "provision_organization", ("acme", "Again"), "already_exists", "acme"),
        ("unknown organization", "provision_environment", ("no-such-org", "x", None, None, None, "turso"), "not_found", "no-such-org"),
        ("unknown env_type", "provision_environment", (org, "x", None, "staging", None, "turso"), "invalid_parameter", "env_type"),
        ("env_type default", "provision_environment", (org, "x", None, "default", None, "turso"), "invalid_parameter", "env_type"),
        ("negative storage limit", "provision_environment",
         (org, "x", None, None, None, "turso", None, None, None, -1), "invalid_parameter", "storage_limit_mb"),
        ("zero storage limit", "provision_environment",
         (org, "x", None, None, None, "turso", None, None, None, 0), "invalid_parameter", "storage_limit_mb"),
        ("second default", "provision_environment", (org, "x", None, None, None, "turso", True), "conflict", "default"),
        ("duplicate environment slug", "provision_environment", (org, "dev", None, None, None, "turso"), "already_exists", "dev"),
        ("oversized description", "provision_environment",
         (org, "x", None, None, None, "turso", None, None, "d" * 5000), "invalid_parameter", "description"),
        ("request: unknown key", "provision_environment", (Request(organizationId=org, slug="x", bogus=1),),
         "invalid_parameter", "bogus"),
        ("request: slug not text", "provision_environment", (Request(organizationId=org, slug=5),),
         "invalid_parameter", "slug"),
        ("request: isDefault not boolean", "provision_environment",
         (Request(organizationId=org, slug="x", isDefault="yes"),), "invalid_parameter", "is_default"),
        ("request: metadata not object", "provision_environment",
         (Request(organizationId=org, slug="x", metadata="m"),), "invalid_parameter", "metadata"),
        ("unknown environment status change", "set_environment_status", ("no-such-env", "active"), "not_found", "no-such-env"),
        ("unknown status", "set_environment_status", (env, "deleted"), "invalid_parameter", "deleted"),
        ("provisioning to suspended", "set_environment_status", (prov, "suspended"), "invalid_transition", "suspended"),
        ("archive the default", "archive_environment", (f["default_env"], True), "conflict", "default"),
        ("retry an active environment", "retry_environment", (env,), "invalid_transition", "active"),
        ("get unknown environment", "get_environment", ("no-such-env",), "not_found", "no-such-env"),
        ("default to unknown", "set_default_environment", ("no-such-env",), "not_found", "no-such-env"),
        ("unknown role", "add_environment_member", (env, "user-1", "owner"), "invalid_parameter", "role"),
        ("empty user id", "add_environment_member", (env, "", "env_user"), "invalid_parameter", "user_id"),
        ("user id with spaces", "add_environment_member", (env, "a user", "env_user"), "invalid_parameter", "user_id"),
        ("member of unknown environment", "add_environment_member", ("no-such-env", "u1", "env_user"), "not_found", "no-such-env"),
        ("unknown permission", "check_environment_access", (env, "user-1", "fly"), "invalid_parameter", "permission"),
        ("issue for unknown database", "issue_credential", ("no-such-db", "readwrite", "t"), "not_found", "no-such-db"),
        ("unknown scope", "issue_credential", (db, "root", "t"), "invalid_parameter", "scope"),
        ("oversized token", "issue_credential", (db, "readonly", "t" * 5000), "invalid_parameter", "token"),
        ("revoke unknown credential", "revoke_credential", ("no-such-cred",), "not_found", "no-such-cred"),
        ("reveal unknown credential", "reveal_credential", ("no-such-cred",), "not_found", "no-such-cred"),
        ("rotate with no active credential", "rotate_credential", (f["prov_db"], "readonly", None, "tok"),
         "not_found", "readonly"),
        ("turso credential without a token", "issue_credential", (f["prov_db"], "readonly"), "invalid_parameter", "token"),
        ("rewrap to an unloaded key", "rewrap_credentials", ("no-such-key",), "key_unavailable", "no-such-key"),
        ("claim for unknown driver", "claim_provisioning_jobs", ("ftp",), "invalid_parameter", "driver"),
        ("claim zero jobs", "claim_provisioning_jobs", ("turso", 0), "invalid_parameter", "max_jobs"),
        ("complete unknown job", "complete_provisioning_job", ("no-such-job",), "not_found", "no-such-job"),
        ("fail unknown job", "fail_provisioning_job", ("no-such-job", "boom"), "not_found", "no-such-job"),
        ("injection setting key", "config", (INJECTION,), "invalid_parameter", "key"),
        ("injection legacy table", "migrate_legacy_tenant_databases", ("x; drop table y",), "invalid_parameter", "legacy_table"),
    ]


def fixture(h):
    org = h.call("provision_organization", "acme", "Acme", None, None, "turso")
    org_id = org["organization"]["id"]
    dev = h.call("provision_environment", org_id, "dev", None, None, None, "turso")
    prov = h.call("provision_environment", org_id, "waiting", None, None, None, "turso")
    jobs = h.call("claim_provisioning_jobs", "turso", 10)
    job = next(j["id"] for j in jobs if j["environmentId"] == dev["environment"]["id"])
    h.call("complete_provisioning_job", job, "libsql://dev", {"readwrite": "tok"})
    return {"org": org_id, "default_env": org["defaultEnvironment"]["environment"]["id"],
            "env": dev["environment"]["id"], "db": dev["database"]["id"],
            "prov_env": prov["environment"]["id"], "prov_db": prov["database"]["id"]}


class BadInputs:
    host_class = None

    def test_every_bad_input_is_refused_and_writes_nothing(self):
        h = self.host_class()
        try:
            f = fixture(h)
            table = cases(f)
            self.assertGreaterEqual(len(table), 40)
            for label, fn, args, code, fragment, *only in table:
                if only and only[0] != h.name:
                    continue
                with self.subTest(case=label):
                    before = h.counts()
                    with self.assertRaises(HostError) as caught:
                        h.call(fn, *args)
                    self.assertEqual(caught.exception.code, code, caught.exception.message)
                    self.assertIn(fragment, caught.exception.message)
                    self.assertEqual(h.counts(), before, "a refused call wrote something")
            self.assertEqual(h.call("version")[:2], "0.")  # still serving
        finally:
            h.close()


class BadInputsSqlite(BadInputs, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class BadInputsPostgres(BadInputs, unittest.TestCase):
    host_class = PostgresHost


if __name__ == "__main__":
    unittest.main()
