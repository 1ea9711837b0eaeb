"""Two generation replicas behind one client, as a load balancer spreads calls: with Redis
(`redis_url`) a route's requests-per-minute limit and a caller's token budget hold for both
together over the wire."""

from __future__ import annotations

import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from llmops.client import CallError, Client
from llmops.client.generation import provider_target
from llmops.core import auth
from llmops.testing.fake_provider import FakeProvider
from llmops.testing.services import ServerThread, make_keys
from services.generation.config import GenerationConfig
from services.generation.server import build as build_generation
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry

KEY = "sk-replicas-3c9e"
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def replicas(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_PROVIDER_REPLICA_KEY", KEY)
    keys = make_keys(tmp_path / "keys.json")
    store = auth.KeyStore(tmp_path / "keys.json")
    registry = ServerThread(functools.partial(build_registry, config=RegistryConfig(
        database_url=f"sqlite:///{tmp_path / 'reg.db'}", artifact_root=str(tmp_path / "art"))), store).start()
    fake = FakeProvider(KEY).start()
    config = GenerationConfig(database_url=f"sqlite:///{tmp_path / 'gen.db'}", registry_address=registry.address,
                              api_key=keys["reader"], provider_allowed_hosts=("127.0.0.1",), usage_flush_s=0.2,
                              redis_url=REDIS_URL)
    threads = [ServerThread(functools.partial(build_generation, config=config), store).start() for _ in range(2)]
    clients = [Client({"generation": t.address}, keys["admin"]) for t in threads]
    route = f"shared-{uuid.uuid4().hex[:8]}"  # Redis outlives the test: a route of its own
    yield clients, route, fake
    for c in clients:
        c.close()
    for t in threads:
        t.stop()
    fake.stop()
    registry.stop()


def _ask(client, route: str, **sampling) -> grpc.StatusCode:
    try:
        client.generation.generate(route, [("user", "hi")], **sampling)
        return grpc.StatusCode.OK
    except CallError as exc:
        return exc.code


def test_a_request_limit_holds_across_two_replicas(replicas):
    clients, route, fake = replicas
    clients[0].generation.create_route(route, [provider_target(fake.base_url, "echo-1",
                                                               "env:LLMOPS_PROVIDER_REPLICA_KEY")],
                                       requests_per_minute=60)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: _ask(clients[i % 2], route), range(100)))
    assert codes.count(grpc.StatusCode.OK) == 60, codes  # not 60 per replica
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}


def test_a_budget_holds_across_two_replicas_under_concurrent_streams(replicas):
    clients, route, fake = replicas
    clients[0].generation.create_route(route, [provider_target(fake.base_url, "echo-1",
                                                               "env:LLMOPS_PROVIDER_REPLICA_KEY")],
                                       token_budget=400)
    fake.token_delay_s = 0.01

    def stream(i: int) -> int:
        try:
            question = " ".join(["tell me more about the limits"] * 4)  # the provider echoes it: 16 tokens out
            return sum(1 for _ in clients[i % 2].generation.stream(route, [("user", question)], max_tokens=16))
        except CallError as exc:
            assert exc.code is grpc.StatusCode.RESOURCE_EXHAUSTED
            return 0

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(stream, range(40)))
    finally:
        fake.token_delay_s = 0.0
    time.sleep(0.6)  # each replica writes its usage to the shared database every 0.2 s
    used = sum(u.input_tokens + u.output_tokens for u in clients[0].generation.get_usage(route=route))
    assert 250 < used <= 400, used  # about 1,500 asked for: spent up to the budget, never past it (in memory: 800)
