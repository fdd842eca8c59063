"""The bad-input table: every case must fail with the contract's code word,
name what was wrong, write nothing, and leave the connection usable — in both
hosts. Every function the host registers must have at least one case.

Some inputs cannot reach envdb in Postgres, whose type system answers first: a
wrong argument type, malformed JSON for a jsonb argument, a malformed
timestamp, 'yes' for a boolean (Postgres reads it as true), a NUL byte (the
protocol cannot carry one), text that is not UTF-8, or an argument a function
does not take. Those cases are SQLite only, where envdb itself checks; the
Postgres side of "an argument it does not take" is the HOST case below."""
import unittest

from hosts import (HostError, PostgresHost, Raw, Request, Seconds, SqliteHost, postgres_available,
                   sqlite_call)

INJECTION = "x'); DROP TABLE sys_organization; --"
QUOTES = "o'neil\"; --"
LONG = "x" * 10000
HUGE = "y" * (1 << 20)
# Postgres refuses a call whose signature no function has (42883) before envdb
# runs; hosts.py reports a message without a code word as "unknown".
HOST = "unknown"


def call(h, fn, args):
    if any(isinstance(a, Raw) for a in args):  # SQLite only: written into the call
        return sqlite_call(h.db, fn, *args)
    return h.call(fn, *args)


S = "sqlite"
P = "postgres"


