"""Deadlines in SQLite, where no background process runs: every call that hands
out a credential treats a passed expires_at as expired at once (reveal refuses
a rotating credential past its grace, resolve finds no usable active one),
while the catalog keeps the status until expire_credentials() sweeps it (with
its audit event). The Postgres worker does that sweep on its own."""
import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import HostError, Seconds, SqliteHost  # noqa: E402


class Deadlines(unittest.TestCase):
    def setUp(self):
        self.h = SqliteHost()
        org = self.h.call("provision_organization", "acme", "Acme")
        self.env = org["defaultEnvironment"]["environment"]["id"]
        self.db = org["defaultEnvironment"]["database"]["id"]

    def tearDown(self):
        self.h.close()

    def status(self, credential_id):
        return self.h.sql("select status from envdb.sys_database_credential where id = ?", (credential_id,))[0][0]

    def refused(self, fn, *args):
        try:
            self.h.call(fn, *args)
            return None
        except HostError as e:
            return e

    def test_a_passed_grace_is_expired_for_every_reading_call(self):
        old = self.h.call("resolve_environment", self.env, "readwrite")["credential"]
        started = time.monotonic()
        self.h.call("rotate_credential", self.db, "readwrite", Seconds(1))
        self.assertEqual(self.h.call("reveal_credential", old["id"]), old["token"])  # inside the grace
        error = None
        while error is None and time.monotonic() - started < 10:
            time.sleep(0.05)  # the polling interval, not an assertion
            error = self.refused("reveal_credential", old["id"])
        self.assertIsNotNone(error, "the rotating credential still opened 10 s after a 1 s grace")
        self.assertEqual(error.code, "conflict")
        self.assertIn("expired at", str(error))
        # The catalog says rotating until the sweep, which revokes and audits it.
        self.assertEqual(self.status(old["id"]), "rotating")
        self.assertEqual(self.h.call("expire_credentials"), 1)
        self.assertEqual(self.status(old["id"]), "revoked")
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_audit_event where action = 'credential.expire' "
                                    "and subject_id = ?", (old["id"],))[0][0], 1)

    def test_an_active_credential_past_its_expiry_is_not_resolved(self):
        soon = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 2))
        issued = self.h.call("issue_credential", self.db, "readonly", None, soon)["credential"]
        self.assertEqual(self.h.call("resolve_environment", self.env, "readonly")["credential"]["id"], issued["id"])
        started = time.monotonic()
        error = None
        while error is None and time.monotonic() - started < 10:
            time.sleep(0.05)
            error = self.refused("resolve_environment", self.env, "readonly")
        self.assertIsNotNone(error, "an expired credential was still resolved")
        self.assertEqual(error.code, "not_found")
        self.assertIn("expired at", str(error))
        self.assertEqual(self.refused("reveal_credential", issued["id"]).code, "conflict")


if __name__ == "__main__":
    unittest.main()
