"""Deployment files stay in step with the services: each service `llmops up` starts has an image
recipe input, a compose entry and Kubernetes manifests with native gRPC probes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops.cli.stack import EXTRA_HTTP, HTTP_SERVICES, SERVICES
from llmops.core.localenv import DEFAULT_PORTS

INFRA = Path(__file__).resolve().parent.parent / "infra"


@pytest.mark.parametrize("service", SERVICES)
def test_service_has_requirements_compose_entry_and_manifests(service):
    assert (INFRA.parent / "requirements" / f"{service}.txt").exists()
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    entry = compose["services"][service]
    assert entry["build"]["args"]["SERVICE"] == service
    assert entry["environment"][f"LLMOPS_{service.upper()}_HOST"] == "0.0.0.0"
    docs = list(yaml.safe_load_all((INFRA / "k8s" / f"{service}.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    container = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    port = DEFAULT_PORTS[service]
    probe = "httpGet" if service in HTTP_SERVICES else "grpc"  # BentoML serves HTTP only
    assert container["readinessProbe"][probe]["port"] == port
    assert container["livenessProbe"][probe]["port"] == port
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[f"LLMOPS_{service.upper()}_HOST"] == "0.0.0.0"
    assert kinds["Service"]["spec"]["ports"][0]["port"] == port


@pytest.mark.parametrize("service", sorted(EXTRA_HTTP))
def test_http_beside_grpc_is_exposed(service):
    """The pipeline's OpenAI-compatible API and the feedback review app."""
    docs = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "k8s" / f"{service}.yaml").read_text())}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    setting, entry = EXTRA_HTTP[service]
    http_port = DEFAULT_PORTS[entry]
    assert {"name": "http", "containerPort": http_port} in container["ports"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[setting] == str(http_port) and env[f"LLMOPS_{service.upper()}_HTTP_HOST"] == "0.0.0.0"
    assert http_port in [p["port"] for p in docs["Service"]["spec"]["ports"]]
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())["services"][service]
    assert f"127.0.0.1:{http_port}:{http_port}" in compose["ports"]


def test_model_server_declares_its_gpu():
    docs = {d["kind"]: d for d in yaml.safe_load_all((INFRA / "k8s" / "modelserver.yaml").read_text())}
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_finetuning_has_a_gpu_worker_job_template():
    (job,) = yaml.safe_load_all((INFRA / "k8s" / "finetuning-job.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["kind"] == "Job" and container["command"][:3] == ["python", "-m", "services.finetuning.worker"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
