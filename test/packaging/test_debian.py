"""Debian packages (debian/, pg_buildext conventions): built with
dpkg-buildpackage -us -uc -b from a clean copy of the tree (git archive of
the working tree's tracked files, nothing from build/), installed with
dpkg -i, then CREATE EXTENSION envdb and envdb_data in a throwaway cluster
(pg_virtualenv) with the installed files and `.load` of the installed SQLite
extension in the sqlite3 shell; finally dpkg -r, and the system directories
hold exactly what they held before (files that an earlier `make install`
had put there are put back).

Runs as root (dpkg), in make check's packaging stage, before the Postgres
stage's `make install`. ENVDB_DEB_DIR=<dir> takes the packages from a
directory where this recipe built them instead of building again."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PACKAGES = ("postgresql-15-envdb", "sqlite3-envdb")


def version():
    return re.search(r'kVersion = "([^"]+)"', open(os.path.join(ROOT, "shared", "core", "version.hpp")).read()).group(1)


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def installed(package):
    out = run(["dpkg-query", "-W", "-f=${Status}", package])
    return out.returncode == 0 and "install ok installed" in out.stdout


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("dpkg-buildpackage") and shutil.which("pg_buildext"),
                     "needs root, dpkg-dev, debhelper and postgresql-server-dev-all (scripts/setup.sh)")
class DebianPackages(unittest.TestCase):
    def test_build_install_use_and_remove(self):
        for p in PACKAGES:
            self.assertFalse(installed(p), f"{p} is installed already; remove it first (dpkg -r {p})")
        v = version()
        changelog = open(os.path.join(ROOT, "debian", "changelog")).readline()
        self.assertEqual(changelog.split()[1], f"({v})", "debian/changelog's version is not shared/core/version.hpp's")
        scratch = tempfile.mkdtemp(prefix="envdb-deb-")
        backup = os.path.join(scratch, "backup")
        debs = []
        try:
            # The working tree's tracked files (uncommitted edits included), nothing generated.
            tree = run(["git", "-C", ROOT, "stash", "create"]).stdout.strip() or "HEAD"
            src = os.path.join(scratch, f"envdb-{v}")
            archive = subprocess.Popen(["git", "-C", ROOT, "archive", f"--prefix=envdb-{v}/", tree],
                                       stdout=subprocess.PIPE)
            subprocess.run(["tar", "-x", "-C", scratch], stdin=archive.stdout, check=True)
            self.assertEqual(archive.wait(), 0)
            self.assertFalse(os.path.exists(os.path.join(src, "build")))
            started = time.time()
            env = {**os.environ, "DEB_BUILD_OPTIONS": "noddebs nocheck parallel=2"}
            env.pop("MAKEFLAGS", None)
            if os.environ.get("ENVDB_DEB_DIR"):
                # Packages built before by this same test's recipe (to iterate on the install half).
                for f in os.listdir(os.environ["ENVDB_DEB_DIR"]):
                    if f.endswith(".deb"):
                        shutil.copy(os.path.join(os.environ["ENVDB_DEB_DIR"], f), scratch)
            else:
                out = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=src, env=env, timeout=1500)
                self.assertEqual(out.returncode, 0, (out.stdout + out.stderr)[-4000:])
                print(f"\n  [debian] built in {time.time() - started:.0f} s", flush=True)
            for p in PACKAGES:
                found = [f for f in os.listdir(scratch) if f.startswith(f"{p}_{v}_") and f.endswith(".deb")]
                self.assertEqual(len(found), 1, os.listdir(scratch))
                debs.append(os.path.join(scratch, found[0]))

            contents = {}
            for deb in debs:
                listing = run(["dpkg-deb", "-c", deb], check=True).stdout
                contents[deb] = [line.split()[-1].lstrip(".") for line in listing.splitlines()
                                 if not line.startswith(("d", "l"))]
            files = [f for fs in contents.values() for f in fs]
            self.assertIn("/usr/lib/sqlite3/envdb.so", files)
            self.assertIn("/usr/lib/postgresql/15/lib/envdb.so", files)
            for ext in ("envdb", "envdb_data"):
                self.assertIn(f"/usr/share/postgresql/15/extension/{ext}.control", files)
                self.assertIn(f"/usr/share/postgresql/15/extension/{ext}--{v}.sql", files)
                self.assertIn(f"/usr/share/postgresql/15/extension/{ext}--0.3.0--{v}.sql", files)
            # What an earlier `make install` left in those places is put back afterwards.
            before = {f for f in files if os.path.lexists(f)}
            for f in before:
                os.makedirs(os.path.dirname(backup + f), exist_ok=True)
                shutil.copy2(f, backup + f)

            out = run(["dpkg", "-i", *debs])
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            try:
                for p in PACKAGES:
                    self.assertTrue(installed(p), p)
                self.use_the_installed_extensions(src, scratch)
            finally:
                out = run(["dpkg", "-r", *PACKAGES])
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                for p in PACKAGES:
                    self.assertFalse(installed(p), p)
                for f in files:
                    self.assertFalse(os.path.lexists(f) and f not in before, f"{f} left behind")
                for f in before:
                    os.makedirs(os.path.dirname(f), exist_ok=True)
                    shutil.copy2(backup + f, f)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def use_the_installed_extensions(self, src, scratch):
        # Postgres: a throwaway cluster, the installed files only; then pg_regress (installcheck)
        # of the packaged tree against them.
        log = os.path.join(scratch, "installcheck.log")
        script = ("set -e; psql -X -q -v ON_ERROR_STOP=1 -Atc 'CREATE EXTENSION envdb' "
                  "-c 'SELECT envdb.version()' -c 'CREATE DATABASE envdb_deb_env'; "
                  "psql -X -q -v ON_ERROR_STOP=1 -d envdb_deb_env -Atc 'CREATE EXTENSION envdb_data' "
                  "-c \"SELECT envdb.init_environment_schema('env-1') ->> 'schemaVersion'\"; "
                  f"make --no-print-directory -C {src}/pg_ext installcheck REGRESS_OUTPUT={scratch}/regress "
                  f">{log} 2>&1 || {{ cat {log} {scratch}/regress/regression.diffs >&2; exit 1; }}")
        out = run(["pg_virtualenv", "-t", "-o", "shared_preload_libraries=envdb", "bash", "-c", script],
                  timeout=300)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # pg_virtualenv's own lines ("Creating new PostgreSQL cluster ...") around psql's two answers.
        answers = [l for l in out.stdout.splitlines() if not l.startswith(("Creating new ", "Dropping cluster "))]
        self.assertEqual(answers, [version(), "1"], out.stdout)
        self.assertRegex(open(log).read(), r"All [1-9][0-9]* tests passed")
        # SQLite: the shell loads the installed extension by its path.
        with tempfile.TemporaryDirectory() as d:
            out = run(["sqlite3", "-batch", os.path.join(d, "c.db")],
                      input=".load /usr/lib/sqlite3/envdb\nSELECT envdb_init();\nSELECT envdb_version();\n",
                      timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.split("\n")[1], version(), out.stdout)


if __name__ == "__main__":
    unittest.main()
