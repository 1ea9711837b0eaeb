"""The generation stack for tests: the registry in a thread with the demo model (trained for a
few steps) registered twice, a real model server process (BentoML + DeepSpeed-inference), the
generation service in a thread following registry aliases, and a fake OpenAI-compatible
provider on loopback. Built once per module: the model server takes seconds to start."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from llmops.client import Client
from llmops.core import auth
from llmops.testing.fake_provider import FakeProvider
from llmops.testing.services import ServerThread, ServiceProcess, make_keys
from services.generation.config import GenerationConfig
from services.generation.server import build as build_generation
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry

DOCS = Path(__file__).resolve().parents[2] / "docs"
CANARY = "sk-canary-7f3a9c1e5b2d4086"  # the provider key: must never appear outside its header
KEY_VAR = "LLMOPS_PROVIDER_TEST_KEY"


def start_model_server(home: Path, registry_address: str, key: str, name: str = "modelserver",
                       **env_overrides: str) -> ServiceProcess:
    env = {"LLMOPS_HOME": str(home), "LLMOPS_REGISTRY_ADDRESS": registry_address, "LLMOPS_MODELSERVER_API_KEY": key,
           "LLMOPS_MODELSERVER_MAX_LOADED": "3", "LLMOPS_TRACE_DB": str(home / "traces.db"),
           "LLMOPS_MODELSERVER_CACHE_DIR": str(home / "model-cache"), **env_overrides}
    return ServiceProcess(name, env, home, module="services.modelserver", prefix="LLMOPS_MODELSERVER").start(timeout=180)


class GenStack:
    def __init__(self, home: Path, demo_model: Path):
        self.home = home
        self.keys = make_keys(home / "keys.json")
        self.key_store = auth.KeyStore(home / "keys.json")
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
            database_url=f"sqlite:///{home / 'reg.db'}", artifact_root=str(home / 'art'), event_poll_s=0.1)),
            self.key_store).start()
        admin = Client({"registry": self.registry.address}, self.keys["admin"])
        admin.registry.create_model("demo")
        for _ in range(2):  # two versions (same weights): enough to see splits and alias moves
            v = admin.registry.upload_folder("demo", demo_model)
            admin.registry.approve(v.name)
        admin.registry.set_alias("demo", "production", 1)
        admin.registry.set_alias("demo", "a", 1)
        admin.registry.set_alias("demo", "b", 2)
        admin.close()
        self.model_server = start_model_server(home, self.registry.address, self.keys["reader"])
        self.fake = FakeProvider(CANARY).start()
        os.environ[KEY_VAR] = CANARY
        self.generation = self.start_generation(self.model_server.address)
        addresses = {"registry": self.registry.address, "generation": self.generation.address}
        self.clients = {role: Client(addresses, key) for role, key in self.keys.items()}
        self.http = httpx.Client(base_url=f"http://{self.model_server.address}", timeout=30)

    def start_generation(self, model_server: str, **overrides) -> ServerThread:
        config = GenerationConfig(database_url=f"sqlite:///{self.home / f'gen-{len(overrides)}-{model_server}.db'}",
                                  registry_address=self.registry.address, api_key=self.keys["reader"],
                                  model_server_address=model_server, usage_flush_s=0.2,
                                  **{"provider_allowed_hosts": ("127.0.0.1",), **overrides})
        return ServerThread(functools.partial(build_generation, tracer_provider=self.provider, config=config),
                            self.key_store).start()

    def admin(self):
        return self.clients["admin"]

    def status(self) -> dict:
        return self.http.post("/status", json={}).json()

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.http.close()
        self.generation.stop()
        self.fake.stop()
        os.environ.pop(KEY_VAR, None)
        if self.model_server.proc and self.model_server.proc.poll() is None:
            self.model_server.terminate()
        self.registry.stop()
        self.provider.shutdown()


@pytest.fixture(scope="module")
def gen(tmp_path_factory, demo_model):
    home = tmp_path_factory.mktemp("genstack")
    stack = GenStack(home, demo_model)
    yield stack
    stack.close()
    shutil.rmtree(home / "model-cache", ignore_errors=True)
