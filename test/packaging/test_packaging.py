"""Packaging: make dist's tarball holds the committed tree and nothing
generated; make install honours DESTDIR and PG_CONFIG and installs the current
install scripts, the frozen earlier ones and the upgrade scripts; the upgrade
generator refuses a change it cannot express. Runs after `make all`."""
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GEN = os.path.join(ROOT, "build", "envdb_gen_install_sql")
FROZEN = os.path.join(ROOT, "pg_ext", "sql", "envdb--0.1.0.sql")


def version():
    return re.search(r'kVersion = "([^"]+)"', open(os.path.join(ROOT, "shared", "core", "version.hpp")).read()).group(1)


def pg_config(option):
    return subprocess.run(["pg_config", option], capture_output=True, text=True, check=True).stdout.strip()


def make(*args, **env):
    # The same warning setting as the build already made, or `make install`
    # (which runs `make all` first) would configure and rebuild everything.
    cache = os.path.join(ROOT, "build", "CMakeCache.txt")
    werror = "1" if os.path.exists(cache) and "ENVDB_WERROR:BOOL=ON" in open(cache).read() else "0"
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, f"ENVDB_WERROR={werror}", *args],
                          capture_output=True, text=True, env={**os.environ, **env})


def installed_files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files)


def expected_scripts(frozen_versions):
    v = version()
    names = {"envdb.control", "envdb_data.control", f"envdb--{v}.sql", f"envdb_data--{v}.sql"}
    for ext in ("envdb", "envdb_data"):
        for old in frozen_versions:
            names |= {f"{ext}--{old}.sql", f"{ext}--{old}--{v}.sql"}
    return names


def frozen_versions():
    out = set()
    for f in os.listdir(os.path.join(ROOT, "pg_ext", "sql")):
        m = re.match(r"^envdb--([0-9.]+)\.sql$", f)
        if m and m.group(1) != version():
            out.add(m.group(1))
    return out


