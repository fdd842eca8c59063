"""The worker's log while a registered database host is down: the
convergence pass tries it every 2 s, but its failure is logged once (then at
most every 5 minutes while it lasts, with a count; shared/failure_log.cpp,
unit-tested in test/unit/failure_log_test.cpp) and once more when the host
works again.

The host is a loopback listener of this test that counts the connections it
refuses, so the test knows how many times the worker tried; the server is a
throwaway cluster started here, whose log file the test reads."""
import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "parity"))
from hosts import postgres_available  # noqa: E402
from test_pg_driver import SECOND_PASSWORD, ControlPlane, SecondServer  # noqa: E402


def enabled():
    return os.geteuid() == 0 and (postgres_available() or "ENVDB_PG_BIN" in os.environ)


class RefusingHost:
    """Accepts TCP connections on loopback and closes each at once, as a
    host whose Postgres is gone would fail; counts them."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.open = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while self.open:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.count += 1
            conn.close()

    def close(self):
        self.open = False
        self.sock.close()


@unittest.skipUnless(enabled(), "starts its own cluster (make check runs it as root)")
class HostDownLogging(unittest.TestCase):
    def setUp(self):
        self.server = SecondServer()
        self.cp = ControlPlane("hostlog", **self.server.connect_args())
        self.host = RefusingHost()

    def tearDown(self):
        self.host.close()
        self.cp.close()
        self.server.stop()

    def log(self):
        with open(os.path.join(self.server.workdir, "log"), errors="replace") as f:
            return f.read()

    def test_a_host_that_stays_down_is_logged_once_and_again_when_it_works(self):
        org = self.cp.call("provision_organization", "logs", "Logs", None, None, "turso")["organization"]["id"]
        host = self.cp.call("add_database_host", "down", "eu", "127.0.0.1", self.host.port, "postgres",
                            SECOND_PASSWORD, "postgres", None, False)  # down: registered untested
        host_id = host["host"]["id"]
        # A database placed on it: every convergence pass now tries the host.
        env_id = self.cp.call("provision_environment", org, "eu-dev", None, None, "eu", "postgres")[
            "environment"]["id"]
        what = f"envdb: converging the logins on database host {host_id}"

        def lines(kind):
            return [line for line in self.log().splitlines() if what + kind in line]
        deadline = time.monotonic() + 30
        while not lines(" failed (") and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(len(lines(" failed (")), 1, self.log()[-3000:])
        self.assertIn("logged at most every 5 min", lines(" failed (")[0])
        # Ten seconds of passes (one every 2 s, plus the create_database job's
        # retries), measured by this clock: many tries, no new line.
        tries = self.host.count
        started = time.monotonic()
        while time.monotonic() - started < 10:
            time.sleep(0.5)
        self.assertGreaterEqual(self.host.count - tries, 4, "the worker did not keep trying the host")
        self.assertEqual(len(lines("")), 1, lines(""))  # every line about the host, in any wording

        # The host back (its address now this very server): one line.
        self.cp.one("update envdb.sys_database_host set port = %s where id = %s returning id",
                    (self.server.port, host_id))
        deadline = time.monotonic() + 30
        while not lines(" works again") and time.monotonic() < deadline:
            time.sleep(0.2)
        back = lines(" works again")
        self.assertEqual(len(back), 1, self.log()[-3000:])
        self.assertRegex(back[0], r"works again after \d+ failures in \d+ s \(\d+ not logged\)")
        failures = int(back[0].split("works again after ")[1].split()[0])
        self.assertGreaterEqual(failures, 5)
        # The job that waited for the host finishes there.
        self.cp.wait_status(env_id, "active", timeout=90)
        self.assertEqual(len(lines(" failed (")), 1)


if __name__ == "__main__":
    unittest.main()
