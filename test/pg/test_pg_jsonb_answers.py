"""envdb's jsonb answers are built from the core's JSON text without jsonb_in
(pg_ext/jsonb_build.cpp). Each must be, byte for byte, the value jsonb_in
makes of the same text: the test stores both in a table and compares the
stored tuples (pageinspect), and looks every top-level key up with jsonb_exists
(the `?` operator: a binary search over the keys' sorted order). The answers cover what the
reader handles itself (escapes, numbers of every form, booleans, null,
nesting, empty containers, keys of equal length) and what it hands to
jsonb_in (text beyond ASCII, \\u escapes)."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import PostgresHost, postgres_available  # noqa: E402

METADATA = {
    "n": 1, "neg": -2, "zero": 0, "f": 1.5, "tiny": -0.000125, "huge": 1e300, "big": 123456789012345678901234567890,
    "t": True, "no": False, "z": None,
    "arr": [1, "two", [], {}, [None, [True]]],
    "nested": {"deep": {"deeper": [None, {"k": "v"}]}, "": "empty key"},
    "esc": "q\"b\\s/\b\f\n\r\t",
    "ab": 1, "ba": 2, "aa": 3, "b": 4, "a": 5,
}
# What the reader hands to jsonb_in: text beyond ASCII, and control characters
# (which the core writes as \u escapes).
BEYOND = dict(METADATA, uni="\u00e9 \u2713", ctl="\u0001\u001f")


@unittest.skipUnless(postgres_available(), "needs the pg_virtualenv cluster (make check)")
class JsonbAnswers(unittest.TestCase):
    def setUp(self):
        self.h = PostgresHost()
        self.h.sql("create extension if not exists pageinspect")
        self.h.sql("create table public.answers (n int, j jsonb)")
        self.h.sql("alter table public.answers alter column j set storage plain")
        self.n = 0

    def tearDown(self):
        self.h.close()

    def keep(self, select, params=()):
        """Stores the jsonb `select` answers, then the same text through jsonb_in."""
        self.n += 1
        self.h.sql(f"insert into public.answers select {self.n}, ({select})", params)
        self.h.sql("insert into public.answers select -n, j::text::jsonb from public.answers where n = %s",
                   (self.n,))

    def check(self):
        tuples = self.h.sql("select (select n from public.answers where ctid = ('(' || p || ',' || lp || ')')::tid), "
                            "encode(substring(t_data from 5), 'hex') "
                            "from generate_series(0, pg_relation_size('public.answers') / 8192 - 1) p, "
                            "heap_page_items(get_raw_page('public.answers', p)) where lp_flags = 1")
        by_n = {n: data for n, data in tuples}
        for n in range(1, self.n + 1):
            with self.subTest(answer=n):
                self.assertIn(n, by_n)
                self.assertEqual(by_n[n], by_n[-n])
                ok, = self.h.sql("select bool_and(jsonb_exists(j, k) and j = j::text::jsonb) "
                                 "from public.answers, jsonb_object_keys(case jsonb_typeof(j) when 'object' "
                                 "then j else '{}' end) k where n = %s", (n,))[0]
                self.assertIn(ok, (True, None))

    def test_answers_are_what_jsonb_in_makes_of_their_text(self):
        meta = json.dumps(METADATA)
        self.keep("select envdb.provision_organization('acme', %s, driver => 'turso', metadata => %s::jsonb)",
                  ('Acme "quoted" \\ back/slash', meta))
        self.keep("select envdb.provision_organization('other', 'Other', driver => 'turso', "
                  "metadata => %s::jsonb)", (json.dumps(BEYOND),))
        env = self.h.sql("select j -> 'defaultEnvironment' -> 'environment' ->> 'id' from public.answers "
                         "where n = 1")[0][0]
        self.keep("select envdb.get_environment(%s)", (env,))
        jobs = self.h.sql("select j ->> 'id' from jsonb_array_elements(envdb.claim_provisioning_jobs('turso', 10)) j")
        self.assertEqual(len(jobs), 2)
        tokens = json.dumps({"readwrite": "tok\"en\\1", "readonly": "r", "admin": "a"})
        for (job,) in jobs:
            self.keep("select envdb.complete_provisioning_job(%s, 'libsql://acme', %s::jsonb)", (job, tokens))
        self.keep("select envdb.resolve_environment(%s)", (env,))
        self.keep("select envdb.resolve_environment(%s)", (env,))  # served from the resolve cache
        self.keep("select envdb.resolve_environment(%s, 'readonly')", (env,))
        self.keep("select envdb.keyring_status()")
        self.keep("select envdb.claim_provisioning_jobs('turso', 10)")  # an empty array
        self.check()
        token = self.h.sql("select envdb.resolve_environment(%s) -> 'credential' ->> 'token'", (env,))[0][0]
        self.assertEqual(token, 'tok"en\\1')


if __name__ == "__main__":
    unittest.main()