class Dist(unittest.TestCase):
    def test_tarball_holds_the_committed_tree_and_nothing_generated(self):
        with tempfile.TemporaryDirectory() as d:
            out = make("dist", f"DISTDIR={d}")
            self.assertEqual(out.returncode, 0, out.stderr)
            path = os.path.join(d, f"envdb-{version()}.tar.gz")
            self.assertEqual(out.stdout.strip(), path)
            with tarfile.open(path) as tar:
                names = {n for n in tar.getnames() if not tar.getmember(n).isdir()}
        prefix = f"envdb-{version()}/"
        self.assertTrue(all(n.startswith(prefix) for n in names))
        tracked = subprocess.run(["git", "-C", ROOT, "ls-tree", "-r", "--name-only", "HEAD"],
                                 capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual({n[len(prefix):] for n in names}, set(tracked))
        inside = {n[len(prefix):] for n in names}
        for needed in ("CMakeLists.txt", "Makefile", "pg_ext/sql/envdb--0.1.0.sql", "pg_ext/sql/envdb_data--0.1.0.sql",
                       "sqlite_ext/envdb_sqlite.h", "test/sqlite/fixtures/control-0.1.0.db",
                       "pg_ext/regress/sql/schedule", "pg_ext/regress/expected/foundation.out"):
            self.assertIn(needed, inside)
        for generated in inside:
            self.assertFalse(generated.startswith(("build/", "build-")), generated)
            self.assertFalse(re.match(r"^pg_ext/envdb(_data)?--.*\.sql$", generated), generated)
            self.assertFalse(generated.endswith((".o", ".so", ".a")), generated)


class Install(unittest.TestCase):
    def test_destdir_install_lists_the_expected_files(self):
        with tempfile.TemporaryDirectory() as d:
            out = make("install", f"DESTDIR={d}")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            files = installed_files(d)
        lib = os.path.relpath(pg_config("--pkglibdir"), "/")
        ext = os.path.relpath(os.path.join(pg_config("--sharedir"), "extension"), "/")
        expected = {os.path.join(lib, "envdb.so")} | {os.path.join(ext, n) for n in expected_scripts(frozen_versions())}
        self.assertEqual(set(files), expected)
        self.assertIn("0.1.0", frozen_versions())

    def test_pg_config_chooses_where_it_installs(self):
        real = shutil.which("pg_config")
        with tempfile.TemporaryDirectory() as d:
            wrapper = os.path.join(d, "pg_config")
            with open(wrapper, "w") as f:
                f.write("#!/bin/sh\n"
                        f'case "$1" in --sharedir) echo {d}/share ;; --pkglibdir) echo {d}/lib ;; '
                        f'*) exec {real} "$@" ;; esac\n')
            os.chmod(wrapper, os.stat(wrapper).st_mode | stat.S_IEXEC)
            out = make("install", f"PG_CONFIG={wrapper}")
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            files = installed_files(d)
        expected = {"pg_config", "lib/envdb.so"} | {f"share/extension/{n}" for n in expected_scripts(frozen_versions())}
        self.assertEqual(set(files), expected)


class OneVersion(unittest.TestCase):
    def test_the_version_is_written_once(self):
        """A bump in shared/core/version.hpp alone moves CMake's project version and
        the two control files (and, through them, the install script names)."""
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "src")
            files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"],
                                   capture_output=True, text=True, check=True).stdout.split()
            for rel in files:  # the working tree as git sees it, committed or not
                if os.path.isfile(os.path.join(ROOT, rel)):
                    os.makedirs(os.path.dirname(os.path.join(src, rel)), exist_ok=True)
                    shutil.copy(os.path.join(ROOT, rel), os.path.join(src, rel))
            header = os.path.join(src, "shared", "core", "version.hpp")
            text = open(header).read()
            open(header, "w").write(re.sub(r'kVersion = "[^"]+"', 'kVersion = "9.8.7"', text))
            cmake = subprocess.run(["cmake", "-S", src, "-B", os.path.join(d, "b"), "-DENVDB_TESTS=OFF"],
                                   capture_output=True, text=True)
            self.assertEqual(cmake.returncode, 0, cmake.stderr)
            cache = open(os.path.join(d, "b", "CMakeCache.txt")).read()
            self.assertIn("CMAKE_PROJECT_VERSION:STATIC=9.8.7", cache)
            out = subprocess.run(["make", "--no-print-directory", "-C", os.path.join(src, "pg_ext"),
                                  "envdb.control", "envdb_data.control"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            for ext in ("envdb", "envdb_data"):
                self.assertIn("default_version = '9.8.7'",
                              open(os.path.join(src, "pg_ext", f"{ext}.control")).read())
        committed = subprocess.run(["git", "-C", ROOT, "grep", "-l", "-F", version(), "--",
                                    "*.txt", "*.control*", "Makefile", "pg_ext/Makefile"],
                                   capture_output=True, text=True).stdout.split()
        self.assertEqual(committed, [], "the version is written again outside shared/core/version.hpp")


class UpgradeGenerator(unittest.TestCase):
    """The generator compares the frozen script with the current one; here the
    'old' script is edited so that the current catalog looks like a change it
    must refuse."""

    def derive(self, old_text):
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(old_text)
        try:
            return subprocess.run([GEN, "upgrade", "envdb", f.name, "0.0.9"], capture_output=True, text=True)
        finally:
            os.unlink(f.name)

    def frozen(self):
        return open(FROZEN, encoding="utf-8").read()

    def test_the_shipped_upgrade_is_derived(self):
        out = self.derive(self.frozen())
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(f"ALTER EXTENSION envdb UPDATE TO '{version()}'", out.stdout)
        self.assertIn("CREATE OR REPLACE FUNCTION envdb.resolve_environment(", out.stdout)

    def test_new_table_column_index_and_check_become_statements(self):
        old = self.frozen()
        # Make the old script lack what the current one has.
        old = old.replace("  rotated_from text,\n", "").replace(", rotated_from) ON", ") ON")
        old = old.replace("CREATE INDEX sys_audit_event_env_idx ON envdb.sys_audit_event (environment_id, occurred_at);\n", "")
        old = old.replace("'production', 'trial'", "'production'")
        start = old.index("CREATE TABLE envdb.sys_environment_member (")
        end = old.index(");\n", start) + 3
        old = old[:start] + old[end:]
        old = re.sub(r"CREATE INDEX sys_environment_member_user_idx[^\n]*\n", "", old)
        old = re.sub(r"SELECT pg_catalog.pg_extension_config_dump\('envdb.sys_environment_member', ''\);\n", "", old)
        old = re.sub(r"CREATE POLICY reader_organization ON envdb.sys_environment_member[^;]*;\n", "", old)
        old = re.sub(r"[^\n]*(ON|TABLE) envdb.sys_environment_member[^\n]*\n", "", old)
        out = self.derive(old)
        self.assertEqual(out.returncode, 0, out.stderr)
        s = out.stdout
        self.assertIn("ALTER TABLE envdb.sys_database_credential ADD COLUMN rotated_from text;", s)
        self.assertIn("CREATE INDEX sys_audit_event_env_idx ON envdb.sys_audit_event", s)
        self.assertIn("CREATE TABLE envdb.sys_environment_member (", s)
        self.assertIn("pg_extension_config_dump('envdb.sys_environment_member', '')", s)
        self.assertIn("CREATE POLICY reader_organization ON envdb.sys_environment_member", s)
        self.assertIn("ALTER TABLE envdb.sys_environment_member ENABLE ROW LEVEL SECURITY;", s)
        self.assertIn("ALTER TABLE envdb.sys_environment ADD CHECK (env_type IN ('default', 'sandbox', "
                      "'development', 'production', 'trial'));", s)
        self.assertIn("DROP CONSTRAINT %I", s)
        # The column must be granted to envdb_reader again, with the others.
        self.assertRegex(s, r"GRANT SELECT \([^)]*rotated_from\) ON envdb.sys_database_credential TO envdb_reader;")

    def refused(self, old, message):
        out = self.derive(old)
        self.assertEqual(out.returncode, 1, out.stdout[-500:])
        self.assertIn(message, out.stderr)
        self.assertEqual(out.stdout, "")

    def test_a_dropped_column_is_refused(self):
        self.refused(self.frozen().replace("  value text,\n", "  value text,\n  legacy text,\n", 1),
                     "column legacy was dropped")

    def test_a_retyped_column_is_refused(self):
        self.refused(self.frozen().replace("  value text,\n", "  value bigint,\n", 1),
                     "column value changed type (bigint -> text)")

    def test_a_new_column_before_old_ones_is_refused(self):
        self.refused(self.frozen().replace("  value text,\n", "", 1),
                     "new column value comes before the existing column updated_at")

    def test_a_dropped_table_is_refused(self):
        self.refused(self.frozen().replace("CREATE TABLE envdb.sys_config (", "CREATE TABLE envdb.sys_gone (\n  x text,\n  PRIMARY KEY (x)\n);\nCREATE TABLE envdb.sys_config (", 1),
                     "table envdb.sys_gone was dropped")

    def test_a_dropped_sequence_is_refused(self):
        # Its current value is data (the audit events' numbers), like a table's rows.
        self.refused(self.frozen().replace("CREATE TABLE envdb.sys_config (",
                                           "CREATE SEQUENCE envdb.sys_gone_seq;\nCREATE TABLE envdb.sys_config (", 1),
                     "sequence envdb.sys_gone_seq was dropped")

    def test_a_statement_without_a_rule_is_refused(self):
        self.refused(self.frozen() + "\nCREATE DOMAIN envdb.sys_counter AS integer;\n",
                     "no upgrade rule for the statement \"CREATE DOMAIN envdb.sys_counter AS integer\"")


if __name__ == "__main__":
    unittest.main()
