"""The build graph shows the architecture: a service depends on the libraries and the contracts,
never on another service (Bazel visibility refuses it), and the registry's process needs only
the registry's code."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from llmops.testing.services import ROOT

pytestmark = pytest.mark.slow
SERVICES = ("registry", "retrieval", "prompt", "generation", "modelserver", "pipeline", "feedback", "finetuning")


def bazel(*args: str) -> subprocess.CompletedProcess:
    if os.environ.get("TEST_SRCDIR"):
        pytest.skip("runs bazel itself, so not from inside a Bazel test (make test-slow runs it)")
    if shutil.which("bazel") is None:
        pytest.skip("bazel is not installed (`.ci/run` installs Debian's bazel-bootstrap)")
    return subprocess.run(["bazel", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_a_service_depending_on_another_does_not_build():
    out = bazel("build", "--nobuild", "//services/prompt:visibility_probe")
    assert out.returncode != 0
    assert "//services/registry:lib" in out.stderr and "is not visible from target" in out.stderr


def test_the_registry_server_needs_only_the_registry_libraries_and_contracts():
    out = bazel("query", "kind('py_library|py_binary', deps(//services/registry:server))")
    assert out.returncode == 0, out.stderr
    targets = set(out.stdout.split())
    assert targets == {"//services/registry:server", "//services/registry:lib", "//services:package",
                       "//libs:core", "//libs:api"}
    for service in SERVICES:
        out = bazel("query", f"kind(py_library, deps(//services/{service}:server)) intersect //services/...")
        others = {t for t in out.stdout.split() if t not in (f"//services/{service}:lib", "//services:package")}
        assert out.returncode == 0 and not others, f"{service} depends on {others}"
