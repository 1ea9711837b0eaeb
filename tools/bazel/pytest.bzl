"""pytest_test: one py_test running pytest over a tests/ subfolder with the shared test support."""

def pytest_test(name, folder, deps, size = "medium"):
    native.py_test(
        name = name,
        size = size,
        srcs = ["//tools/bazel:pytest_main.py"] + native.glob([
            "tests/__init__.py",
            "tests/conftest.py",
            "tests/support.py",
            folder + "/*.py",
        ]),
        args = [folder],
        data = ["pyproject.toml"],
        legacy_create_init = False,
        main = "//tools/bazel:pytest_main.py",
        deps = deps,
    )
