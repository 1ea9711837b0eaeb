"""Retrieval settings, from `LLMOPS_RETRIEVAL_*` variables (and `LLMOPS_MILVUS_URI`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from llmops.core import localenv
from llmops.core.locations import Locations


@dataclass(frozen=True)
class RetrievalConfig:
    database_url: str = ""  # index metadata; default: SQLite under $LLMOPS_HOME/data/retrieval
    milvus_uri: str = ""  # a Milvus server; default: the embedded engine ($LLMOPS_MILVUS_URI also works)
    milvus_token: str = ""
    milvus_data_dir: str = ""  # the embedded engine's data; default under $LLMOPS_HOME/data/retrieval
    default_embedding_model: str = "all-MiniLM-L6-v2"
    # Where callers may point: Delta tables to sync and embedding model folders (besides the
    # packaged default). Default: $LLMOPS_HOME/tables and $LLMOPS_HOME/models.
    table_roots: tuple[str, ...] = ()
    table_allowed_prefixes: tuple[str, ...] = ()  # object-store URLs, e.g. s3://bucket/tables/
    model_roots: tuple[str, ...] = ()
    max_top_k: int = 100
    max_documents_per_call: int = 1000
    max_document_chars: int = 5_000_000
    embed_batch_size: int = 64
    sync_poll_s: float = 5.0  # how often a CONTINUOUS sync looks for a new table version
    sync_batch_documents: int = 128
    health_interval_s: float = 5.0  # how often Milvus is probed for the health status

    def data_dir(self):
        return localenv.data_dir("retrieval")

    def table_locations(self) -> Locations:
        roots = self.table_roots or (localenv.home() / "tables",)
        return Locations.of(roots, self.table_allowed_prefixes, "LLMOPS_RETRIEVAL_TABLE_ROOTS / _TABLE_ALLOWED_PREFIXES")

    def model_locations(self) -> Locations:
        return Locations.of(self.model_roots or (localenv.home() / "models",), (), "LLMOPS_RETRIEVAL_MODEL_ROOTS")

    def resolved_database_url(self) -> str:
        return self.database_url or localenv.default_sqlite_url("retrieval")

    def resolved_milvus_uri(self) -> str:
        return self.milvus_uri or os.environ.get("LLMOPS_MILVUS_URI", "")