def cases(f):
    """(label, function, args, code, fragment of the message[, only host]).
    `f` holds the fixture ids."""
    org, env, prov, db = f["org"], f["env"], f["prov_env"], f["db"]
    arch, arch_db, prod = f["archived_env"], f["archived_db"], f["protected_env"]
    revoked = f["revoked_cred"]
    running, pending, done = f["running_job"], f["pending_job"], f["done_job"]
    bad_utf8 = Raw("cast(x'c328' as text)")
    overlong = Raw("cast(x'c0af' as text)")
    table = []

    def add(*case):
        table.append(case)

    def extra_argument(fn, given):
        add(f"{fn}: an argument too many", fn, given + ("surplus",), "invalid_parameter", "at most", S)
        if fn not in SQLITE_ONLY:
            add(f"{fn}: an argument it does not take", fn, given + ("surplus",), HOST, "does not exist", P)

    # ---- setup -----------------------------------------------------------
    for fn in ("version", "build_info", "keyring_status", "expire_credentials", "clear_active_environment",
               "current_environment_id", "current_organization_id", "current_context", "init",
               "environment_schema_version", "upgrade_environment_schemas"):
        extra_argument(fn, ())
    add("config: injection key", "config", (INJECTION,), "invalid_parameter", "key")
    add("config: NULL key", "config", (None,), "invalid_parameter", "key is required")
    add("config: unknown key", "config", ("colour",), "invalid_parameter", "'colour'")
    add("config: empty key", "config", ("",), "invalid_parameter", "key")
    add("config: key of 100", "config", ("k" * 100,), "invalid_parameter", "key is longer than 64")
    add("config: key not text", "config", (5,), "invalid_parameter", "key must be text", S)
    add("config: NUL in value", "config", ("default_region", "eu\x00west"), "invalid_parameter", "value", S)
    add("config: negative seconds", "config", ("rotation_grace_seconds", "-5"), "invalid_parameter",
        "rotation_grace_seconds")
    add("config: seconds in words", "config", ("credential_ttl_seconds", "ten"), "invalid_parameter",
        "credential_ttl_seconds")
    add("config: seconds of 13 digits", "config", ("credential_ttl_seconds", "9" * 13), "invalid_parameter",
        "credential_ttl_seconds")
    add("config: fractional seconds", "config", ("rotation_grace_seconds", "1.5"), "invalid_parameter",
        "rotation_grace_seconds")
    add("config: unknown default driver", "config", ("default_driver", "oracle"), "invalid_parameter",
        "default_driver")
    add("config: allow_unaudited_reveal not on/off", "config", ("allow_unaudited_reveal", "yes"),
        "invalid_parameter", "allow_unaudited_reveal")
    add("config: empty default region", "config", ("default_region", ""), "invalid_parameter", "default_region")
    add("config: value of 5000", "config", ("default_region", "r" * 5000), "invalid_parameter",
        "value is longer than 4096")
    add("config: value not UTF-8", "config", ("default_region", bad_utf8), "invalid_parameter",
        "value is not valid UTF-8", S)
    add("config: an argument too many", "config", ("default_region", "eu", "x"), "invalid_parameter", "at most", S)

    # ---- keys ------------------------------------------------------------
    add("keyring_add: id with a space", "keyring_add", ("bad id", "AAAA"), "invalid_parameter", "kms_key_id", S)
    add("keyring_add: NULL key", "keyring_add", ("k9", None), "invalid_parameter", "key_base64 is required", S)
    add("keyring_add: not base64", "keyring_add", ("k9", "!!!not base64!!!"), "invalid_parameter", "key_base64", S)
    add("keyring_add: 16 bytes", "keyring_add", ("k9", "AAECAwQFBgcICQoLDA0ODw=="), "invalid_parameter",
        "32 bytes", S)
    add("keyring_add: another key under k1", "keyring_add",
        ("k1", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="), "conflict", "'k1'", S)
    add("keyring_add: key not text", "keyring_add", ("k9", b"\x00" * 32), "invalid_parameter",
        "key_base64 must be text", S)
    add("keyring_use: unknown key", "keyring_use", ("nope",), "key_unavailable", "'nope'", S)
    add("keyring_use: NULL", "keyring_use", (None,), "invalid_parameter", "kms_key_id is required", S)
    add("keyring_use: id of 200", "keyring_use", ("k" * 200,), "invalid_parameter", "kms_key_id", S)

    # ---- provision_organization ----------------------------------------
    add("empty slug", "provision_organization", ("", "Acme"), "invalid_parameter", "slug")
    add("NULL slug", "provision_organization", (None, "Acme"), "invalid_parameter", "slug is required")
    add("uppercase slug", "provision_organization", ("ACME", "Acme"), "invalid_parameter", "slug")
    add("slug starting with -", "provision_organization", ("-acme", "Acme"), "invalid_parameter", "slug")
    add("slug with _", "provision_organization", ("a_b", "Acme"), "invalid_parameter", "slug")
    add("slug with a trailing space", "provision_organization", ("acme ", "Acme"), "invalid_parameter", "slug")
    add("slug of 64", "provision_organization", ("a" * 64, "Acme"), "invalid_parameter", "slug")
    add("injection slug", "provision_organization", (INJECTION, "Acme"), "invalid_parameter", "slug")
    add("non-ASCII slug", "provision_organization", ("café", "Acme"), "invalid_parameter", "slug")
    add("NUL in slug", "provision_organization", ("ab\x00c", "Acme"), "invalid_parameter", "slug", S)
    add("slug not UTF-8", "provision_organization", (bad_utf8, "Acme"), "invalid_parameter", "slug", S)
    add("slug a blob", "provision_organization", (b"acme", "Acme"), "invalid_parameter", "slug must be text", S)
    add("slug a number", "provision_organization", (42, "Acme"), "invalid_parameter", "slug must be text", S)
    add("missing name", "provision_organization", ("newco", None), "invalid_parameter", "name")
    add("empty name", "provision_organization", ("newco", ""), "invalid_parameter", "name")
    add("oversized name", "provision_organization", ("newco", LONG), "invalid_parameter", "name")
    add("name of 201", "provision_organization", ("newco", "n" * 201), "invalid_parameter", "name")
    add("name of 1 MiB", "provision_organization", ("newco", HUGE), "invalid_parameter", "name")
    add("control byte in name", "provision_organization", ("newco", "A\x01B"), "invalid_parameter", "name")
    add("name overlong UTF-8", "provision_organization", ("newco", overlong), "invalid_parameter", "name", S)
    add("name a float", "provision_organization", ("newco", 1.5), "invalid_parameter", "name must be text", S)
    add("id with a space", "provision_organization", ("newco", "N", "bad id"), "invalid_parameter", "id")
    add("id starting with _", "provision_organization", ("newco", "N", "_x"), "invalid_parameter", "id")
    add("id of 129", "provision_organization", ("newco", "N", "i" * 129), "invalid_parameter", "id")
    add("injection id", "provision_organization", ("newco", "N", INJECTION), "invalid_parameter", "id")
    add("unknown driver", "provision_organization", ("newco", "N", None, None, "oracle"), "invalid_parameter", "driver")
    add("empty driver", "provision_organization", ("newco", "N", None, None, ""), "invalid_parameter", "driver")
    add("uppercase driver", "provision_organization", ("newco", "N", None, None, "TURSO"), "invalid_parameter",
        "driver")
    add("metadata array", "provision_organization", ("newco", "N", None, None, "turso", None, [1, 2]),
        "invalid_parameter", "metadata")
    add("metadata JSON string", "provision_organization", ("newco", "N", None, None, "turso", None, '"m"'),
        "invalid_parameter", "metadata")
    add("metadata not JSON", "provision_organization", ("newco", "N", None, None, "turso", None, "{bad"),
        "invalid_parameter", "metadata", S)
    add("metadata a number", "provision_organization", ("newco", "N", None, None, "turso", None, 7),
        "invalid_parameter", "metadata", S)
    add("oversized region", "provision_organization", ("newco", "N", None, "r" * 1000, "turso"),
        "invalid_parameter", "region")
    add("region of 65", "provision_organization", ("newco", "N", None, "r" * 65, "turso"), "invalid_parameter",
        "region")
    add("empty region", "provision_organization", ("newco", "N", None, "", "turso"), "invalid_parameter", "region")
    add("newline in region", "provision_organization", ("newco", "N", None, "eu\nwest", "turso"),
        "invalid_parameter", "region")
    add("created_by of 257", "provision_organization", ("newco", "N", None, None, "turso", "c" * 257),
        "invalid_parameter", "created_by")
    add("duplicate organization slug", "provision_organization", ("acme", "Again"), "already_exists", "acme")
    add("duplicate organization id", "provision_organization", ("newco", "N", org, None, "turso"),
        "already_exists", org)
    add("provision_organization: an argument too many", "provision_organization",
        ("newco", "N", None, None, "turso", None, None, False, "x"), "invalid_parameter", "at most", S)
    add("request: organization, unknown key", "provision_organization", (Request(slug="newco", name="N", owner=1),),
        "invalid_parameter", "owner")
    add("request: organization, snake_case key", "provision_organization",
        (Request(slug="newco", name="N", created_by="x"),), "invalid_parameter", "created_by")
    add("request: organization, name missing", "provision_organization", (Request(slug="newco"),),
        "invalid_parameter", "name is required")
    add("request: organization, slug a list", "provision_organization", (Request(slug=["a"], name="N"),),
        "invalid_parameter", "slug")
    add("request: organization, metadata a list", "provision_organization",
        (Request(slug="newco", name="N", metadata=[1]),), "invalid_parameter", "metadata")
    add("request: organization, bad slug", "provision_organization", (Request(slug="New Co", name="N"),),
        "invalid_parameter", "slug")

    # ---- provision_environment -------------------------------------------
    add("unknown organization", "provision_environment", ("no-such-org", "x", None, None, None, "turso"),
        "not_found", "no-such-org")
    add("NULL organization", "provision_environment", (None, "x"), "invalid_parameter", "organization_id is required")
    add("organization id with a space", "provision_environment", ("bad org", "x"), "invalid_parameter",
        "organization_id")
    add("injection organization id", "provision_environment", (INJECTION, "x"), "invalid_parameter",
        "organization_id")
    add("NULL environment slug", "provision_environment", (org, None), "invalid_parameter", "slug is required")
    add("injection environment slug", "provision_environment", (org, INJECTION), "invalid_parameter", "slug")
    add("unknown env_type", "provision_environment", (org, "x", None, "staging", None, "turso"),
        "invalid_parameter", "env_type")
    add("uppercase env_type", "provision_environment", (org, "x", None, "Production", None, "turso"),
        "invalid_parameter", "env_type")
    add("empty env_type", "provision_environment", (org, "x", None, "", None, "turso"), "invalid_parameter",
        "env_type")
    add("env_type default", "provision_environment", (org, "x", None, "default", None, "turso"),
        "invalid_parameter", "env_type")
    add("environment name of 201", "provision_environment", (org, "x", "n" * 201, None, None, "turso"),
        "invalid_parameter", "name")
    add("environment driver ftp", "provision_environment", (org, "x", None, None, None, "ftp"),
        "invalid_parameter", "driver")
    add("environment region with a tab", "provision_environment", (org, "x", None, None, "a\tb", "turso"),
        "invalid_parameter", "region")
    add("negative storage limit", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, -1), "invalid_parameter", "storage_limit_mb")
    add("zero storage limit", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, 0), "invalid_parameter", "storage_limit_mb")
    add("storage limit in words", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, "big"), "invalid_parameter", "storage_limit_mb", S)
    add("fractional storage limit", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, 1.5), "invalid_parameter", "storage_limit_mb", S)
    add("is_default of 2", "provision_environment", (org, "x", None, None, None, "turso", 2),
        "invalid_parameter", "is_default", S)
    add("is_default 'yes'", "provision_environment", (org, "x", None, None, None, "turso", "yes"),
        "invalid_parameter", "is_default", S)
    add("is_protected -1", "provision_environment", (org, "x", None, None, None, "turso", None, -1),
        "invalid_parameter", "is_protected", S)
    add("if_not_exists 'true'", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, None, None, None, "true"),
        "invalid_parameter", "if_not_exists", S)
    add("second default", "provision_environment", (org, "x", None, None, None, "turso", True), "conflict",
        "default")
    add("duplicate environment slug", "provision_environment", (org, "dev", None, None, None, "turso"),
        "already_exists", "dev")
    add("oversized description", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, "d" * 5000), "invalid_parameter", "description")
    add("created_by with NUL", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, None, "a\x00b"), "invalid_parameter", "created_by", S)
    add("environment metadata array", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, None, None, [1]), "invalid_parameter", "metadata")
    add("environment metadata not JSON", "provision_environment",
        (org, "x", None, None, None, "turso", None, None, None, None, None, "{\"a\":"), "invalid_parameter",
        "metadata", S)
    add("sqlite driver in Postgres", "provision_environment", (org, "x", None, None, None, "sqlite"),
        "invalid_parameter", "driver", P)
    add("request: unknown key", "provision_environment", (Request(organizationId=org, slug="x", bogus=1),),
        "invalid_parameter", "bogus")
    add("request: slug not text", "provision_environment", (Request(organizationId=org, slug=5),),
        "invalid_parameter", "slug")
    add("request: isDefault not boolean", "provision_environment",
        (Request(organizationId=org, slug="x", isDefault="yes"),), "invalid_parameter", "is_default")
    add("request: metadata not object", "provision_environment",
        (Request(organizationId=org, slug="x", metadata="m"),), "invalid_parameter", "metadata")
    add("request: organizationId missing", "provision_environment", (Request(slug="x"),), "invalid_parameter",
        "organization_id is required")
    add("request: storageLimitMb text", "provision_environment",
        (Request(organizationId=org, slug="x", storageLimitMb="10"),), "invalid_parameter", "storage_limit_mb")
    add("request: storageLimitMb fractional", "provision_environment",
        (Request(organizationId=org, slug="x", storageLimitMb=1.5),), "invalid_parameter", "storage_limit_mb")
    # 0 and 1 are false and true (the one rule for booleans); any other number is not.
    add("request: ifNotExists a number", "provision_environment",
        (Request(organizationId=org, slug="x", ifNotExists=2),), "invalid_parameter", "if_not_exists")
    add("request: envType unknown", "provision_environment",
        (Request(organizationId=org, slug="x", envType="qa"),), "invalid_parameter", "env_type")
    add("request: nested object for slug", "provision_environment",
        (Request(organizationId=org, slug={"a": 1}),), "invalid_parameter", "slug")

    # ---- environment lifecycle -------------------------------------------
    add("get unknown environment", "get_environment", ("no-such-env",), "not_found", "no-such-env")
    add("get NULL environment", "get_environment", (None,), "invalid_parameter", "environment_id is required")
    add("get environment id with a space", "get_environment", ("a b",), "invalid_parameter", "environment_id")
    add("get injection environment id", "get_environment", (INJECTION,), "invalid_parameter", "environment_id")
    add("get environment id of 10000", "get_environment", (LONG,), "invalid_parameter", "environment_id")
    add("get environment id with NUL", "get_environment", ("env\x00",), "invalid_parameter", "environment_id", S)
    add("get environment id a number", "get_environment", (12,), "invalid_parameter", "environment_id", S)
    add("get environment id not UTF-8", "get_environment", (bad_utf8,), "invalid_parameter", "environment_id", S)
    add("get_environment: an argument too many", "get_environment", (env, "x"), "invalid_parameter", "at most", S)
    add("unknown environment status change", "set_environment_status", ("no-such-env", "active"), "not_found",
        "no-such-env")
    add("unknown status", "set_environment_status", (env, "deleted"), "invalid_parameter", "deleted")
    add("NULL status", "set_environment_status", (env, None), "invalid_parameter", "status is required")
    add("empty status", "set_environment_status", (env, ""), "invalid_parameter", "status")
    add("uppercase status", "set_environment_status", (env, "ACTIVE"), "invalid_parameter", "ACTIVE")
    add("status reason of 1001", "set_environment_status", (env, "suspended", "r" * 1001), "invalid_parameter",
        "reason")
    add("active to active", "set_environment_status", (env, "active"), "invalid_transition", "active")
    add("archived to active", "set_environment_status", (arch, "active"), "invalid_transition", "archived")
    add("provisioning to suspended", "set_environment_status", (prov, "suspended"), "invalid_transition",
        "suspended")
    add("provisioning to active without a database", "set_environment_status", (prov, "active"), "conflict",
        "not provisioned")
    add("status of environment id with a space", "set_environment_status", ("a b", "active"),
        "invalid_parameter", "environment_id")
    add("archive the default", "archive_environment", (f["default_env"], True), "conflict", "default")
    add("archive a protected one without force", "archive_environment", (prod,), "conflict", "force")
    add("archive twice", "archive_environment", (arch, True), "invalid_transition", "archived")
    add("archive unknown", "archive_environment", ("no-such-env",), "not_found", "no-such-env")
    add("archive NULL", "archive_environment", (None,), "invalid_parameter", "environment_id is required")
    add("archive force 'yes'", "archive_environment", (prod, "yes"), "invalid_parameter", "force", S)
    add("drop the database of an active environment", "drop_environment_database", (env, True),
        "invalid_transition", "only an archived environment")
    add("drop within the grace period", "drop_environment_database", (arch,), "invalid_transition",
        "drop_grace_seconds")
    add("drop unknown", "drop_environment_database", ("no-such-env", True), "not_found", "no-such-env")
    add("drop NULL", "drop_environment_database", (None,), "invalid_parameter", "environment_id is required")
    add("drop malformed id", "drop_environment_database", (INJECTION, True), "invalid_parameter",
        "environment_id")
    add("drop force 'yes'", "drop_environment_database", (arch, "yes"), "invalid_parameter", "force", S)
    add("config: negative drop grace", "config", ("drop_grace_seconds", "-1"), "invalid_parameter",
        "drop_grace_seconds")
    # ---- deprovision_organization, if_not_exists ----------------------------
    add("deprovision unknown", "deprovision_organization", ("01890a5d-ac96-774b-bcce-b302099a8057", True),
        "not_found", "organization_id")
    add("deprovision NULL", "deprovision_organization", (None,), "invalid_parameter",
        "organization_id is required")
    add("deprovision injection id", "deprovision_organization", (INJECTION, True), "invalid_parameter",
        "organization_id")
    add("deprovision an environment id", "deprovision_organization", (env, True), "not_found", "organization_id")
    add("deprovision force 'yes'", "deprovision_organization", (org, "yes"), "invalid_parameter", "force", S)
    add("deprovision force 2", "deprovision_organization", (org, 2), "invalid_parameter", "force", S)
    add("deprovision force 0.5", "deprovision_organization", (org, 0.5), "invalid_parameter", "force", S)
    add("deprovision request with an unknown key", "deprovision_organization",
        (Request(organizationId=org, cascade=True),), "invalid_parameter", "cascade")
    extra_argument("deprovision_organization", (org, True))
    add("if_not_exists with another id", "provision_organization",
        ("acme", "Acme", "01890a5d-ac96-774b-bcce-b302099a8057", None, "turso", None, None, True),
        "already_exists", "not by the given id")
    add("if_not_exists 'yes'", "provision_organization",
        ("acme", "Acme", None, None, "turso", None, None, "yes"), "invalid_parameter", "if_not_exists", S)
    add("if_not_exists as a request string", "provision_organization",
        (Request(slug="acme", name="Acme", ifNotExists="true"),), "invalid_parameter", "if_not_exists")
    # Whole-number REALs are integers (better-sqlite3 binds every number as one); fractions are not.
    add("config: fractional seconds as a REAL", "config", ("rotation_grace_seconds", 1.5), "invalid_parameter",
        "rotation_grace_seconds", S)
    add("config: a number for a text setting", "config", ("default_region", 5), "invalid_parameter",
        "value must be text", S)
    add("check repair 1.5", "check", (1.5,), "invalid_parameter", "repair", S)
    add("claim 2.5 jobs", "claim_provisioning_jobs", ("turso", 2.5), "invalid_parameter", "max_jobs", S)
    add("claim 1e300 jobs", "claim_provisioning_jobs", ("turso", 1e300), "invalid_parameter", "max_jobs", S)
    add("config: unknown connect restriction", "config", ("restrict_server_connect", "some"),
        "invalid_parameter", "restrict_server_connect")
    add("retry an active environment", "retry_environment", (env,), "invalid_transition", "active")
    add("retry a provisioning environment", "retry_environment", (prov,), "invalid_transition", "provisioning")
    add("retry an archived environment", "retry_environment", (arch,), "invalid_transition", "archived")
    add("retry unknown", "retry_environment", ("no-such-env",), "not_found", "no-such-env")
    add("retry injection id", "retry_environment", (INJECTION,), "invalid_parameter", "environment_id")
    add("default to unknown", "set_default_environment", ("no-such-env",), "not_found", "no-such-env")
    add("default to a provisioning one", "set_default_environment", (prov,), "conflict", "provisioning")
    add("default to an archived one", "set_default_environment", (arch,), "conflict", "archived")
    add("default to NULL", "set_default_environment", (None,), "invalid_parameter", "environment_id is required")
    add("default id with quotes", "set_default_environment", (QUOTES,), "invalid_parameter", "environment_id")

    # ---- trials, storage limits and usage (policies.cpp, usage.cpp) -------
    add("extend a development environment", "extend_environment_trial", (env, 5), "conflict", "not a trial")
    add("extend by 0 days", "extend_environment_trial", (env, 0), "invalid_parameter", "days")
    add("extend by -3 days", "extend_environment_trial", (env, -3), "invalid_parameter", "days")
    add("extend by 100000 days", "extend_environment_trial", (env, 100000), "invalid_parameter", "days")
    add("extend by NULL days", "extend_environment_trial", (env, None), "invalid_parameter", "days is required")
    add("extend by 1.5 days", "extend_environment_trial", (env, 1.5), "invalid_parameter", "days", S)
    add("extend unknown", "extend_environment_trial", ("no-such-env", 1), "not_found", "no-such-env")
    add("extend injection id", "extend_environment_trial", (INJECTION, 1), "invalid_parameter", "environment_id")
    add("type of unknown", "set_environment_type", ("no-such-env", "trial"), "not_found", "no-such-env")
    add("type default", "set_environment_type", (env, "default"), "invalid_parameter", "env_type")
    add("type unknown", "set_environment_type", (env, "staging"), "invalid_parameter", "env_type")
    add("type NULL", "set_environment_type", (env, None), "invalid_parameter", "env_type is required")
    add("type of the default environment", "set_environment_type", (f["default_env"], "trial"), "conflict",
        "default")
    add("type of an archived environment", "set_environment_type", (arch, "trial"), "invalid_transition",
        "archived")
    add("provision expires_at for a development environment", "provision_environment",
        (Request(organizationId=org, slug="x1", envType="development", driver="turso",
                 expiresAt="2099-01-01T00:00:00.000Z"),), "invalid_parameter", "expires_at")
    add("provision a trial that expired", "provision_environment",
        (Request(organizationId=org, slug="x2", envType="trial", driver="turso",
                 expiresAt="2001-01-01T00:00:00.000Z"),), "invalid_parameter", "expires_at")
    add("enforce_policies: an argument too many", "enforce_policies", ("surplus",), "invalid_parameter",
        "at most", S)
    add("enforce_policies: an argument it does not take", "enforce_policies", ("surplus",), HOST,
        "does not exist", P)
    add("limit of 0 MB", "set_storage_limit", (env, 0), "invalid_parameter", "megabytes")
    add("limit of -1 MB", "set_storage_limit", (env, -1), "invalid_parameter", "megabytes")
    add("limit of 2^62 MB", "set_storage_limit", (env, 1 << 62), "invalid_parameter", "megabytes")
    add("limit 'ten'", "set_storage_limit", (env, "ten"), "invalid_parameter", "megabytes", S)
    add("limit of unknown", "set_storage_limit", ("no-such-env", 5), "not_found", "no-such-env")
    add("limit of an archived environment", "set_storage_limit", (arch, 5), "invalid_transition", "archived")
    add("limit NULL id", "set_storage_limit", (None, 5), "invalid_parameter", "environment_id is required")
    add("measure a turso database", "measure_environment_usage", (env,), "conflict", "report_environment_usage")
    add("measure unknown", "measure_environment_usage", ("no-such-env",), "not_found", "no-such-env")
    add("measure injection id", "measure_environment_usage", (INJECTION,), "invalid_parameter",
        "environment_id")
    add("report negative bytes", "report_environment_usage", (env, -1), "invalid_parameter", "bytes")
    add("report NULL bytes", "report_environment_usage", (env, None), "invalid_parameter", "bytes is required")
    add("report 'many' bytes", "report_environment_usage", (env, "many"), "invalid_parameter", "bytes", S)
    add("report for unknown", "report_environment_usage", ("no-such-env", 5), "not_found", "no-such-env")

    # ---- members ---------------------------------------------------------
    add("unknown role", "add_environment_member", (env, "user-1", "owner"), "invalid_parameter", "role")
    add("empty role", "add_environment_member", (env, "user-1", ""), "invalid_parameter", "role")
    add("uppercase role", "add_environment_member", (env, "user-1", "ENV_USER"), "invalid_parameter", "role")
    add("NULL role", "add_environment_member", (env, "user-1", None), "invalid_parameter", "role is required")
    add("empty user id", "add_environment_member", (env, "", "env_user"), "invalid_parameter", "user_id")
    add("user id with spaces", "add_environment_member", (env, "a user", "env_user"), "invalid_parameter", "user_id")
    add("user id of 257", "add_environment_member", (env, "u" * 257, "env_user"), "invalid_parameter", "user_id")
    add("injection user id", "add_environment_member", (env, INJECTION, "env_user"), "invalid_parameter", "user_id")
    add("user id with NUL", "add_environment_member", (env, "u\x00", "env_user"), "invalid_parameter", "user_id", S)
    add("user id a number", "add_environment_member", (env, 7, "env_user"), "invalid_parameter", "user_id", S)
    add("member of unknown environment", "add_environment_member", ("no-such-env", "u1", "env_user"), "not_found",
        "no-such-env")
    add("member of an archived environment", "add_environment_member", (arch, "u1", "env_user"), "conflict",
        "archived")
    add("remove from unknown environment", "remove_environment_member", ("no-such-env", "u1"), "not_found",
        "no-such-env")
    add("remove bad user id", "remove_environment_member", (env, "a b"), "invalid_parameter", "user_id")
    add("remove NULL user", "remove_environment_member", (env, None), "invalid_parameter", "user_id is required")
    add("remove bad environment id", "remove_environment_member", ("a b", "u1"), "invalid_parameter",
        "environment_id")
    add("role in unknown environment", "environment_role", ("no-such-env", "u1"), "not_found", "no-such-env")
    add("role of bad user id", "environment_role", (env, "-u"), "invalid_parameter", "user_id")
    add("role with NULL environment", "environment_role", (None, "u1"), "invalid_parameter",
        "environment_id is required")
    add("role of user id not UTF-8", "environment_role", (env, bad_utf8), "invalid_parameter", "user_id", S)
    add("unknown permission", "check_environment_access", (env, "user-1", "fly"), "invalid_parameter", "permission")
    add("empty permission", "check_environment_access", (env, "user-1", ""), "invalid_parameter", "permission")
    add("NULL permission", "check_environment_access", (env, "user-1", None), "invalid_parameter",
        "permission is required")
    add("access of bad user id", "check_environment_access", (env, "a b", "read"), "invalid_parameter", "user_id")
    add("access in unknown environment", "check_environment_access", ("no-such-env", "u1", "read"), "not_found",
        "no-such-env")

    # ---- credentials -----------------------------------------------------
    add("issue for unknown database", "issue_credential", ("no-such-db", "readwrite", "t"), "not_found", "no-such-db")
    add("issue for NULL database", "issue_credential", (None,), "invalid_parameter", "database_id is required")
    add("issue for database id with a space", "issue_credential", ("a b", "readwrite", "t"), "invalid_parameter",
        "database_id")
    add("unknown scope", "issue_credential", (db, "root", "t"), "invalid_parameter", "scope")
    add("empty scope", "issue_credential", (db, "", "t"), "invalid_parameter", "scope")
    add("capitalised scope", "issue_credential", (db, "ReadWrite", "t"), "invalid_parameter", "scope")
    add("oversized token", "issue_credential", (db, "readonly", "t" * 5000), "invalid_parameter", "token")
    add("empty token", "issue_credential", (db, "readonly", ""), "invalid_parameter", "token")
    add("token with NUL", "issue_credential", (db, "readonly", "t\x00t"), "invalid_parameter", "token", S)
    add("token a blob", "issue_credential", (db, "readonly", b"tok"), "invalid_parameter", "token", S)
    add("expiry in the past", "issue_credential", (db, "readonly", "t", "2000-01-01T00:00:00Z"),
        "invalid_parameter", "expires_at")
    add("expiry not a time", "issue_credential", (db, "readonly", "t", "next tuesday"), "invalid_parameter",
        "expires_at", S)
    add("expiry a number", "issue_credential", (db, "readonly", "t", 1700000000), "invalid_parameter",
        "expires_at", S)
    add("expiry of month 13", "issue_credential", (db, "readonly", "t", "2999-13-01T00:00:00Z"),
        "invalid_parameter", "expires_at", S)
    add("issue for an archived environment", "issue_credential", (arch_db, "readonly", "t"), "conflict", "archived")
    add("turso credential without a token", "issue_credential", (f["prov_db"], "readonly"), "invalid_parameter",
        "token")
    add("request: issue, scope a number", "issue_credential", (Request(databaseId=db, scope=5),),
        "invalid_parameter", "scope")
    add("request: issue, expiresAt a number", "issue_credential",
        (Request(databaseId=db, token="t", expiresAt=5),), "invalid_parameter", "expires_at")
    add("request: issue, unknown key", "issue_credential", (Request(databaseId=db, ttl=5),), "invalid_parameter",
        "ttl")
    add("rotate with no active credential", "rotate_credential", (f["prov_db"], "readonly", None, "tok"),
        "not_found", "readonly")
    add("rotate unknown database", "rotate_credential", ("no-such-db",), "not_found", "no-such-db")
    add("rotate NULL database", "rotate_credential", (None,), "invalid_parameter", "database_id is required")
    add("rotate injection database", "rotate_credential", (INJECTION,), "invalid_parameter", "database_id")
    add("rotate unknown scope", "rotate_credential", (db, "superuser"), "invalid_parameter", "scope")
    add("rotate negative grace", "rotate_credential", (db, "readwrite", Seconds(-1), "t"), "invalid_parameter",
        "grace")
    add("rotate grace of 300 years", "rotate_credential", (db, "readwrite", Seconds(300 * 366 * 86400), "t"),
        "invalid_parameter", "grace")
    add("rotate grace in words", "rotate_credential", (db, "readwrite", "soon", "t"), "invalid_parameter",
        "grace", S)
    add("rotate grace fractional", "rotate_credential", (db, "readwrite", 1.5, "t"), "invalid_parameter",
        "grace", S)
    add("rotate empty token", "rotate_credential", (db, "readwrite", None, ""), "invalid_parameter", "token")
    add("rotate on an archived environment", "rotate_credential", (arch_db, "readwrite", None, "t"), "conflict",
        "archived")
    add("request: rotate, grace text", "rotate_credential", (Request(databaseId=db, grace="1 day"),),
        "invalid_parameter", "grace")
    add("revoke unknown credential", "revoke_credential", ("no-such-cred",), "not_found", "no-such-cred")
    add("revoke twice", "revoke_credential", (revoked,), "invalid_transition", "revoked")
    add("revoke NULL", "revoke_credential", (None,), "invalid_parameter", "credential_id is required")
    add("revoke injection id", "revoke_credential", (INJECTION,), "invalid_parameter", "credential_id")
    add("reveal unknown credential", "reveal_credential", ("no-such-cred",), "not_found", "no-such-cred")
    add("reveal a revoked credential", "reveal_credential", (revoked,), "conflict", "revoked")
    add("reveal NULL", "reveal_credential", (None,), "invalid_parameter", "credential_id is required")
    add("reveal id with quotes", "reveal_credential", (QUOTES,), "invalid_parameter", "credential_id")
    add("rewrap to an unloaded key", "rewrap_credentials", ("no-such-key",), "key_unavailable", "no-such-key")
    add("rewrap to a key id of 200", "rewrap_credentials", ("k" * 200,), "invalid_parameter", "kms_key_id")
    add("rewrap to an injection key id", "rewrap_credentials", (INJECTION,), "key_unavailable", "kms_key_id")
    add("rewrap key id with NUL", "rewrap_credentials", ("k1\x00",), "invalid_parameter", "kms_key_id", S)

    # ---- context and routing --------------------------------------------
    add("activate unknown environment", "set_active_environment", ("no-such-env",), "not_found", "no-such-env")
    add("activate NULL", "set_active_environment", (None,), "invalid_parameter", "environment_id is required")
    add("activate bad environment id", "set_active_environment", ("a b",), "invalid_parameter", "environment_id")
    add("activate for a non-member", "set_active_environment", (env, "stranger"), "permission_denied", "stranger")
    add("activate for a bad user id", "set_active_environment", (env, "a b"), "invalid_parameter", "user_id")
    add("activate a provisioning environment", "set_active_environment", (prov,), "conflict", "provisioning")
    add("activate an archived environment", "set_active_environment", (arch,), "conflict", "archived")
    add("resolve unknown environment", "resolve_environment", ("no-such-env",), "not_found", "no-such-env")
    add("resolve NULL", "resolve_environment", (None,), "invalid_parameter", "environment_id is required")
    add("resolve injection id", "resolve_environment", (INJECTION,), "invalid_parameter", "environment_id")
    add("resolve unknown scope", "resolve_environment", (env, "root"), "invalid_parameter", "scope")
    add("resolve a scope without a credential", "resolve_environment", (env, "readonly"), "not_found", "readonly")
    add("resolve a provisioning environment", "resolve_environment", (prov,), "conflict", "provisioning")
    add("resolve an archived environment", "resolve_environment", (arch,), "conflict", "archived")
    add("resolve scope not UTF-8", "resolve_environment", (env, bad_utf8), "invalid_parameter", "scope", S)

    # ---- data plane (Postgres: in an envdb_data database, see below) -----
    add("init schema in the control database", "init_environment_schema", ("env-1",), "conflict",
        "control-plane", S)
    for case in data_plane_cases():
        add(*case, S)

    # ---- outbox ----------------------------------------------------------
    add("claim for unknown driver", "claim_provisioning_jobs", ("ftp",), "invalid_parameter", "driver")
    add("claim for NULL driver", "claim_provisioning_jobs", (None,), "invalid_parameter", "driver is required")
    add("claim for empty driver", "claim_provisioning_jobs", ("",), "invalid_parameter", "driver")
    add("claim zero jobs", "claim_provisioning_jobs", ("turso", 0), "invalid_parameter", "max_jobs")
    add("claim -5 jobs", "claim_provisioning_jobs", ("turso", -5), "invalid_parameter", "max_jobs")
    add("claim 1001 jobs", "claim_provisioning_jobs", ("turso", 1001), "invalid_parameter", "max_jobs")
    add("claim 2^62 jobs", "claim_provisioning_jobs", ("turso", 2 ** 62), "invalid_parameter", "max_jobs")
    add("claim ten jobs in words", "claim_provisioning_jobs", ("turso", "ten"), "invalid_parameter", "max_jobs", S)
    add("claim worker of 257", "claim_provisioning_jobs", ("turso", 1, "w" * 257), "invalid_parameter", "worker")
    add("claim worker with NUL", "claim_provisioning_jobs", ("turso", 1, "w\x00"), "invalid_parameter", "worker", S)
    add("complete unknown job", "complete_provisioning_job", ("no-such-job",), "not_found", "no-such-job")
    add("complete NULL job", "complete_provisioning_job", (None,), "invalid_parameter", "job_id is required")
    add("complete job id with a space", "complete_provisioning_job", ("a b",), "invalid_parameter", "job_id")
    add("complete a pending job", "complete_provisioning_job", (pending, "libsql://x", {"readwrite": "t"}),
        "invalid_transition", "pending")
    add("complete a done job", "complete_provisioning_job", (done, "libsql://x", {"readwrite": "t"}),
        "invalid_transition", "done")
    add("complete a turso job without tokens", "complete_provisioning_job", (running, "libsql://x"),
        "invalid_parameter", "tokens")
    add("complete with tokens an array", "complete_provisioning_job", (running, "libsql://x", ["t"]),
        "invalid_parameter", "tokens")
    add("complete with tokens a JSON string", "complete_provisioning_job", (running, "libsql://x", '"t"'),
        "invalid_parameter", "tokens")
    add("complete with tokens not JSON", "complete_provisioning_job", (running, "libsql://x", "{readwrite: t}"),
        "invalid_parameter", "tokens", S)
    add("complete with an unknown scope", "complete_provisioning_job", (running, "libsql://x", {"root": "t"}),
        "invalid_parameter", "root")
    add("complete with a number token", "complete_provisioning_job", (running, "libsql://x", {"readwrite": 5}),
        "invalid_parameter", "tokens.readwrite")
    add("complete with an empty token", "complete_provisioning_job", (running, "libsql://x", {"readwrite": ""}),
        "invalid_parameter", "tokens.readwrite")
    add("complete with a null token", "complete_provisioning_job", (running, "libsql://x", {"admin": None}),
        "invalid_parameter", "tokens.admin")
    add("complete with a token of 5000", "complete_provisioning_job",
        (running, "libsql://x", {"readwrite": "t" * 5000}), "invalid_parameter", "tokens.readwrite")
    add("complete with an empty URL", "complete_provisioning_job", (running, "", {"readwrite": "t"}),
        "invalid_parameter", "database_url")
    add("complete with a URL of 5000", "complete_provisioning_job", (running, "u" * 5000, {"readwrite": "t"}),
        "invalid_parameter", "database_url")
    add("fail unknown job", "fail_provisioning_job", ("no-such-job", "boom"), "not_found", "no-such-job")
    add("fail NULL job", "fail_provisioning_job", (None, "boom"), "invalid_parameter", "job_id is required")
    add("fail with NULL error", "fail_provisioning_job", (running, None), "invalid_parameter", "error is required")
    add("fail with an empty error", "fail_provisioning_job", (running, ""), "invalid_parameter", "error")
    add("fail with retry 'yes'", "fail_provisioning_job", (running, "boom", "yes"), "invalid_parameter", "retry", S)
    add("fail with retry 7", "fail_provisioning_job", (running, "boom", 7), "invalid_parameter", "retry", S)
    add("fail a pending job", "fail_provisioning_job", (pending, "boom"), "invalid_transition", "pending")
    add("fail a done job", "fail_provisioning_job", (done, "boom"), "invalid_transition", "done")
    add("fail with an error of 2 MiB", "fail_provisioning_job", (running, HUGE * 2), "invalid_parameter", "error")

    # ---- database hosts ------------------------------------------------------
    add("host: NULL name", "add_database_host", (None, "eu", "db1.internal"), "invalid_parameter",
        "name is required")
    add("host: uppercase name", "add_database_host", ("DB1", "eu", "db1.internal"), "invalid_parameter", "name")
    add("host: injection name", "add_database_host", (INJECTION, "eu", "db1.internal"), "invalid_parameter",
        "name")
    add("host: empty region", "add_database_host", ("db1", "", "db1.internal"), "invalid_parameter", "region")
    add("host: NULL region", "add_database_host", ("db1", None, "db1.internal"), "invalid_parameter",
        "region is required")
    add("host: empty host", "add_database_host", ("db1", "eu", ""), "invalid_parameter", "host")
    add("host: newline in host", "add_database_host", ("db1", "eu", "db1\nhost=evil"), "invalid_parameter",
        "host")
    add("host: port 0", "add_database_host", ("db1", "eu", "db1.internal", 0), "invalid_parameter", "port")
    add("host: port 70000", "add_database_host", ("db1", "eu", "db1.internal", 70000), "invalid_parameter",
        "port")
    add("host: port in words", "add_database_host", ("db1", "eu", "db1.internal", "five"), "invalid_parameter",
        "port", S)
    add("host: username of 64", "add_database_host", ("db1", "eu", "db1.internal", 5432, "u" * 64),
        "invalid_parameter", "username")
    add("host: empty password", "add_database_host", ("db1", "eu", "db1.internal", 5432, "postgres", ""),
        "invalid_parameter", "password")
    add("host: empty dbname", "add_database_host", ("db1", "eu", "db1.internal", 5432, "postgres", None, ""),
        "invalid_parameter", "dbname")
    add("host: request without region", "add_database_host", (Request(name="db1", host="db1.internal"),),
        "invalid_parameter", "region")
    add("host: remove unknown", "remove_database_host", ("no-such-host",), "not_found", "no-such-host")
    add("host: remove NULL", "remove_database_host", (None,), "invalid_parameter", "name is required")
    extra_argument("list_database_hosts", ())
    add("host: capacity -1", "add_database_host", ("db1", "eu", "db1.internal", 5432, "postgres", None, None, -1),
        "invalid_parameter", "capacity")
    add("host: verify 'maybe'", "add_database_host", ("db1", "eu", "db1.internal", 5432, "postgres", None, None,
                                                      None, "maybe"), "invalid_parameter", "verify", S)
    # Postgres: the connection test fails (nothing listens on port 1); SQLite:
    # the host cannot test a connection. Both name verify, neither writes.
    add("host: add an unreachable host", "add_database_host", ("db1", "eu", "127.0.0.1", 1, "postgres", "pw"),
        "invalid_parameter", "verify")
    add("host: update NULL", "update_database_host", (None, "postgresql://db1.internal"), "invalid_parameter",
        "name is required")
    add("host: update unknown", "update_database_host", ("no-such-host", "postgresql://db1.internal"), "not_found",
        "no-such-host")
    add("host: update nothing", "update_database_host", ("no-such-host",), "not_found", "no-such-host")
    add("host: update url without scheme", "update_database_host", ("no-such-host", "db1.internal:5432"),
        "invalid_parameter", "url")
    add("host: update url with a password", "update_database_host", ("no-such-host", "postgresql://u:pw@db1/x"),
        "invalid_parameter", "url")
    add("host: update url port 0", "update_database_host", ("no-such-host", "postgresql://db1:0/x"),
        "invalid_parameter", "port")
    add("host: update url port in words", "update_database_host", ("no-such-host", "postgresql://db1:five"),
        "invalid_parameter", "url")
    add("host: update url with a query", "update_database_host", ("no-such-host", "postgresql://db1/x?sslmode=disable"),
        "invalid_parameter", "url")
    add("host: update url without host", "update_database_host", ("no-such-host", "postgresql:///x"),
        "invalid_parameter", "url")
    add("host: update newline in url", "update_database_host", ("no-such-host", "postgresql://a\nhost=evil"),
        "invalid_parameter", "url")
    add("host: update empty password", "update_database_host", ("no-such-host", None, ""),
        "invalid_parameter", "password")
    add("host: update capacity -2", "update_database_host", ("no-such-host", None, None, None, -2),
        "invalid_parameter", "capacity")
    add("host: update empty region", "update_database_host", ("no-such-host", None, None, ""),
        "invalid_parameter", "region")
    add("host: update verify 'maybe'", "update_database_host", ("no-such-host", None, None, None, None, "maybe"),
        "invalid_parameter", "verify", S)
    add("host: update request without name", "update_database_host", (Request(capacity=3),),
        "invalid_parameter", "name")
    add("host: drain NULL", "drain_database_host", (None,), "invalid_parameter", "name is required")
    add("host: drain unknown", "drain_database_host", ("no-such-host",), "not_found", "no-such-host")
    add("host: drain 'maybe'", "drain_database_host", ("no-such-host", "maybe"), "invalid_parameter", "drained", S)
    add("host: postgres database in a region without host", "provision_environment",
        (org, "nohost", None, None, "nowhere", "postgres"), "invalid_parameter", "region 'nowhere'")
    add("config: control character in local_server_regions", "config", ("local_server_regions", "eu\tus"),
        "invalid_parameter", "local_server_regions")

    # ---- the invariant checker ---------------------------------------------
    add("check with repair 'yes'", "check", ("yes",), "invalid_parameter", "repair", S)
    add("check with repair 7", "check", (7,), "invalid_parameter", "repair", S)
    add("check with repair a blob", "check", (b"\x01",), "invalid_parameter", "repair", S)
    extra_argument("check", (False,))

    # ---- v4 compatibility ------------------------------------------------
    add("tenant database of unknown organization", "provision_tenant_database", ("no-such-org",), "not_found",
        "no-such-org")
    add("tenant database of NULL organization", "provision_tenant_database", (None,), "invalid_parameter",
        "organization_id is required")
    add("tenant database of bad organization id", "provision_tenant_database", (INJECTION,), "invalid_parameter",
        "organization_id")
    add("tenant database in an empty region", "provision_tenant_database", (org, ""), "invalid_parameter", "region")
    add("injection legacy table", "migrate_legacy_tenant_databases", ("x; drop table y",), "invalid_parameter",
        "legacy_table")
    add("legacy table a.b.c", "migrate_legacy_tenant_databases", ("a.b.c",), "invalid_parameter", "legacy_table")
    add("empty legacy table", "migrate_legacy_tenant_databases", ("",), "invalid_parameter", "legacy_table")
    add("legacy table that does not exist", "migrate_legacy_tenant_databases", ("no_such_table",), "not_found",
        "no_such_table")
    add("legacy table in an unknown schema", "migrate_legacy_tenant_databases", ("nowhere.t",), "not_found",
        "nowhere.t")
    add("legacy table that is not v4", "migrate_legacy_tenant_databases", ("sys_config",), "invalid_parameter",
        "lacks", S)
    add("legacy table that is not v4", "migrate_legacy_tenant_databases", ("envdb.sys_config",),
        "invalid_parameter", "lacks", P)
    add("legacy dry_run 'yes'", "migrate_legacy_tenant_databases", (None, "yes"), "invalid_parameter", "dry_run", S)

    # ---- hostnames and slugs -------------------------------------------------
    add("hostname: NULL environment", "add_environment_hostname", (None, "a.example"), "invalid_parameter",
        "environment_id is required")
    add("hostname: unknown environment", "add_environment_hostname", ("no-such-env", "a.example"), "not_found",
        "no-such-env")
    add("hostname: injection environment", "add_environment_hostname", (INJECTION, "a.example"),
        "invalid_parameter", "environment_id")
    add("hostname: NULL hostname", "add_environment_hostname", (env, None), "invalid_parameter",
        "hostname is required")
    for label, bad in (("empty", ""), ("with a port", "a.example:8080"), ("with a scheme", "https://a.example"),
                       ("with a path", "a.example/x"), ("with a space", "a example"),
                       ("leading hyphen", "-a.example"), ("trailing hyphen", "a-.example"),
                       ("empty label", "a..example"), ("label of 64", "l" * 64 + ".example"),
                       ("of 254", ("a" * 63 + ".") * 3 + "b" * 62), ("underscore", "a_b.example"),
                       ("not ASCII", "caf\u00e9.example"), ("injection", INJECTION), ("of 10000", LONG)):
        add(f"hostname: {label}", "add_environment_hostname", (env, bad), "invalid_parameter", "hostname")
    add("hostname: with NUL", "add_environment_hostname", (env, "a\x00.example"), "invalid_parameter",
        "hostname", S)
    add("hostname: held by another environment", "add_environment_hostname", (prod, "DEV.acme.example."),
        "already_exists", "dev.acme.example")
    add("hostname: an archived environment", "add_environment_hostname", (arch, "old.acme.example"), "conflict",
        "archived")
    add("hostname: remove unknown", "remove_environment_hostname", ("nobody.example",), "not_found",
        "nobody.example")
    add("hostname: remove NULL", "remove_environment_hostname", (None,), "invalid_parameter",
        "hostname is required")
    add("hostname: remove with a port", "remove_environment_hostname", ("dev.acme.example:80",),
        "invalid_parameter", "hostname")
    add("hostname: resolve unknown", "resolve_hostname", ("nobody.example",), "not_found", "nobody.example")
    add("hostname: resolve NULL", "resolve_hostname", (None,), "invalid_parameter", "hostname is required")
    add("hostname: resolve injection", "resolve_hostname", (INJECTION,), "invalid_parameter", "hostname")
    add("hostname: resolve unknown scope", "resolve_hostname", ("dev.acme.example", "root"), "invalid_parameter",
        "scope")
    add("hostname: resolve unknown scope of an unknown name", "resolve_hostname", ("nobody.example", "root"),
        "invalid_parameter", "scope")
    add("hostname: resolve a scope without a credential", "resolve_hostname", ("dev.acme.example", "readonly"),
        "not_found", "readonly")
    extra_argument("resolve_hostname", ("dev.acme.example", "readwrite"))
    add("find: unknown environment slug", "find_environment", ("acme", "nope"), "not_found", "nope")
    add("find: unknown organization slug", "find_environment", ("nope", "dev"), "not_found", "nope")
    add("find: NULL organization slug", "find_environment", (None, "dev"), "invalid_parameter",
        "organization_slug is required")
    add("find: NULL environment slug", "find_environment", ("acme", None), "invalid_parameter",
        "environment_slug is required")
    add("find: uppercase organization slug", "find_environment", ("ACME", "dev"), "invalid_parameter",
        "organization_slug")
    add("find: injection environment slug", "find_environment", ("acme", INJECTION), "invalid_parameter",
        "environment_slug")
    add("find: environment slug of 10000", "find_environment", ("acme", LONG), "invalid_parameter",
        "environment_slug")

    # ---- events ------------------------------------------------------------------
    add("events: cursor -1", "events_since", (-1,), "invalid_parameter", "cursor")
    add("events: NULL cursor", "events_since", (None,), "invalid_parameter", "cursor")
    add("events: cursor in words", "events_since", ("ten",), "invalid_parameter", "cursor", S)
    add("events: max_events 0", "events_since", (0, 0), "invalid_parameter", "max_events")
    add("events: max_events 1001", "events_since", (0, 1001), "invalid_parameter", "max_events")
    add("events: max_events -5", "events_since", (0, -5), "invalid_parameter", "max_events")
    extra_argument("events_since", (0, 10))
    # ---- copies and backups (tenancy/copy, tenancy/backups) ---------------
    other = f["other_org_env"]
    add("copy NULL source", "copy_environment", (None, env), "invalid_parameter",
        "source_environment_id is required")
    add("copy NULL target", "copy_environment", (env, None), "invalid_parameter",
        "target_environment_id is required")
    add("copy unknown source", "copy_environment", ("no-such-env", env), "not_found", "source_environment_id")
    add("copy unknown target", "copy_environment", (env, "no-such-env"), "not_found", "target_environment_id")
    add("copy injection target", "copy_environment", (env, INJECTION), "invalid_parameter",
        "target_environment_id")
    add("copy into itself", "copy_environment", (env, env), "invalid_parameter", "the source itself")
    add("copy across organizations", "copy_environment", (env, other), "invalid_parameter",
        "copies stay inside one organization")
    add("copy from an archived source", "copy_environment", (arch, env), "invalid_transition",
        "source_environment_id")
    add("copy into a provisioning target", "copy_environment", (env, prov), "invalid_transition",
        "target_environment_id")
    add("copy into an archived target", "copy_environment", (env, arch, "full", True), "invalid_transition",
        "target_environment_id")
    add("copy bad mode", "copy_environment", (env, prov, "data"), "invalid_parameter", "mode")
    add("copy empty mode", "copy_environment", (env, prov, ""), "invalid_parameter", "mode")
    add("copy force 'yes'", "copy_environment", (env, prov, "full", "yes"), "invalid_parameter", "force", S)
    extra_argument("copy_environment", (env, prov, "full", False))
    add("reset NULL environment", "reset_environment", (None,), "invalid_parameter", "environment_id is required")
    add("reset unknown environment", "reset_environment", ("no-such-env",), "not_found", "environment_id")
    add("reset an archived environment", "reset_environment", (arch, True), "invalid_transition", "archived")
    add("reset a provisioning environment", "reset_environment", (prov,), "invalid_transition", "provisioning")
    extra_argument("reset_environment", (env, False))
    add("backup NULL environment", "backup_environment", (None,), "invalid_parameter",
        "environment_id is required")
    add("backup unknown environment", "backup_environment", ("no-such-env",), "not_found", "environment_id")
    add("backup an archived environment", "backup_environment", (arch,), "invalid_transition", "archived")
    add("backup label of 10000", "backup_environment", (env, LONG), "invalid_parameter", "label")
    extra_argument("backup_environment", (env, None))
    add("list backups NULL environment", "list_environment_backups", (None,), "invalid_parameter",
        "environment_id is required")
    add("list backups unknown environment", "list_environment_backups", ("no-such-env",), "not_found",
        "environment_id")
    extra_argument("list_environment_backups", (env,))
    add("restore NULL backup", "restore_environment", (env, None), "invalid_parameter", "backup_id is required")
    add("restore unknown backup", "restore_environment", (env, "no-such-backup"), "not_found", "backup_id")
    add("restore injection backup", "restore_environment", (env, INJECTION), "invalid_parameter", "backup_id")
    add("restore unknown environment", "restore_environment", ("no-such-env", "no-such-backup"), "not_found",
        "environment_id")
    extra_argument("restore_environment", (env, "no-such-backup", False))
    add("delete NULL backup", "delete_environment_backup", (None,), "invalid_parameter", "backup_id is required")
    add("delete unknown backup", "delete_environment_backup", ("no-such-backup",), "not_found", "backup_id")
    add("delete injection backup", "delete_environment_backup", (INJECTION,), "invalid_parameter", "backup_id")
    extra_argument("delete_environment_backup", ("no-such-backup",))
    # ... if_not_exists, expires_at, then copy_from and copy_mode.
    provision = (org, "copied", None, None, None, None, None, None, None, None, None, None, False, None)
    add("provision copy_mode without copy_from", "provision_environment", provision + (None, "full"),
        "invalid_parameter", "copy_mode")
    add("provision copy_from unknown", "provision_environment", provision + ("no-such-env", None),
        "not_found", "copy_from")
    add("provision copy_from archived", "provision_environment", provision + (arch, None),
        "invalid_transition", "copy_from")
    add("provision copy_from of another organization", "provision_environment", provision + (other, None),
        "invalid_parameter", "copy_from")
    add("provision bad copy_mode", "provision_environment", provision + (env, "data"), "invalid_parameter",
        "copy_mode")
    # ---- moves between database hosts (tenancy/move) ------------------------------
    add("move NULL environment", "move_environment", (None, "second"), "invalid_parameter",
        "environment_id is required")
    add("move unknown environment", "move_environment", ("no-such-env", "second"), "not_found", "environment_id")
    add("move injection environment", "move_environment", (INJECTION, "second"), "invalid_parameter",
        "environment_id")
    add("move NULL host", "move_environment", (env, None), "invalid_parameter", "host_id")
    add("move host of 100", "move_environment", (env, "h" * 100), "invalid_parameter", "host_id")
    # The turso (and sqlite) drivers have no database hosts.
    add("move a turso environment", "move_environment", (env, "second"), "conflict", "uses driver turso")
    add("move an archived environment", "move_environment", (arch, "second"), "invalid_transition", "archived")
    extra_argument("move_environment", (env, "second"))
    return table


