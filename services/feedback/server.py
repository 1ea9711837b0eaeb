"""Wiring: the store, the servicer, and the review web app (HTTP, on the same event loop)."""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from llmops.api.feedback.v1 import feedback_pb2_grpc
from llmops.core import auth, http
from llmops.core.config import from_env
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.feedback.config import FeedbackConfig
from services.feedback.review import ReviewApp
from services.feedback.servicer import POLICY, SERVICE, FeedbackServicer
from services.feedback.store import FeedbackStore


async def build(server_config: ServerConfig, keys: auth.KeyStore, tracer_provider: trace.TracerProvider | None = None,
                config: FeedbackConfig | None = None) -> Server:
    config = config or from_env(FeedbackConfig, "LLMOPS_FEEDBACK")
    db = Database(config.resolved_database_url())
    store = FeedbackStore(db)
    await asyncio.to_thread(store.migrate)

    servicer = FeedbackServicer(store, config)
    web = http.HttpServer(ReviewApp(servicer, keys, http.ServerSpans(tracer_provider)).app, config.http_host,
                          config.resolved_http_port(), server_config.tls())

    async def close() -> None:
        await web.stop()
        db.dispose()

    binding = ServiceBinding(SERVICE, feedback_pb2_grpc.add_FeedbackServiceServicer_to_server, servicer, POLICY)
    server = await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider,
                                 on_stop=[close])
    await http.start_beside(server, web, config.http_host, config.resolved_http_port())
    return server
