"""The way back, in both hosts: provision_organization with if_not_exists, an
archived environment's slug provisioned again, deprovision_organization (with
and without force), check() reaching ok after each; in SQLite, the files go
and sqlite_data_dir's default follows the control database, not the working
directory."""
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from hosts import HostError, PostgresHost, Request, SqliteHost, postgres_available

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sqlite"))
from envdb_sqlite import EXTENSION, connect  # noqa: E402


def hex_of(uuid):
    return uuid.replace("-", "")


class Reversible:
    host_class = None

    def setUp(self):
        self.h = self.host_class()

    def tearDown(self):
        self.h.close()

    def org(self, slug="acme", *rest):
        return self.h.call("provision_organization", slug, "Acme", *rest)

    def assert_check_ok(self):
        report = self.h.call("check")
        self.assertTrue(report["ok"], report)

    def audit_actions(self, organization_id):
        return [r[0] for r in self.h.sql(
            "select action from envdb.sys_audit_event where organization_id = ? order by occurred_at, id",
            (organization_id,))]

    # ---- provision_organization(if_not_exists) --------------------------------
    def test_if_not_exists_returns_the_organization_that_has_the_slug(self):
        first = self.org("acme", None, None, "turso")
        before = self.h.counts()
        again = self.h.call("provision_organization", "acme", "Acme", None, None, "turso", None, None, True)
        self.assertEqual(again["organization"]["id"], first["organization"]["id"])
        self.assertEqual(again["defaultEnvironment"]["environment"]["id"],
                         first["defaultEnvironment"]["environment"]["id"])
        self.assertEqual(len(again["warnings"]), 1)
        self.assertIn("already exists", again["warnings"][0])
        self.assertEqual(self.h.counts(), before)  # nothing written
        # The request form, with the same id: the same answer.
        by_request = self.h.call("provision_organization", Request(
            slug="acme", name="Acme", id=first["organization"]["id"], ifNotExists=True))
        self.assertEqual(by_request["organization"]["id"], first["organization"]["id"])
        # Without it, or naming another id: already_exists.
        with self.assertRaises(HostError) as e:
            self.org("acme", None, None, "turso")
        self.assertEqual(e.exception.code, "already_exists")
        other = "01890a5d-ac96-774b-bcce-b302099a8057"
        with self.assertRaises(HostError) as e:
            self.h.call("provision_organization", "acme", "Acme", other, None, "turso", None, None, True)
        self.assertEqual(e.exception.code, "already_exists")
        self.assertIn("not by the given id", e.exception.message)
        self.assertEqual(self.h.counts(), before)

    # ---- an archived environment's slug ----------------------------------------
    def test_an_archived_environments_slug_can_be_provisioned_again(self):
        org = self.org("acme", None, None, "turso")["organization"]["id"]
        old = self.h.call("provision_environment", org, "staging", None, None, None, "turso")["environment"]["id"]
        self.h.call("archive_environment", old)
        # if_not_exists never returns the archived environment: a new one.
        new = self.h.call("provision_environment", Request(organizationId=org, slug="staging", driver="turso",
                                                          ifNotExists=True))
        self.assertNotEqual(new["environment"]["id"], old)
        self.assertEqual(new["environment"]["slug"], "staging")
        self.assertEqual(new["warnings"], [])
        kept = self.h.call("get_environment", old)["environment"]
        self.assertEqual(kept["status"], "archived")
        self.assertEqual(kept["slug"], "archived-" + hex_of(old))
        self.assertIn("environment.release_slug", self.audit_actions(org))
        # The new one holds the slug: if_not_exists returns it now.
        again = self.h.call("provision_environment", Request(organizationId=org, slug="staging", driver="turso",
                                                            ifNotExists=True))
        self.assertEqual(again["environment"]["id"], new["environment"]["id"])
        # Archive, drop (turso: a job), provision: a third one.
        self.h.call("archive_environment", new["environment"]["id"])
        third = self.h.call("provision_environment", org, "staging", None, None, None, "turso")
        self.assertNotIn(third["environment"]["id"], (old, new["environment"]["id"]))
        self.assert_check_ok()

    # ---- deprovision_organization ---------------------------------------------
    def test_deprovision_with_force_archives_everything_and_frees_the_slug(self):
        first = self.org("acme", None, None, "turso")
        org = first["organization"]["id"]
        dev = self.h.call("provision_environment", org, "dev", None, None, None, "turso")["environment"]["id"]
        prod = self.h.call("provision_environment", org, "prod", None, "production", None, "turso")["environment"]["id"]
        out = self.h.call("deprovision_organization", org, True)
        self.assertEqual(out["organization"]["slug"], "deprovisioned-" + hex_of(org))
        self.assertIsNotNone(out["organization"]["deprovisionedAt"])
        self.assertEqual(out["warnings"], [])
        self.assertEqual(len(out["environments"]), 3)
        for entry in out["environments"]:
            self.assertEqual(entry["environment"]["status"], "archived")
            # turso: a drop_database job for the external worker, now.
            self.assertEqual(entry["job"]["kind"], "drop_database")
            self.assertIsNone(entry["dropFrom"])
        # Every credential revoked.
        live = self.h.sql("select count(*) from envdb.sys_database_credential c join envdb.sys_environment_database d "
                          "on d.id = c.database_id join envdb.sys_environment e on e.id = d.environment_id "
                          "where e.organization_id = ? and c.status <> 'revoked'", (org,))[0][0]
        self.assertEqual(live, 0)
        actions = self.audit_actions(org)
        self.assertEqual(actions.count("environment.archive"), 3)
        self.assertEqual(actions.count("environment.drop_database"), 3)
        self.assertEqual(actions[-1], "organization.deprovision")
        # The worker reports the drops; the catalog records them.
        jobs = self.h.call("claim_provisioning_jobs", "turso", 10)
        self.assertEqual(sorted(j["environmentId"] for j in jobs),
                         sorted([first["defaultEnvironment"]["environment"]["id"], dev, prod]))
        for j in jobs:
            self.h.call("complete_provisioning_job", j["id"])
        self.assert_check_ok()
        # The slug again: a new organization; the old one keeps its history.
        again = self.org("acme", None, None, "turso")
        self.assertNotEqual(again["organization"]["id"], org)
        self.assertEqual(self.h.sql("select count(*) from envdb.sys_organization")[0][0], 2)
        # The tombstoned organization takes nothing new and is not deprovisioned twice.
        with self.assertRaises(HostError) as e:
            self.h.call("provision_environment", org, "dev2", None, None, None, "turso")
        self.assertEqual(e.exception.code, "invalid_transition")
        self.assertIn("organization_id", e.exception.message)
        with self.assertRaises(HostError) as e:
            self.h.call("deprovision_organization", org, True)
        self.assertEqual(e.exception.code, "invalid_transition")
        self.assert_check_ok()

    def test_deprovision_without_force_keeps_databases_for_the_grace(self):
        org = self.org("acme", None, None, "turso")
        org_id, default = org["organization"]["id"], org["defaultEnvironment"]["environment"]["id"]
        out = self.h.call("deprovision_organization", org_id)
        entry = out["environments"][0]
        self.assertEqual(entry["environment"]["status"], "archived")
        self.assertIsNone(entry["job"])
        self.assertIsNotNone(entry["dropFrom"])
        self.assertEqual(len(out["warnings"]), 1)
        self.assertIn("drop_environment_database", out["warnings"][0])
        self.assert_check_ok()
        # The drop path itself: refused during the grace, allowed after it.
        with self.assertRaises(HostError) as e:
            self.h.call("drop_environment_database", default)
        self.assertEqual(e.exception.code, "invalid_transition")
        self.h.call("config", "drop_grace_seconds", "0")
        dropped = self.h.call("drop_environment_database", default)
        self.assertEqual(dropped["job"]["kind"], "drop_database")
        self.assert_check_ok()

    def test_deprovision_with_a_zero_grace_drops_now(self):
        self.h.call("config", "drop_grace_seconds", "0")
        org = self.org("acme", None, None, "turso")["organization"]["id"]
        out = self.h.call("deprovision_organization", org, False)
        self.assertEqual(out["environments"][0]["job"]["kind"], "drop_database")
        self.assertEqual(out["warnings"], [])

    def test_deprovision_an_unknown_organization(self):
        with self.assertRaises(HostError) as e:
            self.h.call("deprovision_organization", "01890a5d-ac96-774b-bcce-b302099a8057", True)
        self.assertEqual(e.exception.code, "not_found")
        self.assertIn("organization_id", e.exception.message)