def data_plane_cases():
    """Cases for the data-plane functions, run in SQLite's control database and
    in a Postgres database that has only envdb_data."""
    return [
        ("init schema NULL environment", "init_environment_schema", (None,), "invalid_parameter",
         "environment_id is required"),
        ("init schema bad environment id", "init_environment_schema", ("a b",), "invalid_parameter",
         "environment_id"),
        ("init schema injection environment id", "init_environment_schema", (INJECTION,), "invalid_parameter",
         "environment_id"),
        ("init schema environment id of 200", "init_environment_schema", ("e" * 200,), "invalid_parameter",
         "environment_id"),
        ("init schema bad organization id", "init_environment_schema", ("env-1", "a b"), "invalid_parameter",
         "organization_id"),
        ("init schema empty database name", "init_environment_schema", ("env-1", "org-1", ""),
         "invalid_parameter", "database_name"),
        ("init schema database name with a newline", "init_environment_schema", ("env-1", "org-1", "a\nb"),
         "invalid_parameter", "database_name"),
        ("init schema database name of 10000", "init_environment_schema", ("env-1", "org-1", LONG),
         "invalid_parameter", "database_name"),
    ]


SQLITE_ONLY = {"init", "keyring_add", "keyring_use", "upgrade_environment_schemas", "init_environment_schema",
               "environment_schema_version"}


