"""Model server settings, from `LLMOPS_MODELSERVER_*` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmops.core import localenv
from llmops.core.tls import ServerTLS


@dataclass(frozen=True)
class ModelServerConfig:
    host: str = "127.0.0.1"
    port: int = localenv.DEFAULT_PORTS["modelserver"]
    registry_address: str = ""  # default: LLMOPS_REGISTRY_ADDRESS or the local default
    api_key: str = ""  # the model server's own key for downloading from the registry
    token: str = ""  # when set, callers must send `Authorization: Bearer <token>`
    cache_dir: str = ""  # default: $LLMOPS_HOME/cache/models
    max_loaded: int = 2  # models kept in memory (a moved alias keeps old and new side by side)
    max_batch: int = 8  # rows decoding together
    max_waiting: int = 4  # rows waiting for a free one; past that, 429 with a retry delay
    preload: str = ""  # comma-separated model versions to load at start
    ready_file: str = ""
    tls_cert_file: str = ""  # HTTPS with this certificate (default LLMOPS_TLS_CERT_FILE)
    tls_key_file: str = ""

    def resolved_cache_dir(self) -> Path:
        path = Path(self.cache_dir) if self.cache_dir else localenv.home() / "cache" / "models"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def tls(self) -> ServerTLS | None:
        return ServerTLS.of(self.tls_cert_file, self.tls_key_file)

    def resolved_registry_address(self) -> str:
        return self.registry_address or localenv.service_address("registry")
