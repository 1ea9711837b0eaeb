"""pytest_test: the test targets of one tests/ folder (or of the files at the top of tests/)."""

def pytest_test(name, paths, deps, data = [], support = []):
    """Two py_tests over `paths` (test folders or files, relative to tests/): `name`, the fast lane
    as `make test` runs it (part of `bazel test //...`), and `name` + "_slow", every test
    including those marked slow (tagged manual: `bazel test //tests:<name>_slow`; CI runs the
    slow lane with `make test-slow`). `support`: helper files at the top of tests/."""
    files = []
    for p in paths:
        files += [p] if p.endswith(".py") else native.glob([p + "/*.py"])
    for lane, fast in [(name, True), (name + "_slow", False)]:
        native.py_test(
            name = lane,
            size = "large" if fast else "enormous",
            srcs = ["//tools/bazel:pytest_main.py", "__init__.py", "conftest.py"] + support + files,
            args = (["--fast"] if fast else []) + ["tests/" + p for p in paths],
            data = data + ["//:pyproject.toml"],
            legacy_create_init = False,
            main = "//tools/bazel:pytest_main.py",
            tags = [] if fast else ["manual"],
            deps = deps,
        )
