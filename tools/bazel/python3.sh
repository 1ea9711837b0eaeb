#!/bin/sh
# The virtualenv's python3, first on PATH under Bazel (see .bazelrc.user).
exec python3 "$@"
