"""What the installed Postgres extension exposes matches docs/reference.md, and
every function is hardened."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sqlite"))
from envdb_sqlite import documented_functions  # noqa: E402
from hosts import PostgresHost, postgres_available  # noqa: E402


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class Surface(unittest.TestCase):
    def setUp(self):
        self.h = PostgresHost()

    def tearDown(self):
        self.h.close()

    def test_functions_match_the_reference(self):
        rows = self.h.sql("select distinct proname from pg_proc where pronamespace = 'envdb'::regnamespace "
                          "and prorettype <> 'trigger'::regtype")
        documented = {n for n, hosts in documented_functions().items() if hosts == "both"}
        self.assertEqual({r[0] for r in rows}, documented)

    def test_every_function_is_security_definer_with_a_pinned_search_path(self):
        rows = self.h.sql("select proname from pg_proc where pronamespace = 'envdb'::regnamespace "
                          "and prorettype <> 'trigger'::regtype and (not prosecdef or proconfig is null "
                          "or not 'search_path=pg_catalog, pg_temp' = any(proconfig))")
        self.assertEqual(rows, [])

    def test_public_cannot_execute_anything(self):
        rows = self.h.sql("select p.proname from pg_proc p where p.pronamespace = 'envdb'::regnamespace "
                          "and has_function_privilege('public', p.oid, 'execute')")
        self.assertEqual(rows, [])


if __name__ == "__main__":
    unittest.main()
