"""Wiring: config, store, blob store and servicer into a server (used by __main__ and tests)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from opentelemetry import trace

from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.core import auth
from llmops.core.blobstore import BlobStore
from llmops.core.config import from_env
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.registry.config import RegistryConfig
from services.registry.feed import EventFeed
from services.registry.servicer import POLICY, SERVICE, RegistryServicer
from services.registry.store import RegistryStore


async def build(
    server_config: ServerConfig,
    keys: auth.KeyStore,
    tracer_provider: trace.TracerProvider | None = None,
    config: RegistryConfig | None = None,
) -> Server:
    config = config or from_env(RegistryConfig, "LLMOPS_REGISTRY")
    db = Database(config.resolved_database_url())
    store = RegistryStore(db)
    await asyncio.to_thread(store.migrate)
    blobs = BlobStore(config.resolved_artifact_root(), Path(config.spool_dir) if config.spool_dir else None)
    servicer = RegistryServicer(store, blobs, EventFeed(store, config.event_poll_s), config)

    async def close() -> None:
        db.dispose()

    binding = ServiceBinding(SERVICE, registry_pb2_grpc.add_RegistryServiceServicer_to_server, servicer, POLICY)
    return await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
