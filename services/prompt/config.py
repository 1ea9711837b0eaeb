"""Prompt settings, from `LLMOPS_PROMPT_*` variables; the addresses of the services it calls come
from `LLMOPS_RETRIEVAL_ADDRESS`, `LLMOPS_REGISTRY_ADDRESS` and `LLMOPS_GENERATION_ADDRESS`
(loopback defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from llmops.core import localenv


@dataclass(frozen=True)
class PromptConfig:
    database_url: str = ""  # default: SQLite under $LLMOPS_HOME/data/prompt
    retrieval_address: str = ""
    registry_address: str = ""
    generation_address: str = ""  # for `route`: counting with a generation route's tokenizer
    downstream_timeout_s: float = 10.0
    max_top_k: int = 100
    protected_aliases: tuple[str, ...] = ("production",)  # moved by approvers onto approved versions only
    render_workers: int = 2  # sandbox processes that render templates (killable, memory-limited)
    render_memory_mb: int = 256  # address-space limit of each
    render_time_limit_s: float = 1.0  # per assembly; past it the renderer is killed

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("prompt")

    def address(self, service: str) -> str:
        return getattr(self, f"{service}_address") or localenv.service_address(service)
