"""How the Python suites call an envdb function on either host: one way to turn
Python values into SQL arguments (the marshalling), to build the SELECT, and to
turn an envdb error into its contract code word. test/parity/hosts.py builds its
hosts on this; the SQLite and Postgres suites use it directly.

    Python value       SQLite argument          Postgres argument
    dict, list         JSON text                %s::jsonb
    bool               1 / 0                    boolean
    Seconds(n)         integer n                make_interval(secs => n)
    None               NULL (bound)             NULL (written into the call)
    Raw(expr)          expr as written          (SQLite only)
    anything else      bound as it is           bound as it is

The real clients under test/clients stay standalone on purpose: each shows
what a user's own program writes, with nothing of the test tree."""
import json
import re

CODE_RE = re.compile(r"(invalid_parameter|not_found|already_exists|invalid_transition|"
                     r"permission_denied|key_unavailable|decrypt_failed|schema_mismatch|conflict|internal): (.*)",
                     re.S)


class HostError(Exception):
    """An envdb error from either host: its code word and the first line of its sentence."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def host_error(text):
    """The HostError for a host's error text; a message without a code word
    (the host refused the call before envdb ran) is code "unknown"."""
    m = CODE_RE.search(text)
    if not m:
        return HostError("unknown", text.strip())
    return HostError(m.group(1), m.group(2).strip().splitlines()[0])


class Seconds(int):
    """A duration argument: integer seconds in SQLite, an interval in Postgres."""


class Request(dict):
    """The request form: one JSON object argument."""


class Raw(str):
    """A SQL expression written into a SQLite call as it is (for text that is
    not valid UTF-8, which Python cannot bind as text)."""


def decode(value):
    """A JSON answer that arrived as text (SQLite returns JSON as text) decoded;
    any other value as it is."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def sqlite_statement(fn, args):
    """`select envdb_<fn>(...)` and its bound values."""
    parts, values = [], []
    for a in args:
        if isinstance(a, Raw):
            parts.append(str(a))
            continue
        parts.append("?")
        if isinstance(a, (dict, list)):
            values.append(json.dumps(a))
        elif isinstance(a, bool):
            values.append(1 if a else 0)
        else:
            values.append(a)
    return f"select envdb_{fn}({', '.join(parts)})", values


def pg_statement(fn, args, named=None):
    """`SELECT envdb.<fn>(...)` and its bound values (psycopg2's %s); `named`
    arguments are passed as `name => value`."""
    parts, values = [], []
    for a in args:
        if isinstance(a, (dict, list)):
            parts.append("%s::jsonb")
            values.append(json.dumps(a))
        elif isinstance(a, Seconds):
            parts.append("make_interval(secs => %s)")
            values.append(int(a))
        elif a is None:
            parts.append("NULL")
        else:
            parts.append("%s")
            values.append(a)
    for k, v in (named or {}).items():
        parts.append(f"{k} => %s")
        values.append(v)
    return f"SELECT envdb.{fn}({', '.join(parts)})", values


def sqlite_call(db, fn, *args):
    """envdb_<fn>(args) on the sqlite3 connection `db`: the value as SQLite
    returns it (JSON as text); an error raises HostError."""
    import sqlite3
    sql, values = sqlite_statement(fn, args)
    try:
        return db.execute(sql, values).fetchone()[0]
    except sqlite3.Error as e:
        raise host_error(str(e)) from None


def pg_call(conn, fn, *args):
    """envdb.<fn>(args) on the psycopg2 connection `conn`: the value as
    psycopg2 returns it (jsonb already decoded); an error raises HostError."""
    import psycopg2
    sql, values = pg_statement(fn, args)
    cur = conn.cursor()
    try:
        cur.execute(sql, values)
        return cur.fetchone()[0]
    except psycopg2.Error as e:
        raise host_error(e.pgerror or str(e)) from None
