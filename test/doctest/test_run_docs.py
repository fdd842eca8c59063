"""The doc-test runner itself: a document whose runnable blocks work passes
(illustrations are not run), and one with a broken snippet or a wrong shown
output fails, naming the file and line of each failing block."""
import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "run_docs.py")


def run(*files):
    return subprocess.run([sys.executable, RUNNER, "--host", "sqlite", *[os.path.join(HERE, "fixtures", f)
                                                                          for f in files]],
                          capture_output=True, text=True, timeout=120)


class Runner(unittest.TestCase):
    def test_a_working_document_passes(self):
        out = run("good.md")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertTrue(out.stdout.rstrip().endswith("3 passed, 0 failed"), out.stdout)
        self.assertNotIn("this_is_not_sql", out.stdout)

    def test_a_broken_snippet_and_a_wrong_output_fail(self):
        out = run("broken.md")
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertTrue(out.stdout.rstrip().endswith("0 passed, 2 failed"), out.stdout)
        self.assertIn("FAIL test/doctest/fixtures/broken.md:4 (sqlite): it printed an error", out.stdout)
        self.assertIn("envdb_keyring_status_typo", out.stdout)
        self.assertIn("FAIL test/doctest/fixtures/broken.md:10 (sqlite): its output differs", out.stdout)

    def test_an_output_block_without_a_runnable_block_is_refused(self):
        path = os.path.join(HERE, "fixtures", "orphan-output.md")
        with open(path, "w") as f:
            f.write("text\n\n<!-- doctest: output -->\n```\n1\n```\n")
        try:
            out = run("orphan-output.md")
        finally:
            os.unlink(path)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("an output block follows no runnable block", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
