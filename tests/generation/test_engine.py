"""The engine in process: batching gives each row its own answer, sampling and stops behave,
and streamed detokenisation never splits a character or leaks part of a stop sequence."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from services.modelserver.engine import Engine, Job, RequestError
from services.modelserver.sampling import Sampling, TextStream
from services.modelserver.scheduler import Overloaded, Scheduler


@pytest.fixture(scope="module")
def engine(demo_model):
    return Engine.load(demo_model, "demo")


def run(engine: Engine, prompts: list[str], samplings: list[Sampling]) -> list[tuple[str, object]]:
    """Run prompts as one batch; (text, result) per prompt."""
    out = [([], None) for _ in prompts]
    jobs = []
    for i, (p, s) in enumerate(zip(prompts, samplings, strict=True)):
        def emit(kind, payload, i=i):
            if kind == "delta":
                out[i][0].append(payload)
            else:
                out[i] = (out[i][0], payload)
        jobs.append(Job(engine.encode(p), s, emit))
    engine.run_batch(jobs)
    return [("".join(parts), result) for parts, result in out]


def test_deepspeed_inference_is_the_backend_on_cpu(engine):
    assert engine.backend == "deepspeed-inference (fp32, cpu)"
    assert engine.context_window == 512


def test_a_batch_gives_each_row_what_it_would_get_alone(engine):
    prompts = ["The registry", "Routes send requests to", "A"]
    greedy = Sampling(max_tokens=8)
    alone = [run(engine, [p], [greedy])[0][0] for p in prompts]
    together = [text for text, _ in run(engine, prompts, [greedy] * 3)]
    assert together == alone


def test_seeded_sampling_is_reproducible_and_max_tokens_holds(engine):
    s = Sampling(max_tokens=10, temperature=1.0, top_p=0.9, seed=7)
    (a, ra), (b, rb) = run(engine, ["The model", "The model"], [s, s])
    assert a == b and ra.output_tokens == rb.output_tokens <= 10
    assert ra.finish_reason in ("length", "stop")
    assert ra.ttft_s > 0 and ra.total_s >= ra.ttft_s


def test_context_window_is_checked_with_counts(engine):
    with pytest.raises(RequestError, match="exceed the context window of 512"):
        engine.check(engine.encode("word " * 100), Sampling(max_tokens=500))
    with pytest.raises(RequestError, match="messages"):
        engine.encode()


def test_cancel_stops_a_row_and_the_scheduler_goes_on(engine):
    scheduler = Scheduler(engine)
    got, done = [], threading.Event()

    def emit(kind, payload):
        got.append((kind, payload))
        if kind == "delta" and len(got) == 3:
            job.cancel()
        if kind in ("done", "error"):
            done.set()

    job = Job(engine.encode("The registry"), Sampling(max_tokens=400), emit)
    scheduler.submit([job])
    assert done.wait(30)
    result = got[-1][1]
    assert result.finish_reason == "cancelled" and result.output_tokens < 20
    assert engine.last_cancel_s is not None and engine.last_cancel_s < 1.0
    second = run(engine, ["The registry"], [Sampling(max_tokens=3)])
    assert second[0][1].output_tokens <= 3
    scheduler.close()


def test_text_stream_holds_back_partial_characters_and_stops():
    pieces = {1: "ab", 2: "\ufffd", 3: "é", 4: "ST", 5: "OP"}

    def decode(ids):  # tokens 2 and 3 are the two halves of one character
        return "".join(pieces[i] for i in ids).replace("\ufffdé", "é")

    plain = TextStream(decode)
    assert [plain.push(1), plain.push(2), plain.push(3)] == ["ab", "", "é"]
    stopping = TextStream(decode, stop=("STOP",))
    deltas = [stopping.push(i) for i in (1, 2, 3, 4, 5)]
    assert "".join(deltas) == "abé" and stopping.stopped  # nothing of "STOP" went out
    assert stopping.flush() == ""
    held = TextStream(decode, stop=("STOP",))
    assert "".join(held.push(i) for i in (1, 4)) + held.flush() == "abST"  # no stop: held text is released


def test_chat_templates_render_in_the_sandbox_as_transformers_renders_them(engine, render_pool):
    from llmops.core import templating

    def render(source, variables):
        return render_pool.render(source, variables, "chat template", templating.CHAT)

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who approves models?"}]
    assert engine.tokenizer.chat_template  # the demo model has one
    assert engine.encode(messages=messages, render=render) == engine.encode(messages=messages)


def test_incremental_detokenising_gives_the_whole_decode(engine):
    text = "Only a person with the approver role may move the production alias. Café — 東京 [1]!"
    ids = engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    step = engine.stream_decoder()
    assert step is not None  # the demo model's tokenizer decodes without clean-up
    incremental, whole = TextStream(engine.decode, ("[1]",), step), TextStream(engine.decode, ("[1]",))
    a = "".join(incremental.push(i) for i in ids) + incremental.flush()
    b = "".join(whole.push(i) for i in ids) + whole.flush()
    assert a == b == engine.decode(ids).split("[1]")[0] and incremental.stopped


class Recorder:
    """A job's events as they come, with when the first delta and the end arrived."""

    def __init__(self):
        self.parts: list[str] = []
        self.result = None
        self.first_at = 0.0
        self.done = threading.Event()

    def __call__(self, kind, payload):
        if kind == "delta":
            self.parts.append(payload)
            self.first_at = self.first_at or time.monotonic()
        elif kind in ("done", "error"):
            self.result = payload
            self.done.set()

    @property
    def text(self) -> str:
        return "".join(self.parts)


