"""The credential scenario, the same in both hosts: issue, reveal, rotate with a
grace window (both valid inside it), expire, revoke, tamper -> decrypt_failed,
missing key -> key_unavailable, rewrap to a new key with reveal still working."""
import unittest

from hosts import (SECOND_KEY, SECOND_KEY_ID, TEST_KEY, TEST_KEY_ID, HostError, PostgresHost,
                   Seconds, SqliteHost, postgres_available)


class CredentialScenario:
    host_class = None

    def setUp(self):
        self.h = self.host_class()
        # The postgres driver: envdb generates tokens for it, in either host.
        org = self.h.call("provision_organization", "acme", "Acme", None, None, "postgres")
        env = self.h.call("provision_environment", org["organization"]["id"], "dev", None, None, None, "postgres")
        self.db = env["database"]["id"]

    def tearDown(self):
        self.h.close()

    def error(self, fn, *args):
        with self.assertRaises(HostError) as caught:
            self.h.call(fn, *args)
        return caught.exception

    def active(self, scope):
        return self.h.sql("select count(*) from envdb.sys_database_credential where database_id = ? "
                          "and scope = ? and status = 'active'", (self.db, scope))[0][0]

    def test_lifecycle_of_a_credential(self):
        h = self.h
        first = h.call("issue_credential", self.db, "readwrite", "token-one")["credential"]
        self.assertEqual((first["scope"], first["status"], first["kmsKeyId"]), ("readwrite", "active", TEST_KEY_ID))
        self.assertEqual(h.call("reveal_credential", first["id"]), "token-one")
        generated = h.call("issue_credential", self.db, "readonly")["credential"]
        self.assertEqual(len(h.call("reveal_credential", generated["id"])), 43)

        rotated = h.call("rotate_credential", self.db, "readwrite", Seconds(3600), "token-two")
        new, previous = rotated["credential"], rotated["previous"]
        self.assertEqual((new["status"], previous["status"], new["rotatedFrom"]), ("active", "rotating", first["id"]))
        self.assertIsNotNone(previous["expiresAt"])
        # Inside the window both open.
        self.assertEqual(h.call("reveal_credential", previous["id"]), "token-one")
        self.assertEqual(h.call("reveal_credential", new["id"]), "token-two")
        self.assertEqual(self.active("readwrite"), 1)

        # The window ends: expire_credentials revokes what is overdue.
        h.sql("update envdb.sys_database_credential set expires_at = '2000-01-01T00:00:00.000Z' where id = ?",
              (previous["id"],))
        self.assertEqual(h.call("expire_credentials"), 1)
        self.assertEqual(self.error("reveal_credential", previous["id"]).code, "conflict")
        self.assertEqual(h.call("expire_credentials"), 0)

        # Revocation is per credential.
        revoked = h.call("revoke_credential", generated["id"])["credential"]
        self.assertEqual(revoked["status"], "revoked")
        self.assertEqual(self.error("revoke_credential", generated["id"]).code, "invalid_transition")
        self.assertEqual(h.call("reveal_credential", new["id"]), "token-two")

    def test_tampering_and_missing_keys_are_errors_not_garbage(self):
        h = self.h
        cred = h.call("issue_credential", self.db, "readwrite", "secret-token")["credential"]
        other = h.call("issue_credential", self.db, "readonly", "other-token")["credential"]
        # A flipped byte.
        cipher = bytearray(h.sql("select token_cipher from envdb.sys_database_credential where id = ?", (cred["id"],))[0][0])
        cipher[20] ^= 1
        h.sql("update envdb.sys_database_credential set token_cipher = ? where id = ?", (bytes(cipher), cred["id"]))
        e = self.error("reveal_credential", cred["id"])
        self.assertEqual(e.code, "decrypt_failed")
        self.assertNotIn("secret-token", e.message)
        # A ciphertext moved onto another row does not open.
        h.sql("update envdb.sys_database_credential set token_cipher = "
              "(select token_cipher from envdb.sys_database_credential where id = ?) where id = ?",
              (other["id"], cred["id"]))
        self.assertEqual(self.error("reveal_credential", cred["id"]).code, "decrypt_failed")
        # The key is gone.
        h.load_keys({SECOND_KEY_ID: SECOND_KEY}, SECOND_KEY_ID)
        e = self.error("reveal_credential", other["id"])
        self.assertEqual(e.code, "key_unavailable")
        self.assertIn(TEST_KEY_ID, e.message)

    def test_rewrap_moves_every_credential_to_the_new_key(self):
        h = self.h
        ids = [h.call("issue_credential", self.db, s, f"tok-{s}")["credential"]["id"]
               for s in ("readwrite", "readonly", "admin")]
        live = h.sql("select count(*) from envdb.sys_database_credential where status <> 'revoked'")[0][0]
        h.load_keys({TEST_KEY_ID: TEST_KEY, SECOND_KEY_ID: SECOND_KEY}, SECOND_KEY_ID)
        self.assertEqual(h.call("rewrap_credentials"), live)
        self.assertEqual(h.call("rewrap_credentials"), 0)
        keys = {r[0] for r in h.sql("select kms_key_id from envdb.sys_database_credential where status <> 'revoked'")}
        self.assertEqual(keys, {SECOND_KEY_ID})
        status = {k["kmsKeyId"]: k for k in h.call("keyring_status")}
        self.assertEqual(status[SECOND_KEY_ID]["credentials"], live)
        # The old key can go: reveal works with the new key alone.
        h.load_keys({SECOND_KEY_ID: SECOND_KEY}, SECOND_KEY_ID)
        self.assertEqual([h.call("reveal_credential", i) for i in ids], ["tok-readwrite", "tok-readonly", "tok-admin"])


class CredentialsSqlite(CredentialScenario, unittest.TestCase):
    host_class = SqliteHost


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class CredentialsPostgres(CredentialScenario, unittest.TestCase):
    host_class = PostgresHost


if __name__ == "__main__":
    unittest.main()
