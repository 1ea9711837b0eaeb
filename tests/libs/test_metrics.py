"""Every service process serves Prometheus metrics on a port of its own: requests by status code
and latency per RPC."""

from __future__ import annotations

import httpx
import pytest

from llmops.client import Client
from llmops.testing.services import ServiceProcess, code_of, make_keys


@pytest.fixture
def registry(tmp_path):
    keys = make_keys(tmp_path / "keys.json")
    proc = ServiceProcess("registry", {"LLMOPS_HOME": str(tmp_path)}, tmp_path).start()
    yield proc, keys
    proc.terminate()


def sample(text: str, name: str, **labels) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{{{want}}}")


def test_requests_codes_and_latency_per_rpc(registry):
    proc, keys = registry
    assert proc.metrics_address
    admin = Client({"registry": proc.address}, keys["admin"])
    admin.registry.create_model("m1")
    for _ in range(3):
        admin.registry.get_model("m1")
    code_of(admin.registry.get_model, "missing")
    text = httpx.get(f"http://{proc.metrics_address}/metrics").text
    assert sample(text, "llmops_rpc_requests_total", service="RegistryService", method="GetModel", code="OK") == 3
    assert sample(text, "llmops_rpc_requests_total", service="RegistryService", method="GetModel",
                  code="NOT_FOUND") == 1
    assert sample(text, "llmops_rpc_duration_seconds_count", service="RegistryService", method="GetModel") == 4
    bad = Client({"registry": proc.address}, "llm_unknown")
    code_of(bad.registry.get_model, "m1")
    text = httpx.get(f"http://{proc.metrics_address}/metrics").text
    assert sample(text, "llmops_rpc_requests_total", method="GetModel", code="UNAUTHENTICATED") == 1
    admin.close()
    bad.close()
