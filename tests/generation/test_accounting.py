"""Limits and usage without a server: windows, budgets under concurrency, durable usage."""

from __future__ import annotations

import pytest

from llmops.core.errors import InvalidArgument, ResourceExhausted
from llmops.core.storage import Database
from llmops.modeling.folder import inspect_folder
from services.generation.accounting import Accounting, LimitSpec
from services.generation.store import GenerationStore


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'gen.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = GenerationStore(Database(url))
    s.migrate()
    yield s
    s.db.dispose()


async def test_requests_per_minute_with_retry_delay(store):
    acc = Accounting(store)
    limits = LimitSpec(requests_per_minute=2)
    for _ in range(2):
        acc.settle(await acc.admit("ann", "r", limits, 5, 5), 5, 5)
    with pytest.raises(ResourceExhausted) as info:
        await acc.admit("ann", "r", limits, 5, 5)
    assert 59 < info.value.retry_after_s <= 60
    await acc.admit("bob", "r", limits, 5, 5)  # per caller


async def test_budget_reserves_and_clamps_so_concurrent_requests_cannot_overrun(store):
    acc = Accounting(store)
    limits = LimitSpec(token_budget=100)
    a = await acc.admit("ann", "r", limits, 10, 50)
    b = await acc.admit("ann", "r", limits, 10, 50)
    assert a.max_tokens == 50 and b.max_tokens == 30  # 100 - 60 held by the first - 10 input
    with pytest.raises(ResourceExhausted, match="budget"):
        await acc.admit("ann", "r", limits, 10, 50)
    acc.settle(a, 10, 5)  # the first used less than it held: capacity comes back
    c = await acc.admit("ann", "r", limits, 10, 50)
    assert c.max_tokens == 100 - 15 - 40 - 10


async def test_tokens_per_minute(store):
    acc = Accounting(store)
    limits = LimitSpec(tokens_per_minute=100)
    acc.settle(await acc.admit("ann", "r", limits, 30, 30), 30, 30)
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
