"""Model folders from the registry, cached on local disk by artifact digest: a version is
downloaded once (every file's sha256 checked by the client), moved into place atomically, and
reused by every later load of the same content."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from llmops.client.registry import RegistryClient
from llmops.core import channels

log = logging.getLogger(__name__)
COMPLETE = ".complete"


class ModelFetcher:
    def __init__(self, registry_address: str, api_key: str, cache_dir: Path):
        self._channel = channels.sync_channel(registry_address, api_key, default_timeout_s=600)
        self._registry = RegistryClient(self._channel)
        self._cache = cache_dir

    def fetch(self, ref: str) -> tuple[str, Path]:
        """(version name, local folder) for a registry reference (`name@version|alias` or
        `models/name/versions/N`)."""
        version = self._registry.get_version(ref)
        digest = version.artifact.digest.removeprefix("sha256:")
        if not digest:
            raise FileNotFoundError(f"{version.name} has no artifact to serve")
        folder = self._cache / digest
        if (folder / COMPLETE).exists():
            return version.name, folder
        staging = self._cache / f".{digest}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        log.info("downloading %s (%d bytes) into the model cache", version.name, version.artifact.size_bytes)
        self._registry.download_version(version.name, staging)
        (staging / COMPLETE).write_text(version.name)
        try:
            os.replace(staging, folder)
        except OSError:  # another process finished the same download first
            shutil.rmtree(staging, ignore_errors=True)
        return version.name, folder

    def close(self) -> None:
        self._channel.close()
