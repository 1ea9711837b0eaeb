"""The serving stack the generation benchmarks measure: a fresh home with keys, the registry in the
benchmark process, and the model server and the generation gateway as their own processes, as
deployed. `register(registry_client)` puts the models in the registry before the servers start."""

from __future__ import annotations

import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from llmops.client import Client
from llmops.core import auth
from llmops.testing.services import ServerThread, ServiceProcess
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry


@dataclass
class ServingStack:
    home: Path
    admin_key: str
    modelserver: ServiceProcess
    gateway: ServiceProcess


@contextmanager
def serving_stack(prefix: str, register: Callable[[Client], object],
                  gateway_env: dict[str, str] | None = None) -> Iterator[ServingStack]:
    home = Path(tempfile.mkdtemp(prefix=f"llmops-bench-{prefix}-"))
    os.environ["LLMOPS_HOME"] = str(home)
    keys_file = home / "keys.json"
    admin_key = auth.add_key(keys_file, "bench", "admin")
    service_key = auth.add_key(keys_file, "service", "reader")
    registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
        database_url=f"sqlite:///{home / 'reg.db'}", artifact_root=str(home / "art"))),
        auth.KeyStore(keys_file)).start()
    env = {"LLMOPS_HOME": str(home), "LLMOPS_REGISTRY_ADDRESS": registry.address}
    procs: list[ServiceProcess] = []
    try:
        with Client({"registry": registry.address}, admin_key) as c:
            register(c)
        ms = ServiceProcess("modelserver", {**env, "LLMOPS_MODELSERVER_API_KEY": service_key}, home,
                            prefix="LLMOPS_MODELSERVER").start(timeout=180)
        procs.append(ms)
        gw = ServiceProcess("generation", {**env, "LLMOPS_GENERATION_API_KEY": service_key,
                                           "LLMOPS_GENERATION_KEYS_FILE": str(keys_file),
                                           "LLMOPS_GENERATION_MODEL_SERVER_ADDRESS": ms.address,
                                           **(gateway_env or {})}, home).start()
        procs.append(gw)
        yield ServingStack(home, admin_key, ms, gw)
    finally:
        for p in reversed(procs):
            if p.proc and p.proc.poll() is None:
                p.terminate()
        registry.stop()


def promote(client: Client, version) -> None:
    """Approve a version and point its model's `production` at it."""
    client.registry.approve(version.name)
    client.registry.set_alias(version.name.split("/")[1], "production", version.version)
