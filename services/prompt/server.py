"""Wiring: store, the retrieval, registry and generation clients (calls made with the caller's own key) and
the servicer into a server."""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from llmops.api.generation.v1 import generation_pb2_grpc
from llmops.api.prompt.v1 import prompt_pb2_grpc
from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.api.retrieval.v1 import retrieval_pb2_grpc
from llmops.core import auth, channels, sandbox
from llmops.core.config import from_env
from llmops.core.model_files import ModelFiles
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.prompt.config import PromptConfig
from services.prompt.servicer import POLICY, SERVICE, PromptServicer
from services.prompt.store import TemplateStore


async def build(server_config: ServerConfig, keys: auth.KeyStore, tracer_provider: trace.TracerProvider | None = None,
                config: PromptConfig | None = None) -> Server:
    config = config or from_env(PromptConfig, "LLMOPS_PROMPT")
    db = Database(config.resolved_database_url())
    store = TemplateStore(db)
    await asyncio.to_thread(store.migrate)
    retrieval = channels.aio_channel(config.address("retrieval"), auth.current_key.get)
    registry = channels.aio_channel(config.address("registry"), auth.current_key.get)
    generation = channels.aio_channel(config.address("generation"), auth.current_key.get)
    renderer = sandbox.RenderPool(config.render_workers, memory_mb=config.render_memory_mb,
                                  time_limit_s=config.render_time_limit_s)
    servicer = PromptServicer(store, retrieval_pb2_grpc.RetrievalServiceStub(retrieval),
                              ModelFiles(registry_pb2_grpc.RegistryServiceStub(registry), renderer=renderer), config,
                              generation_pb2_grpc.GenerationServiceStub(generation), renderer=renderer)

    async def close() -> None:
        renderer.close()
        await retrieval.close()
        await registry.close()
        await generation.close()
        db.dispose()

    binding = ServiceBinding(SERVICE, prompt_pb2_grpc.add_PromptServiceServicer_to_server, servicer, POLICY)
    return await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
