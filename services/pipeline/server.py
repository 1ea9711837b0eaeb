"""Wiring: clients of registry, prompt, generation and retrieval (calls carry the caller's key), the
inference outbox and its deliverer to the feedback service (with the pipeline's own key), the
runner, the gRPC servicer and the OpenAI-compatible HTTP API on the same event loop."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import trace

from llmops.api.feedback.v1 import feedback_pb2_grpc
from llmops.api.generation.v1 import generation_pb2_grpc
from llmops.api.pipeline.v1 import pipeline_pb2_grpc
from llmops.api.prompt.v1 import prompt_pb2_grpc
from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.api.retrieval.v1 import retrieval_pb2_grpc
from llmops.core import auth, channels, http
from llmops.core.config import from_env
from llmops.core.model_files import ModelFiles
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.pipeline.config import PipelineConfig
from services.pipeline.openai_api import OpenAIApi
from services.pipeline.outbox import InferenceOutbox
from services.pipeline.runner import PipelineRunner
from services.pipeline.servicer import POLICY, SERVICE, PipelineServicer

log = logging.getLogger(__name__)


async def build(server_config: ServerConfig, keys: auth.KeyStore, tracer_provider: trace.TracerProvider | None = None,
                config: PipelineConfig | None = None) -> Server:
    config = config or from_env(PipelineConfig, "LLMOPS_PIPELINE")
    registry = channels.aio_channel(config.address("registry"), auth.current_key.get)
    prompt = channels.aio_channel(config.address("prompt"), auth.current_key.get)
    generation = channels.aio_channel(config.address("generation"), auth.current_key.get)
    retrieval = channels.aio_channel(config.address("retrieval"), auth.current_key.get)  # /v1/embeddings
    registry_stub = registry_pb2_grpc.RegistryServiceStub(registry)
    generation_stub = generation_pb2_grpc.GenerationServiceStub(generation)
    channels_ = [registry, prompt, generation, retrieval]
    outbox, db = None, None
    if config.api_key:  # answers are logged to the feedback service with the pipeline's own key
        db = Database(config.resolved_outbox_url())
        feedback = channels.aio_channel(config.address("feedback"), config.api_key)
        channels_.append(feedback)
        outbox = InferenceOutbox(db, feedback_pb2_grpc.FeedbackServiceStub(feedback))
        await asyncio.to_thread(outbox.migrate)
        outbox.start()
    else:
        log.warning("no LLMOPS_PIPELINE_API_KEY: answers are not logged to the feedback service")
    runner = PipelineRunner(ModelFiles(registry_stub, resolve_ttl_s=config.bundle_ttl_s),
                            prompt_pb2_grpc.PromptServiceStub(prompt), generation_stub, outbox)
    api = OpenAIApi(runner, generation_stub, registry_stub, retrieval_pb2_grpc.RetrievalServiceStub(retrieval), keys,
                    http.ServerSpans(tracer_provider), config.http_timeout_s)
    web = http.HttpServer(api.app, config.http_host, config.resolved_http_port(), server_config.tls())

    async def close() -> None:
        await web.stop()
        if outbox is not None:
            await outbox.stop()
        for ch in channels_:
            await ch.close()
        if db is not None:
            db.dispose()

    binding = ServiceBinding(SERVICE, pipeline_pb2_grpc.add_PipelineServiceServicer_to_server,
                             PipelineServicer(runner), POLICY)
    server = await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider,
                                 on_stop=[close])
    await http.start_beside(server, web, config.http_host, config.resolved_http_port())
    return server
