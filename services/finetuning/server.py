"""Wiring: tuning jobs (store, runner with worker processes, servicer), evaluations and releases
(store, runner, servicer each) in one process and one database. The service reaches the other
services with its own key (downloading bases, registering candidates, answering evaluation rows,
recording results, moving canaries, reading live signals), in worker threads through the sync
clients the CLI uses."""

from __future__ import annotations

import asyncio

from opentelemetry import trace

from llmops.api.finetuning.v1 import evaluation_pb2_grpc, finetuning_pb2_grpc, release_pb2_grpc
from llmops.client.client import Client
from llmops.client.registry import RegistryClient
from llmops.core import auth, channels
from llmops.core.config import from_env
from llmops.core.server import Server, ServerConfig, ServiceBinding, create_server
from llmops.core.storage import Database
from services.finetuning.config import FineTuningConfig
from services.finetuning.evaluation.runner import EvaluationRunner
from services.finetuning.evaluation.servicer import POLICY as EVALUATION_POLICY
from services.finetuning.evaluation.servicer import SERVICE as EVALUATION_SERVICE
from services.finetuning.evaluation.servicer import EvaluationServicer
from services.finetuning.jobs import JobRunner
from services.finetuning.release.runner import ReleaseRunner
from services.finetuning.release.servicer import POLICY as RELEASE_POLICY
from services.finetuning.release.servicer import SERVICE as RELEASE_SERVICE
from services.finetuning.release.servicer import ReleaseServicer
from services.finetuning.servicer import POLICY, SERVICE, FineTuningServicer
from services.finetuning.store import EvaluationStore, JobStore, ReleaseStore


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
    evaluations = EvaluationStore(db)
    client = Client(config.addresses(), config.api_key)
    evaluator = EvaluationRunner(evaluations, config.resolved_evaluations_dir(), client,
                                 config.max_concurrent_evaluations)
    await evaluator.start()
    releases = ReleaseStore(db)
    releaser = ReleaseRunner(releases, client, config.max_concurrent_releases, config.release_poll_s)
    await releaser.start()

    async def close() -> None:
        await releaser.stop()
        await evaluator.stop()
        await runner.stop()
        client.close()
        channel.close()
        db.dispose()

    bindings = [ServiceBinding(SERVICE, finetuning_pb2_grpc.add_FineTuningServiceServicer_to_server,
                               FineTuningServicer(store, runner, registry, config), POLICY),
                ServiceBinding(EVALUATION_SERVICE, evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server,
                               EvaluationServicer(evaluations, evaluator, client, config), EVALUATION_POLICY),
                ServiceBinding(RELEASE_SERVICE, release_pb2_grpc.add_ReleaseServiceServicer_to_server,
                               ReleaseServicer(releases, releaser, client, config), RELEASE_POLICY)]
    return await create_server(bindings, server_config, keys=keys, tracer_provider=tracer_provider, on_stop=[close])
