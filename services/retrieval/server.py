"""Wiring: config, index store, Milvus and servicer into a server (used by __main__ and tests)."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import trace

from llmops.api.retrieval.v1 import retrieval_pb2_grpc
from llmops.core import auth
from llmops.core.config import from_env
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.retrieval.config import RetrievalConfig
from services.retrieval.servicer import POLICY, SERVICE, RetrievalServicer
from services.retrieval.store import IndexStore
from services.retrieval.vectors import VectorStore

log = logging.getLogger(__name__)


def milvus_uri(config: RetrievalConfig) -> str:
    """The configured Milvus server, or the embedded engine's file (Milvus Lite)."""
    uri = config.resolved_milvus_uri()
    if uri:
        return uri
    data = config.milvus_data_dir or str(config.data_dir() / "milvus")
    from pathlib import Path

    Path(data).mkdir(parents=True, exist_ok=True)
    return str(Path(data) / "milvus.db")


async def build(
    server_config: ServerConfig,
    keys: auth.KeyStore,
    tracer_provider: trace.TracerProvider | None = None,
    config: RetrievalConfig | None = None,
) -> Server:
    config = config or from_env(RetrievalConfig, "LLMOPS_RETRIEVAL")
    db = Database(config.resolved_database_url())
    store = IndexStore(db)
    await asyncio.to_thread(store.migrate)
    uri = milvus_uri(config)
    vectors = VectorStore(uri, config.milvus_token)
    log.info("vectors in Milvus at %s", uri)
    servicer = RetrievalServicer(store, vectors, config)

    async def close() -> None:
        vectors.close()
        db.dispose()

    binding = ServiceBinding(SERVICE, retrieval_pb2_grpc.add_RetrievalServiceServicer_to_server, servicer, POLICY)
    server = await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
    await server.watch_dependency("Milvus", lambda: asyncio.to_thread(vectors.ping), config.health_interval_s)
    return server
