"""Generation settings, from `LLMOPS_GENERATION_*` variables; the registry's address comes from
`LLMOPS_REGISTRY_ADDRESS` and the model server's from `LLMOPS_MODELSERVER_ADDRESS`."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path

from llmops.core import localenv
from llmops.core.tls import client_from_env


@dataclass(frozen=True)
class GenerationConfig:
    database_url: str = ""  # default: SQLite under $LLMOPS_HOME/data/generation
    registry_address: str = ""
    api_key: str = ""  # the service's own key: resolves aliases and follows registry events
    model_server_address: str = ""  # default model server (host:port, HTTP)
    model_servers: str = ""  # JSON {"model-id": "host:port"} for models served elsewhere
    model_server_token: str = ""
    # Routes may read only these variables as `env:` credentials, and call loopback, link-local or
    # metadata hosts only when listed (host or host:port).
    credential_env_prefixes: tuple[str, ...] = ("LLMOPS_PROVIDER_",)
    provider_allowed_hosts: tuple[str, ...] = ()
    secrets_dir: str = ""  # `secret:<name>` credentials are files here (default $LLMOPS_HOME/secrets)
    capture_content: bool = False  # prompt and completion text on spans
    default_max_tokens: int = 256
    request_timeout_s: float = 300.0
    connect_timeout_s: float = 2.0
    resolve_ttl_s: float = 5.0  # alias resolution cache when no registry events are followed
    render_workers: int = 2  # sandbox processes rendering model chat templates (started when first needed)
    usage_flush_s: float = 1.0
    # Limits and budgets shared by every replica (redis://host:port/db); default LLMOPS_REDIS_URL,
    # and without either each replica enforces its own in memory.
    redis_url: str = ""

    def resolved_redis_url(self) -> str:
        return self.redis_url or os.environ.get("LLMOPS_REDIS_URL", "")

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("generation")

    def registry(self) -> str:
        return self.registry_address or localenv.service_address("registry")

    @functools.cached_property
    def _model_servers(self) -> tuple[dict[str, str], str, str]:
        """(per-model addresses, the default address, the scheme), read once: looked up per request."""
        servers = json.loads(self.model_servers) if self.model_servers else {}
        default = self.model_server_address or localenv.service_address("modelserver")
        # TLS towards model servers when this service's channels use it (LLMOPS_TLS_CA_FILE)
        return servers, default, "https" if client_from_env() else "http"

    def model_server_for(self, model_id: str) -> str:
        servers, default, scheme = self._model_servers
        address = servers.get(model_id) or default
        return address if address.startswith("http") else f"{scheme}://{address}"

    def resolved_secrets_dir(self) -> Path:
        return Path(self.secrets_dir) if self.secrets_dir else localenv.home() / "secrets"
