"""Limits and usage without a server: windows, budgets under concurrency, durable usage, each in
one replica's memory and in Redis (shared by replicas: `LLMOPS_REDIS_URL`), and replicas that
share Redis holding one limit between them."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from llmops.core.errors import InvalidArgument, ResourceExhausted
from llmops.core.storage import Database
from llmops.modeling.folder import inspect_folder
from services.generation.accounting import WINDOW_S, Accounting, LimitSpec
from services.generation.shared_limits import SharedWindows
from services.generation.store import GenerationStore

REDIS_URL = "redis://127.0.0.1:6379/0"  # Redis runs on every development and CI machine


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'gen.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = GenerationStore(Database(url))
    s.migrate()
    yield s
    s.db.dispose()


@pytest.fixture(params=["memory", "redis"])
def accounting(request, store):
    """Accounting(store) as one replica makes it; with "redis", on Redis under a prefix of its own."""
    prefix = f"llmops-test:{uuid.uuid4().hex}"

    def make() -> Accounting:
        shared = SharedWindows(REDIS_URL, WINDOW_S, prefix) if request.param == "redis" else None
        return Accounting(store, shared=shared)

    return make


async def test_requests_per_minute_with_retry_delay(accounting):
    acc = accounting()
    limits = LimitSpec(requests_per_minute=2)
    for _ in range(2):
        acc.settle(await acc.admit("ann", "r", limits, 5, 5), 5, 5)
    await acc.settled()
    with pytest.raises(ResourceExhausted) as info:
        await acc.admit("ann", "r", limits, 5, 5)
    assert 59 < info.value.retry_after_s <= 60
    await acc.admit("bob", "r", limits, 5, 5)  # per caller


async def test_budget_reserves_and_clamps_so_concurrent_requests_cannot_overrun(accounting):
    acc = accounting()
    limits = LimitSpec(token_budget=100)
    a = await acc.admit("ann", "r", limits, 10, 50)
    b = await acc.admit("ann", "r", limits, 10, 50)
    assert a.max_tokens == 50 and b.max_tokens == 30  # 100 - 60 held by the first - 10 input
    with pytest.raises(ResourceExhausted, match="budget"):
        await acc.admit("ann", "r", limits, 10, 50)
    acc.settle(a, 10, 5)  # the first used less than it held: capacity comes back
    await acc.settled()
    c = await acc.admit("ann", "r", limits, 10, 50)
    assert c.max_tokens == 100 - 15 - 40 - 10


async def test_tokens_per_minute(accounting):
    acc = accounting()
    limits = LimitSpec(tokens_per_minute=100)
    acc.settle(await acc.admit("ann", "r", limits, 30, 30), 30, 30)
    await acc.settled()
    with pytest.raises(ResourceExhausted, match="tokens per minute") as info:
        await acc.admit("ann", "r", limits, 20, 30)
    assert info.value.retry_after_s > 0


async def test_usage_is_durable_and_budgets_survive_a_restart(store):
    acc = Accounting(store)
    r = await acc.admit("ann", "r", LimitSpec(), 7, 10)
    acc.settle(r, 7, 3)
    acc.settle(r, 7, 3)  # settling twice records once
    [pending] = await acc.usage("ann", "r", 0, 2**40)
    assert (pending.requests, pending.input_tokens, pending.output_tokens) == (1, 7, 3)
    await acc.stop()
    restarted = Accounting(store)
    [u] = await restarted.usage("ann", None, 0, 2**40)
    assert (u.requests, u.input_tokens, u.output_tokens) == (1, 7, 3)
    with pytest.raises(ResourceExhausted):
        await restarted.admit("ann", "r", LimitSpec(token_budget=12), 3, 1)


def test_model_folders_are_checked_before_upload(tmp_path, demo_model):
    assert inspect_folder(demo_model).architecture == "LlamaForCausalLM"
    assert inspect_folder(demo_model).has_chat_template
    with pytest.raises(InvalidArgument, match="config.json"):
        inspect_folder(tmp_path)
    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(InvalidArgument, match="ForCausalLM"):
        inspect_folder(tmp_path)
    (tmp_path / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(InvalidArgument, match="safetensors"):
        inspect_folder(tmp_path)


async def _ask(acc: Accounting, limits: LimitSpec) -> bool:
    try:
        r = await acc.admit("ann", "r", limits, 5, 5)
    except ResourceExhausted:
        return False
    acc.settle(r, 5, 5)
    return True


async def test_replicas_sharing_redis_hold_one_request_limit_between_them(store):
    prefix = f"llmops-test:{uuid.uuid4().hex}"
    replicas = [Accounting(store, shared=SharedWindows(REDIS_URL, WINDOW_S, prefix)) for _ in range(2)]
    limits = LimitSpec(requests_per_minute=60)
    admitted = await asyncio.gather(*(_ask(replicas[i % 2], limits) for i in range(100)))
    assert sum(admitted) == 60  # one limit between them, not 60 each
    apart = [Accounting(store), Accounting(store)]  # in memory each replica counts alone
    assert sum([await _ask(apart[i % 2], limits) for i in range(100)]) == 100
    for acc in replicas:
        await acc.stop()


async def test_a_budget_is_never_overspent_by_concurrent_requests_across_replicas(store):
    prefix = f"llmops-test:{uuid.uuid4().hex}"
    replicas = [Accounting(store, shared=SharedWindows(REDIS_URL, WINDOW_S, prefix)) for _ in range(2)]
    limits = LimitSpec(token_budget=1000)
    spent = []

    async def stream(i: int) -> None:
        acc = replicas[i % 2]
        try:
            r = await acc.admit("ann", "r", limits, 10, 100)
        except ResourceExhausted:
            return
        await asyncio.sleep(0.01 * (i % 5))  # streams overlap
        spent.append(10 + r.max_tokens)  # the worst case: every token it may produce
        acc.settle(r, 10, r.max_tokens)

    await asyncio.gather(*(stream(i) for i in range(40)))
    for acc in replicas:
        await acc.settled()
    assert sum(spent) <= 1000 and len(spent) >= 9
    with pytest.raises(ResourceExhausted, match="budget"):
        await replicas[0].admit("ann", "r", limits, 10, 10)
    for acc in replicas:
        await acc.stop()
