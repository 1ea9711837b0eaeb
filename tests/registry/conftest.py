from __future__ import annotations

import functools

import pytest

from llmops.client import Client
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread
from services.registry.config import RegistryConfig
from services.registry.server import build


class RegistryHarness:
    """A registry server in a thread plus one client per role."""

    def __init__(self, thread: ServerThread, keys: dict[str, str]):
        self.thread = thread
        self.clients = {role: Client({"registry": thread.address}, key) for role, key in keys.items()}
        self.anonymous = Client({"registry": thread.address}, "")

    def as_(self, role: str):
        return self.clients[role].registry

    def close(self) -> None:
        for c in [*self.clients.values(), self.anonymous]:
            c.close()
        self.thread.stop()


def start_registry(keys, key_store, tmp_path, database_url, provider=None, **overrides) -> RegistryHarness:
    config = RegistryConfig(database_url=database_url, artifact_root=str(tmp_path / "artifacts"), event_poll_s=0.2,
                            **overrides)
    factory = functools.partial(build, tracer_provider=provider, config=config)
    thread = ServerThread(lambda sc, ks: factory(sc, ks), key_store, ServerConfig(port=0)).start()
    return RegistryHarness(thread, keys)


@pytest.fixture
def registry(keys, key_store, tmp_path, spans):
    provider, _ = spans
    harness = start_registry(keys, key_store, tmp_path, f"sqlite:///{tmp_path / 'registry.db'}", provider,
                             max_artifact_bytes=32 * 1024 * 1024)
    yield harness
    harness.close()
