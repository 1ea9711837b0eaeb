from __future__ import annotations

import functools

import pytest

from llmops.client import Client
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread
from services.retrieval.config import RetrievalConfig
from services.retrieval.server import build


class RetrievalHarness:
    def __init__(self, thread: ServerThread, keys: dict[str, str]):
        self.thread = thread
        self.clients = {role: Client({"retrieval": thread.address}, key) for role, key in keys.items()}

    def as_(self, role: str):
        return self.clients[role].retrieval

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.thread.stop()


@pytest.fixture
def retrieval(keys, key_store, tmp_path, spans):
    provider, _ = spans
    config = RetrievalConfig(database_url=f"sqlite:///{tmp_path / 'retrieval.db'}",
                             milvus_data_dir=str(tmp_path / "milvus"), sync_poll_s=0.2,
                             table_roots=(str(tmp_path),), model_roots=(str(tmp_path / "models"),),
                             table_allowed_prefixes=("s3://llmops-tests/",))  # the loopback S3 server's buckets
    factory = functools.partial(build, tracer_provider=provider, config=config)
    thread = ServerThread(lambda sc, ks: factory(sc, ks), key_store, ServerConfig(port=0)).start()
    harness = RetrievalHarness(thread, keys)
    yield harness
    harness.close()
