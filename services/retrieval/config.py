"""Retrieval settings, from `LLMOPS_RETRIEVAL_*` variables (and `LLMOPS_MILVUS_URI`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from llmops.core import localenv


@dataclass(frozen=True)
class RetrievalConfig:
    database_url: str = ""  # index metadata; default: SQLite under $LLMOPS_HOME/data/retrieval
    milvus_uri: str = ""  # a Milvus server; default: the embedded engine ($LLMOPS_MILVUS_URI also works)
    milvus_token: str = ""
    milvus_data_dir: str = ""  # the embedded engine's data; default under $LLMOPS_HOME/data/retrieval
    default_embedding_model: str = "all-MiniLM-L6-v2"
    max_top_k: int = 100
    max_documents_per_call: int = 1000
    max_document_chars: int = 5_000_000
    embed_batch_size: int = 64
    sync_poll_s: float = 5.0  # how often a CONTINUOUS sync looks for a new table version
    sync_batch_documents: int = 128
    health_interval_s: float = 5.0  # how often Milvus is probed for the health status

    def data_dir(self):
        return localenv.data_dir("retrieval")

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("retrieval")

    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or os.environ.get("LLMOPS_MILVUS_URI", "")
