"""Wiring: store, accounting, registry files, the HTTP client for targets, the alias follower
and the servicer into a server. The gateway imports no torch: it stays small and starts fast."""

from __future__ import annotations

import asyncio
import ssl

from opentelemetry import trace

from llmops.api.generation.v1 import generation_pb2_grpc
from llmops.api.registry.v1 import registry_pb2_grpc
from llmops.core import auth, channels, sandbox
from llmops.core.config import from_env
from llmops.core.model_files import ModelFiles
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from llmops.core.tls import client_from_env
from services.generation.accounting import WINDOW_S, Accounting
from services.generation.config import GenerationConfig
from services.generation.credentials import Credentials
from services.generation.follow import AliasFollower
from services.generation.servicer import POLICY, SERVICE, GenerationServicer
from services.generation.shared_limits import SharedWindows
from services.generation.store import GenerationStore
from services.generation.upstream import Upstream


async def build(server_config: ServerConfig, keys: auth.KeyStore, tracer_provider: trace.TracerProvider | None = None,
                config: GenerationConfig | None = None) -> Server:
    config = config or from_env(GenerationConfig, "LLMOPS_GENERATION")
    db = Database(config.resolved_database_url())
    store = GenerationStore(db)
    await asyncio.to_thread(store.migrate)
    redis_url = config.resolved_redis_url()
    shared = SharedWindows(redis_url, WINDOW_S) if redis_url else None
    accounting = Accounting(store, config.usage_flush_s, shared)
    accounting.start()
    # The service's own key when it has one (needed to follow events); else the caller's.
    registry = channels.aio_channel(config.registry(), config.api_key or auth.current_key.get)
    registry_stub = registry_pb2_grpc.RegistryServiceStub(registry)
    following = bool(config.api_key)
    renderer = sandbox.RenderPool(config.render_workers)
    models = ModelFiles(registry_stub, resolve_ttl_s=3600.0 if following else config.resolve_ttl_s,
                        renderer=renderer)
    verify = ssl.create_default_context()  # public CAs for providers ...
    client_tls = client_from_env()
    if client_tls:  # ... and the deployment's own CA for model servers over HTTPS
        verify.load_verify_locations(cafile=client_tls.ca_file)
    http = Upstream(verify, config.request_timeout_s, config.connect_timeout_s)
    servicer = GenerationServicer(store, accounting, models, Credentials(config.resolved_secrets_dir(), config.credential_env_prefixes), http, config)
    tasks: list[asyncio.Task] = []
    if following:
        follower = AliasFollower(registry_stub, models, http, servicer.followed_models, config.model_server_for,
                                 config.model_server_token)
        servicer.follower = follower
        tasks.append(asyncio.get_running_loop().create_task(follower.run()))

    async def close() -> None:
        renderer.close()
        for t in tasks:
            t.cancel()
        await accounting.stop()
        await http.close()
        await registry.close()
        db.dispose()

    binding = ServiceBinding(SERVICE, generation_pb2_grpc.add_GenerationServiceServicer_to_server, servicer, POLICY)
    return await create_server([binding], server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