def fixture(h):
    org = h.call("provision_organization", "acme", "Acme", None, None, "turso")
    org_id = org["organization"]["id"]
    default_env = org["defaultEnvironment"]["environment"]["id"]
    dev = h.call("provision_environment", org_id, "dev", None, None, None, "turso")
    prov = h.call("provision_environment", org_id, "waiting", None, None, None, "turso")
    jobs = {j["environmentId"]: j["id"] for j in h.call("claim_provisioning_jobs", "turso", 10)}
    h.call("complete_provisioning_job", jobs[dev["environment"]["id"]], "libsql://dev", {"readwrite": "tok"})
    # The waiting environment's job goes back to pending; the default one's stays running.
    h.call("fail_provisioning_job", jobs[prov["environment"]["id"]], "later", True)
    old = h.call("provision_environment", org_id, "old", None, None, None, "postgres")
    h.call("archive_environment", old["environment"]["id"], True)
    prod = h.call("provision_environment", org_id, "prod", None, "production", None, "postgres")
    dev_db = dev["database"]["id"]
    cred = h.call("issue_credential", dev_db, "admin", "tok-admin")["credential"]["id"]
    revoked = h.call("issue_credential", dev_db, "readonly", "tok-ro")["credential"]["id"]
    h.call("revoke_credential", revoked)
    h.call("add_environment_member", dev["environment"]["id"], "user-1", "env_user")
    h.call("add_environment_hostname", dev["environment"]["id"], "dev.acme.example")
    other = h.call("provision_organization", "other", "Other", None, None, "turso")
    return {"other_org_env": other["defaultEnvironment"]["environment"]["id"],
            "org": org_id, "default_env": default_env,
            "env": dev["environment"]["id"], "db": dev_db,
            "prov_env": prov["environment"]["id"], "prov_db": prov["database"]["id"],
            "archived_env": old["environment"]["id"], "archived_db": old["database"]["id"],
            "protected_env": prod["environment"]["id"], "cred": cred, "revoked_cred": revoked,
            "running_job": jobs[default_env], "pending_job": jobs[prov["environment"]["id"]],
            "done_job": jobs[dev["environment"]["id"]]}


