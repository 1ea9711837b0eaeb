"""llmops_service: the targets of one service package."""

# Who may see a service's library: its own package, the tests and the benchmarks; never another
# service (tests/test_build_graph.py proves a violation fails the build).
SERVICE_VISIBILITY = [
    "//bench:__pkg__",
    "//tests:__pkg__",
]

def llmops_service(deps, data = [], visible_to = []):
    """`lib` (the service's code) and `server` (its process, `python -m services.<name>`).
    `deps`: the //libs layers it uses; `visible_to`: packages beyond tests and benchmarks."""
    native.py_library(
        name = "lib",
        srcs = native.glob(["**/*.py"]),  # a service may keep mechanisms in sub-packages
        data = data,
        imports = ["../.."],
        visibility = SERVICE_VISIBILITY + visible_to,
        deps = ["//services:package"] + deps,
    )
    native.py_binary(
        name = "server",
        srcs = ["__main__.py"],
        main = "__main__.py",
        deps = [":lib"],
    )
