"""Runs pytest on the paths given as arguments (the main of every Bazel py_test)."""

import os
import sys

import pytest

if __name__ == "__main__":
    os.environ.setdefault("HOME", os.environ.get("TEST_TMPDIR", "/tmp"))
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
