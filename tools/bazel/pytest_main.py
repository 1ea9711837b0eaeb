"""Runs pytest on the paths given as arguments (the main of every Bazel py_test); `--fast` runs
the fast lane only (tests not marked slow), where a folder whose tests are all slow passes with
nothing to run."""

import os
import sys

import pytest

NO_TESTS_COLLECTED = 5

if __name__ == "__main__":
    os.environ.setdefault("HOME", os.environ.get("TEST_TMPDIR", "/tmp"))
    args = sys.argv[1:]
    fast = "--fast" in args
    code = pytest.main(["-q", "-p", "no:cacheprovider", *(["-m", "not slow"] if fast else []),
                        *(a for a in args if a != "--fast")])
    if fast and code == NO_TESTS_COLLECTED:
        print("every test here is in the slow lane (make test-slow, or the target's _slow twin)")
        code = 0
    sys.exit(code)
