from __future__ import annotations

import functools
from pathlib import Path

import fsspec
import pytest

from llmops.client import Client
from llmops.core.blobstore import BlobStore
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread
from services.registry.config import RegistryConfig
from services.registry.server import build


class RegistryHarness:
    """A registry server in a thread plus one client per role, and what it stored."""

    def __init__(self, thread: ServerThread, keys: dict[str, str], config: RegistryConfig):
        self.thread = thread
        self.blobs = BlobStore(config.resolved_artifact_root(), Path(config.spool_dir) if config.spool_dir else None)
        self.clients = {role: Client({"registry": thread.address}, key) for role, key in keys.items()}
        self.anonymous = Client({"registry": thread.address}, "")

    def stored(self) -> list[str]:
        """The blob keys under the artifact root (a folder or a bucket)."""
        fs, root = fsspec.core.url_to_fs(self.blobs.url)
        return fs.glob(f"{root}/sha256/*/*")

    def staged(self) -> list[Path]:
        return list(self.blobs.spool_dir.iterdir())

    def as_(self, role: str):
        return self.clients[role].registry

    def close(self) -> None:
        for c in [*self.clients.values(), self.anonymous]:
            c.close()
        self.thread.stop()


def start_registry(keys, key_store, tmp_path, database_url, provider=None, **overrides) -> RegistryHarness:
    config = RegistryConfig(database_url=database_url, event_poll_s=0.2,
                            **{"artifact_root": str(tmp_path / "artifacts"), **overrides})
    factory = functools.partial(build, tracer_provider=provider, config=config)
    thread = ServerThread(lambda sc, ks: factory(sc, ks), key_store, ServerConfig(port=0)).start()
    return RegistryHarness(thread, keys, config)


@pytest.fixture(params=["folder", "s3"])
def registry(request, keys, key_store, tmp_path, spans):
    """The registry with its artifacts in a local folder, and again in S3 (a loopback server)."""
    provider, _ = spans
    root = str(tmp_path / "artifacts") if request.param == "folder" else \
        f"{request.getfixturevalue('s3_location')}/artifacts"
    spool = "" if request.param == "folder" else str(tmp_path / "spool")
    harness = start_registry(keys, key_store, tmp_path, f"sqlite:///{tmp_path / 'registry.db'}", provider,
                             max_artifact_bytes=32 * 1024 * 1024, artifact_root=root, spool_dir=spool)
    yield harness
    harness.close()
