"""Runs the unittest modules named on the command line (or every test_*.py in
a folder) and ends with the line 'N passed, M failed' that make check sums.
With ENVDB_NO_SKIPS=1 (make check sets it) a skipped test counts as failed:
make check provides everything the suites need, so a skip there is coverage
silently lost. The slowest tests are listed before that line, to show where
make check's time goes."""
import os
import sys
import time
import unittest


class TimedResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.durations = []

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        self.durations.append((time.monotonic() - self._started, test.id()))
        super().stopTest(test)


def main() -> int:
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for target in sys.argv[1:]:
        if os.path.isdir(target):
            suite.addTests(loader.discover(target, pattern="test_*.py", top_level_dir=target))
        else:
            folder, name = os.path.split(os.path.abspath(target))
            sys.path.insert(0, folder)
            suite.addTests(loader.loadTestsFromName(name[:-3]))
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout, resultclass=TimedResult).run(suite)
    slowest = sorted(result.durations, reverse=True)[:10]
    if slowest and slowest[0][0] >= 1:
        print("slowest: " + ", ".join(f"{name.split('.', 1)[-1]} {secs:.1f} s" for secs, name in slowest))
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    if os.environ.get("ENVDB_NO_SKIPS") == "1" and result.skipped:
        for test, reason in result.skipped:
            print(f"FAIL: {test} was skipped under make check: {reason}")
        failed += len(result.skipped)
        result.skipped = []
    print(f"{result.testsRun - failed - len(result.skipped)} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
