"""Plain `make` on a machine without a build dependency stops before CMake,
names every missing piece at once and the one command that installs them
(`make setup`), instead of failing inside CMake at the first one."""
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class MissingDependencies(unittest.TestCase):
    def make(self, path, **env):
        with tempfile.TemporaryDirectory() as d:
            build = os.path.join(d, "b")
            out = subprocess.run(["make", "--no-print-directory", "-C", ROOT, f"BUILD={build}", "core"],
                                 capture_output=True, text=True, env={**os.environ, "PATH": path, **env}, timeout=120)
            self.assertFalse(os.path.exists(build), "CMake ran although a dependency is missing")
        return out

    def test_a_missing_command_and_header_are_named_with_make_setup(self):
        with tempfile.TemporaryDirectory() as farm:
            # Every program of /usr/bin but cmake.
            for name in os.listdir("/usr/bin"):
                if name != "cmake":
                    os.symlink(os.path.join("/usr/bin", name), os.path.join(farm, name))
            # A compiler that cannot find nlohmann/json.hpp.
            cxx = os.path.join(farm, "cxx-without-json")
            with open(cxx, "w") as f:
                f.write('#!/bin/sh\ninput=$(cat)\ncase "$input" in *nlohmann*) exit 1 ;; esac\n'
                        'printf "%s\\n" "$input" | exec c++ "$@"\n')
            os.chmod(cxx, 0o755)
            out = self.make(f"{farm}:/usr/sbin:/sbin", CXX=cxx)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("cmake (command)", out.stderr)
        self.assertIn("nlohmann/json.hpp (header)", out.stderr)
        self.assertNotIn("sqlite3.h", out.stderr)  # only what is missing
        self.assertIn("make setup", out.stderr)
        self.assertNotIn("CMake Error", out.stdout + out.stderr)

    def test_make_install_asks_only_for_what_installing_needs(self):
        with tempfile.TemporaryDirectory() as d:
            # A compiler that finds neither SQLite nor GoogleTest.
            cxx = os.path.join(d, "cxx-without-sqlite-gtest")
            with open(cxx, "w") as f:
                f.write('#!/bin/sh\ninput=$(cat)\ncase "$input" in *sqlite3.h*|*gtest/*) exit 1 ;; esac\n'
                        'printf "%s\\n" "$input" | exec c++ "$@"\n')
            os.chmod(cxx, 0o755)
            script = os.path.join(ROOT, "scripts", "check-deps.sh")
            env = {**os.environ, "CXX": cxx}
            pg = subprocess.run([script, "pg"], capture_output=True, text=True, env=env)
            self.assertEqual((pg.returncode, pg.stderr), (0, ""))
            everything = subprocess.run([script], capture_output=True, text=True, env=env)
            self.assertEqual(everything.returncode, 1)
            self.assertIn("sqlite3.h (header)", everything.stderr)
            self.assertIn("gtest/gtest.h (header)", everything.stderr)
            # Turned off in CMake's flags, neither is asked for.
            off = subprocess.run([script, "all"], capture_output=True, text=True,
                                 env={**env, "CMAKE_FLAGS": "-DENVDB_TESTS=OFF -DENVDB_SQLITE=OFF"})
            self.assertEqual((off.returncode, off.stderr), (0, ""))

    def test_nothing_missing_says_nothing(self):
        out = subprocess.run([os.path.join(ROOT, "scripts", "check-deps.sh")], capture_output=True, text=True)
        self.assertEqual((out.returncode, out.stderr), (0, ""))


if __name__ == "__main__":
    unittest.main()