def test_a_request_joins_the_running_batch_and_gets_what_it_would_alone(engine):
    """Continuous batching: a short request arriving while a long one decodes starts at the next
    step (it ends long before the long one), and joining rows of other widths changes no row's
    greedy answer."""
    long_prompt = "The registry keeps models, versions and aliases, and approvals " * 3
    alone = {p: run(engine, [p], [Sampling(max_tokens=n)])[0][0]
             for p, n in (("A", 300), ("Routes send requests to", 12), (long_prompt, 12))}
    scheduler = Scheduler(engine, max_batch=4)
    try:
        first = Recorder()
        scheduler.submit([Job(engine.encode("A"), Sampling(max_tokens=300), first)])
        while len(first.parts) < 5:
            assert not first.done.wait(0.005), first.result
        joined = [Recorder(), Recorder()]
        for rec, prompt in zip(joined, ("Routes send requests to", long_prompt), strict=True):
            scheduler.submit([Job(engine.encode(prompt), Sampling(max_tokens=12), rec)])
        for rec in joined:
            assert rec.done.wait(30)
        assert not first.done.is_set()  # the short ones did not wait for the long one
        assert first.done.wait(60)
        assert scheduler.joins >= 1
        assert [r.text for r in joined] == [alone["Routes send requests to"], alone[long_prompt]]
        assert first.text == alone["A"] and first.result.finish_reason in ("length", "stop")
    finally:
        scheduler.close()


def test_seeded_rows_are_reproducible_whatever_shares_their_batch(engine):
    seeded = Sampling(max_tokens=12, temperature=1.0, seed=42)
    alone = run(engine, ["The model"], [seeded])[0][0]
    mixed = run(engine, ["Routes", "The model", "A"],
                [Sampling(max_tokens=12, temperature=1.2), seeded, Sampling(max_tokens=5)])
    assert mixed[1][0] == alone


def test_the_row_sampler_keeps_to_top_p_and_temperature():
    from services.modelserver.sampling import RowSampler

    logits = torch.full((64, 10), -10.0)
    logits[:, 3] = logits[:, 7] = 2.0  # two likely tokens, eight unlikely ones
    nucleus = RowSampler([Sampling(temperature=1.0, top_p=0.6)] * 64, [None] * 64, "cpu")(logits)
    assert set(nucleus.tolist()) == {3, 7}  # top_p 0.6 keeps exactly the two
    greedy = RowSampler([Sampling()] * 64, [None] * 64, "cpu")(logits)
    assert set(greedy.tolist()) == {3}
    hot = RowSampler([Sampling(temperature=50.0)] * 64, [None] * 64, "cpu")(logits)
    assert len(set(hot.tolist())) > 4  # a high temperature flattens the distribution


def test_a_full_queue_refuses_at_once_with_a_retry_delay(engine):
    scheduler = Scheduler(engine, max_batch=1, max_waiting=1)
    try:
        running, waiting = Recorder(), Recorder()
        scheduler.submit([Job(engine.encode("A"), Sampling(max_tokens=200), running)])
        while not running.parts:
            assert not running.done.wait(0.005)
        scheduler.submit([Job(engine.encode("B"), Sampling(max_tokens=4), waiting)])
        started = time.monotonic()
        with pytest.raises(Overloaded) as refused:
            scheduler.submit([Job(engine.encode("C"), Sampling(max_tokens=4), Recorder())])
        assert time.monotonic() - started < 0.05
        assert 0.05 <= refused.value.retry_after_s <= 30 and "at capacity" in str(refused.value)
        assert scheduler.refused == 1
        assert running.done.wait(60) and waiting.done.wait(30)  # what was admitted still completes
        assert waiting.result.output_tokens <= 4
    finally:
        scheduler.close()


def test_the_engine_times_its_thread_counts_only_when_nobody_set_one(engine, monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("LLMOPS_TORCH_THREADS_TUNE", raising=False)
        assert engine.tune_threads(4, (1, 2)) == before  # set by hand (or by nobody we know): kept
        monkeypatch.setenv("LLMOPS_TORCH_THREADS_TUNE", "1")
        chosen = engine.tune_threads(4, (1, 2))
        assert chosen in (1, 2) and torch.get_num_threads() == chosen == engine.threads
    finally:
        torch.set_num_threads(before)


def test_a_request_that_fails_to_start_fails_alone(engine):
    """A prompt the model cannot run (a token id past its vocabulary) fails its own request;
    the row already decoding and the requests after it are served."""
    scheduler = Scheduler(engine, max_batch=4)
    try:
        running, broken, after = Recorder(), Recorder(), Recorder()
        scheduler.submit([Job(engine.encode("A"), Sampling(max_tokens=60), running)])
        while not running.parts:
            assert not running.done.wait(0.005)
        scheduler.submit([Job([10**6], Sampling(max_tokens=4), broken)])
        assert broken.done.wait(30) and broken.result.startswith("generation failed")
        assert running.done.wait(60) and running.result.finish_reason in ("length", "stop")
        assert running.text == run(engine, ["A"], [Sampling(max_tokens=60)])[0][0]
        scheduler.submit([Job(engine.encode("B"), Sampling(max_tokens=3), after)])
        assert after.done.wait(30) and after.result.output_tokens <= 3
        assert scheduler.busy == 0
    finally:
        scheduler.close()