class ReversibleSqlite(Reversible, unittest.TestCase):
    host_class = SqliteHost

    def env_files(self):
        d = os.path.join(self.h.dir.name, "envs")
        return sorted(f for f in os.listdir(d) if f.startswith("env-")) if os.path.isdir(d) else []

    def test_sqlite_files_go_and_check_is_ok(self):
        org = self.org("acme")  # the sqlite driver
        org_id = org["organization"]["id"]
        self.h.call("provision_environment", org_id, "dev")
        self.assertEqual(len(self.env_files()), 2)
        out = self.h.call("deprovision_organization", org_id, 1)
        for entry in out["environments"]:
            self.assertIsNotNone(entry["database"]["droppedAt"])
            self.assertIsNone(entry["job"])
        self.assertEqual(self.env_files(), [])
        self.assert_check_ok()
        # Deploy again, revert again: the same slugs, nothing left.
        again = self.org("acme")["organization"]["id"]
        self.h.call("provision_environment", again, "dev")
        self.assertEqual(len(self.env_files()), 2)
        self.h.call("deprovision_organization", again, 1)
        self.assertEqual(self.env_files(), [])
        self.assert_check_ok()

    def test_archive_drop_and_provision_the_same_slug_with_files(self):
        org = self.org("acme")["organization"]["id"]
        old = self.h.call("provision_environment", org, "staging")
        self.h.call("archive_environment", old["environment"]["id"])
        self.h.call("drop_environment_database", old["environment"]["id"], 1)
        new = self.h.call("provision_environment", org, "staging", None, None, None, None, None, None, None,
                          None, None, None, 1)
        self.assertEqual(new["environment"]["status"], "active")
        self.assertNotEqual(new["database"]["databaseName"], old["database"]["databaseName"])
        self.assertEqual(len(self.env_files()), 2)  # default and the new staging
        self.assert_check_ok()

    def test_data_dir_default_follows_the_control_database_not_the_working_directory(self):
        with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as elsewhere:
            control = os.path.join(home, "control.db")
            script = (
                "import sqlite3, sys\n"
                "db = sqlite3.connect(sys.argv[1])\n"
                "db.enable_load_extension(True)\n"
                "db.load_extension(sys.argv[2])\n"
                "db.execute('select envdb_init()')\n"
                "db.execute(\"select envdb_keyring_add('k1', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=')\")\n"
                "print(db.execute(\"select envdb_provision_organization(?, 'A')\", (sys.argv[3],)).fetchone()[0])\n"
                "db.commit()\n")
            for slug in ("one", "two"):
                subprocess.run([sys.executable, "-c", script, control, EXTENSION, slug], cwd=elsewhere,
                               check=True, capture_output=True)
            self.assertEqual(os.listdir(elsewhere), [])
            files = [f for f in os.listdir(os.path.join(home, "envdb_environments")) if f.endswith(".db")]
            self.assertEqual(len(files), 2)
            db = connect(control)
            db.execute("select envdb_keyring_add('k1', 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=')")
            self.assertEqual(db.execute("select json_extract(envdb_check(), '$.ok')").fetchone()[0], 1)
            db.close()

    def test_sqlite_uninstall_leaves_nothing(self):
        """The documented uninstall (docs/reference.md, "Uninstalling"):
        deprovision every organization with force, check() ok, then drop
        envdb's objects; no environment file, no sys_ object is left."""
        for slug in ("acme", "globex"):
            org = self.org(slug)["organization"]["id"]
            self.h.call("provision_environment", org, "dev")
        self.assertEqual(len(self.env_files()), 4)
        for (org_id,) in self.h.sql("select id from sys_organization where deprovisioned_at is null"):
            self.h.call("deprovision_organization", org_id, 1)
        self.assertEqual(self.env_files(), [])
        self.assert_check_ok()
        db = self.h.db
        db.commit()
        db.execute("PRAGMA foreign_keys = OFF")
        for kind, name in db.execute("select type, name from sqlite_master where type in ('view', 'table') "
                                     "and name like 'sys!_%' escape '!' order by type = 'table'").fetchall():
            db.execute(f"DROP {kind.upper()} {name}")
        db.commit()
        self.assertEqual(db.execute("select count(*) from sqlite_master where name like 'sys!_%' escape '!'")
                         .fetchone()[0], 0)
        os.rmdir(os.path.join(self.h.dir.name, "envs"))  # empty: nothing else was left in it


class ReversiblePostgres(Reversible, unittest.TestCase):
    host_class = PostgresHost

    @classmethod
    def setUpClass(cls):
        if not postgres_available():
            raise unittest.SkipTest("no Postgres cluster (run under pg_virtualenv)")


if __name__ == "__main__":
    unittest.main()