def counts(h):
    """The rows of every catalog table, sys_environment_backup too (since 0.4.0, so not in
    hosts.CATALOG_TABLES, which the upgrade tests read from older catalogs)."""
    out = h.counts()
    out["sys_environment_backup"] = h.sql("select count(*) from envdb.sys_environment_backup")[0][0]
    return out


def registered(h):
    if h.name == "sqlite":
        return {r[0][len("envdb_"):] for r in h.db.execute(
            "select name from pragma_function_list where name like 'envdb\\_%' escape '\\'")}
    return {r[0] for r in h.sql("select proname from pg_proc where pronamespace = 'envdb'::regnamespace "
                                "and prorettype <> 'trigger'::regtype")}


class BadInputs:
    host_class = None

    def test_every_bad_input_is_refused_and_writes_nothing(self):
        h = self.host_class()
        try:
            f = fixture(h)
            table = [c for c in cases(f) if not c[5:] or c[5] == h.name]
            self.assertGreaterEqual(len(table), 150)
            self.assertEqual(len({c[0] for c in table}), len(table), "two cases share a label")
            missing = registered(h) - {c[1] for c in table}
            self.assertEqual(missing, set(), "functions with no bad-input case")
            for label, fn, args, code, fragment, *_ in table:
                with self.subTest(case=label):
                    before = counts(h)
                    with self.assertRaises(HostError) as caught:
                        call(h, fn, args)
                    self.assertEqual(caught.exception.code, code, caught.exception.message)
                    self.assertIn(fragment, caught.exception.message)
                    self.assertLess(len(caught.exception.message), 2000, "an error message echoes its input")
                    self.assertEqual(counts(h), before, "a refused call wrote something")
            self.assertEqual(h.call("version")[:2], "0.")  # still serving
            print(f"\n  [bad inputs] {h.name}: {len(table)} cases over {len({c[1] for c in table})} functions",
                  flush=True)
        finally:
            h.close()


