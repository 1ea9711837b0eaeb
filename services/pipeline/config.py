"""Pipeline settings, from `LLMOPS_PIPELINE_*` variables; the services it calls are found through
`LLMOPS_REGISTRY_ADDRESS`, `LLMOPS_PROMPT_ADDRESS`, `LLMOPS_GENERATION_ADDRESS`,
`LLMOPS_RETRIEVAL_ADDRESS` and `LLMOPS_FEEDBACK_ADDRESS` (loopback defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from llmops.core import localenv


@dataclass(frozen=True)
class PipelineConfig:
    registry_address: str = ""
    prompt_address: str = ""
    generation_address: str = ""
    retrieval_address: str = ""  # embeddings for POST /v1/embeddings
    feedback_address: str = ""
    api_key: str = ""  # the pipeline's own key (role editor): logs answers to the feedback service
    outbox_url: str = ""  # the inference outbox; default SQLite under $LLMOPS_HOME/data/pipeline
    http_host: str = "127.0.0.1"
    http_port: int = -1  # the OpenAI-compatible API; -1: the default port, 0: a free one
    bundle_ttl_s: float = 5.0  # a moved bundle alias is followed within this time
    http_timeout_s: float = 120.0  # HTTP callers send no deadline; this bounds their requests

    def address(self, service: str) -> str:
        return getattr(self, f"{service}_address") or localenv.service_address(service)

    def resolved_outbox_url(self) -> str:
        return self.outbox_url or localenv.default_sqlite_url("pipeline", "outbox.db")

    def resolved_http_port(self) -> int:
        return localenv.DEFAULT_PORTS["pipeline_http"] if self.http_port < 0 else self.http_port
