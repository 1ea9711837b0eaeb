"""Wiring: the job store, the runner (queue and worker processes) and the servicer. The service
reaches the registry with its own key (downloading bases, registering candidates), in worker
threads through the sync client the CLI uses."""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from llmops.api.finetuning.v1 import finetuning_pb2_grpc
from llmops.client.registry import RegistryClient
from llmops.core import auth, channels
from llmops.core.config import from_env
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.finetuning.config import FineTuningConfig
from services.finetuning.jobs import JobRunner
from services.finetuning.servicer import POLICY, SERVICE, FineTuningServicer
from services.finetuning.store import JobStore


async def build(server_config: ServerConfig, keys: auth.KeyStore, tracer_provider: trace.TracerProvider | None = None,
                config: FineTuningConfig | None = None) -> Server:
    config = config or from_env(FineTuningConfig, "LLMOPS_FINETUNING")
    db = Database(config.resolved_database_url())
    store = JobStore(db)
    await asyncio.to_thread(store.migrate)
    channel = channels.sync_channel(config.registry(), config.api_key or None, default_timeout_s=600)
    registry = RegistryClient(channel)
    runner = JobRunner(store, config, registry)
    await runner.start()

    async def close() -> None:
        await runner.stop()
        channel.close()
        db.dispose()

    binding = ServiceBinding(SERVICE, finetuning_pb2_grpc.add_FineTuningServiceServicer_to_server,
                             FineTuningServicer(store, runner, registry, config), POLICY)
    return await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