class BadInputsSqlite(BadInputs, unittest.TestCase):
    host_class = SqliteHost


class DataPlaneHost(PostgresHost):
    """A Postgres environment database: extension envdb_data alone."""

    def __init__(self):
        super().__init__("envdb_data_bad", "CREATE EXTENSION envdb_data", keyring=False)

    def counts(self):
        return self.sql("select count(*) from pg_class where relnamespace = 'envdb'::regnamespace")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class BadInputsPostgres(BadInputs, unittest.TestCase):
    host_class = PostgresHost

    def test_data_plane_bad_inputs_in_an_environment_database(self):
        h = DataPlaneHost()
        try:
            table = data_plane_cases() + [
                ("environment_schema_version: an argument it does not take", "environment_schema_version",
                 ("surplus",), HOST, "does not exist"),
                # login_verifier (Postgres only): checked before pg_authid is read.
                ("login_verifier NULL login", "login_verifier", (None,), "invalid_parameter", "login is required"),
                ("login_verifier login of 64", "login_verifier", ("l" * 64,), "invalid_parameter",
                 "login is longer than 63"),
                ("login_verifier login of 10000", "login_verifier", (LONG,), "invalid_parameter", "login"),
                ("login_verifier: an argument it does not take", "login_verifier", ("a", "surplus"), HOST,
                 "does not exist")]
            functions = {r[0] for r in h.sql("select proname from pg_proc where pronamespace = "
                                             "'envdb'::regnamespace")}
            self.assertEqual(functions - {c[1] for c in table}, set(), "functions with no bad-input case")
            for label, fn, args, code, fragment in table:
                with self.subTest(case=label):
                    before = h.counts()
                    with self.assertRaises(HostError) as caught:
                        h.call(fn, *args)
                    self.assertEqual(caught.exception.code, code, caught.exception.message)
                    self.assertIn(fragment, caught.exception.message)
                    self.assertEqual(h.counts(), before, "a refused call created something")
            self.assertIsNone(h.call("environment_schema_version"))  # still serving, never initialized
            print(f"\n  [bad inputs] postgres envdb_data: {len(table)} cases over {len(functions)} functions",
                  flush=True)
        finally:
            h.close()


if __name__ == "__main__":
    unittest.main()
