"""The engine in process: batching gives each row its own answer, sampling and stops behave,
and streamed detokenisation never splits a character or leaks part of a stop sequence."""

from __future__ import annotations

import threading

import pytest

from services.modelserver.batcher import Batcher
from services.modelserver.engine import Engine, Job, RequestError
from services.modelserver.sampling import Sampling, TextStream


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


def test_cancel_stops_a_row_and_the_batcher_goes_on(engine):
    batcher = Batcher(engine)
    got, done = [], threading.Event()

    def emit(kind, payload):
        got.append((kind, payload))
        if kind == "delta" and len(got) == 3:
            job.cancel()
        if kind in ("done", "error"):
            done.set()

    job = Job(engine.encode("The registry"), Sampling(max_tokens=400), emit)
    batcher.submit(job)
    assert done.wait(30)
    result = got[-1][1]
    assert result.finish_reason == "cancelled" and result.output_tokens < 20
    assert engine.last_cancel_s is not None and engine.last_cancel_s < 1.0
    second = run(engine, ["The registry"], [Sampling(max_tokens=3)])
    assert second[0][1].output_tokens <= 3
    batcher.close()


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
