"""`make install` needs only what installing needs. In a copy of the tree,
with GoogleTest and SQLite hidden from CMake, `make install DESTDIR=...`
configures, builds the core, the install scripts and the Postgres module and
installs them, and builds neither the SQLite extension nor the unit tests;
asking for them (-DENVDB_SQLITE=ON) without SQLite is a clear CMake error.
`make -C pg_ext` on its own names the command to run while the core is not
configured, and works once it is."""
import os
import shutil
import subprocess
import tempfile
import unittest

from test_packaging import ROOT, expected_scripts, frozen_versions, installed_files, pg_config

HIDDEN = "-DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON"


def copy_tree(dest):
    """The working tree as git sees it (committed or not), without build outputs."""
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"],
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if os.path.isfile(os.path.join(ROOT, rel)):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy(os.path.join(ROOT, rel), os.path.join(dest, rel))


class InstallNeedsOnlyPostgres(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.src = os.path.join(cls.tmp.name, "src")
        copy_tree(cls.src)
        cls.build = os.path.join(cls.src, "build")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_make(self, *args, cwd=None):
        return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd or self.src,
                              capture_output=True, text=True, timeout=1200)

    def test_1_pg_ext_alone_names_the_command_while_the_core_is_not_configured(self):
        out = self.run_make("-C", "pg_ext")
        self.assertNotEqual(out.returncode, 0)
        self.assertIn(f"pg_ext: {self.build} is not configured", out.stderr)
        self.assertIn(f"run 'make pg' (or 'make install') in {self.src}", out.stderr)
        # Said before compiling anything.
        objects = [f for f in os.listdir(os.path.join(self.src, "pg_ext")) if f.endswith(".o")]
        self.assertEqual(objects, [])

    def test_2_install_into_a_destdir_without_googletest_and_sqlite(self):
        dest = os.path.join(self.tmp.name, "dest")
        flags = (os.environ.get("CMAKE_FLAGS", "") + " " + HIDDEN).strip()
        # Debug (-O0): this is about what the build needs, and it compiles the core from scratch.
        out = self.run_make("install", f"DESTDIR={dest}", "JOBS=2", "CMAKE_BUILD_TYPE=Debug",
                            f"CMAKE_FLAGS={flags}")
        self.assertEqual(out.returncode, 0, out.stdout[-3000:] + out.stderr[-3000:])
        lib = os.path.relpath(pg_config("--pkglibdir"), "/")
        ext = os.path.relpath(os.path.join(pg_config("--sharedir"), "extension"), "/")
        expected = {os.path.join(lib, "envdb.so")} | {os.path.join(ext, n)
                                                      for n in expected_scripts(frozen_versions())}
        self.assertEqual(set(installed_files(dest)), expected)
        # What installing does not need was left out, and CMake says why.
        for absent in ("envdb.so", "libenvdb_sqlite.a", "envdb_unit_tests", "envdb_static_test"):
            self.assertFalse(os.path.exists(os.path.join(self.build, absent)), absent)
        cache = open(os.path.join(self.build, "CMakeCache.txt")).read()
        self.assertIn("ENVDB_NOT_BUILT:INTERNAL=the SQLite extension;the unit tests", cache)

        # make -C pg_ext works on its own now that the core is configured.
        out = self.run_make("-C", "pg_ext")
        self.assertEqual(out.returncode, 0, out.stderr)

        # Asking for the SQLite extension without SQLite is an error naming it.
        out = subprocess.run(["cmake", "-S", self.src, "-B", os.path.join(self.tmp.name, "b2"),
                              "-DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON", "-DENVDB_SQLITE=ON",
                              "-DENVDB_TESTS=OFF"], capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ENVDB_SQLITE=ON needs SQLite's headers (sqlite3.h)", out.stderr)


if __name__ == "__main__":
    unittest.main()
