"""META.json, the PGXN distribution metadata: valid JSON with the keys the
PGXN meta spec 1.0.0 requires, and the version of shared/core/version.hpp in the
distribution, in every extension it provides and in their control files."""
import json
import os
import re
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LICENSES = {"agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
            "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1",
            "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source", "restricted",
            "unrestricted", "unknown"}
SEMVER = r"^\d+\.\d+\.\d+(-[0-9A-Za-z-]+)?$"


def version():
    return re.search(r'kVersion = "([^"]+)"', open(os.path.join(ROOT, "shared", "core", "version.hpp")).read()).group(1)


class Meta(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "META.json"), encoding="utf-8") as f:
            self.meta = json.load(f)

    def test_required_keys_of_the_meta_spec(self):
        m = self.meta
        for key in ("name", "abstract", "maintainer", "license", "provides", "meta-spec", "version"):
            self.assertIn(key, m)
        self.assertEqual(m["name"], "envdb")
        self.assertEqual(m["meta-spec"]["version"], "1.0.0")
        self.assertIn(m["license"], LICENSES)
        self.assertRegex(m["version"], SEMVER)
        self.assertIn(m.get("release_status", "stable"), {"stable", "testing", "unstable"})
        self.assertTrue(m["maintainer"])

    def test_versions_match_the_one_version(self):
        v = version()
        self.assertEqual(self.meta["version"], v)
        self.assertEqual(set(self.meta["provides"]), {"envdb", "envdb_data"})
        for name, ext in self.meta["provides"].items():
            self.assertEqual(ext["version"], v, name)
            self.assertTrue(ext["abstract"])
            control = open(os.path.join(ROOT, ext["file"]), encoding="utf-8").read()
            self.assertIn(f"default_version = '{v}'", control, ext["file"])
            self.assertTrue(os.path.exists(os.path.join(ROOT, ext["docfile"])), ext["docfile"])


if __name__ == "__main__":
    unittest.main()
