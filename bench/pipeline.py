"""Pipeline benchmark (`python -m bench.pipeline`): every service its own process, as in the
end-to-end tests (the demo model trained for a few steps, a small index).

- `end_to_end`: RunPipeline p50 vs the sum of the direct component calls it stands for, timed
  in the same rounds: resolving the bundle (registry GetModelVersion), AssemblePrompt with the
  same arguments, and the answer streamed from generation with the same messages and sampling
  (greedy, so both sides generate the same tokens). Target <= 1.2x.
- `openai_endpoint`: `POST /v1/chat/completions` (the OpenAI-compatible API, one keep-alive
  HTTP connection) vs RunPipeline over gRPC: the cost of the HTTP layer.
- `inference_logging`: RunPipeline through the pipeline as deployed (every answer written to
  the outbox and delivered to the feedback service) vs a second pipeline process without a key
  (no logging), same downstream services. Target: throughput with logging >= 0.95x.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import Comparison, Stats, write_report
from llmops.modeling import demo
from llmops.testing.rag import RagStack
from llmops.testing.services import ServiceProcess

QUESTION = "Who may move the production alias of a model?"
ROUNDS, PER_ROUND = 10, 5
DOCS = Path(__file__).resolve().parents[1] / "docs"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        model = home / "demo-llm"
        demo.build(DOCS, model, demo.DemoSpec(steps=30))
        rag = RagStack(home, model)
        try:
            return run(rag)
        finally:
            rag.close()


def measure(rag: RagStack, max_tokens: int) -> dict[str, list[float]]:
    """Per-call seconds of the three paths, `max_tokens` answer tokens each, interleaved rounds."""
    c = rag.client()
    spec = c.registry.get_version("kb-qa@production").pipeline_spec
    seed = int(spec.parameters["seed"])
    roles = ["", "system", "user", "assistant"]

    def direct() -> str:
        c.registry.get_version("kb-qa@production")
        out = c.prompt.assemble(spec.prompt_template, {"question": QUESTION}, index=spec.index, route=spec.route,
                                reserve_output_tokens=max_tokens)
        messages = [(roles[m.role], m.content) for m in out.messages]
        return "".join(m.delta for m in c.generation.stream(spec.route, messages, max_tokens=max_tokens, seed=seed))

    def pipeline() -> str:
        return c.pipeline.run("kb-qa@production", QUESTION, max_tokens=max_tokens).answer

    http = httpx.Client(base_url=f"http://{rag.http_address}", timeout=60,
                        headers={"authorization": f"Bearer {rag.keys['reader']}"})

    def openai_http() -> str:
        r = http.post("/v1/chat/completions", json={"model": "kb-qa@production", "max_tokens": max_tokens,
                                                    "messages": [{"role": "user", "content": QUESTION}]})
        r.raise_for_status()
        return r.json()["choices"][0]["message"]["content"]

    answers = {direct(), pipeline(), openai_http()}
    assert len(answers) == 1, f"the three paths must generate the same answer: {answers}"
    sides = {"direct_sum": direct, "run_pipeline": pipeline, "openai_http": openai_http}
    for fn in sides.values():  # warm-up
        for _ in range(3):
            fn()
    times: dict[str, list[float]] = {k: [] for k in sides}
    order = list(sides)
    for r in range(ROUNDS):  # interleaved, rotating which goes first
        for name in order[r % 3:] + order[:r % 3]:
            for _ in range(PER_ROUND):
                t = time.perf_counter()
                sides[name]()
                times[name].append(time.perf_counter() - t)
    http.close()
    return times


def run(rag: RagStack) -> int:
    max_tokens = int(rag.client().registry.get_version("kb-qa@production").pipeline_spec.parameters["max_tokens"])
    comparisons, spread = {}, {}
    # The bundle's answer length, and one token: generation dominates the first, so the second
    # shows the fixed cost of each path (bundle, assembly, HTTP layer) more sharply.
    for suffix, tokens in (("", max_tokens), ("_1_token", 1)) if "--only-logging" not in sys.argv else ():
        times = measure(rag, tokens)
        stats = {k: Stats.of(v) for k, v in times.items()}
        comparisons[f"end_to_end{suffix}"] = Comparison("direct_sum", "run_pipeline", stats["direct_sum"],
                                                        stats["run_pipeline"])
        comparisons[f"openai_endpoint{suffix}"] = Comparison("run_pipeline", "openai_http", stats["run_pipeline"],
                                                             stats["openai_http"])
        spread.update({f"{k}{suffix}": round(statistics.pstdev(v) * 1000, 2) for k, v in times.items()})
    comparisons.update(logging(rag, max_tokens))
    targets = {} if "--only-logging" in sys.argv else {
        "end_to_end": ("end_to_end", "ratio_p50", "<=", 1.2),
        "end_to_end_1_token": ("end_to_end_1_token", "ratio_p50", "<=", 1.2)}
    write_report("pipeline" + ("_logging" if "--only-logging" in sys.argv else ""), comparisons,
                 {**targets, "inference_logging": ("inference_logging", "throughput_ratio", ">=", 0.95),
                                           "inference_logging_1_token": ("inference_logging_1_token",
                                                                         "throughput_ratio", ">=", 0.95)},
                 {"max_tokens": max_tokens, "stdev_ms": spread,
                  "direct_parts": "registry GetModelVersion + AssemblePrompt + StreamGenerate from one client"})
    return 0


def logging(rag: RagStack, max_tokens: int) -> dict[str, Comparison]:
    """The deployed pipeline (logging every answer) vs one without a key (no logging)."""
    env = {k: v for k, v in rag.env.items() if k != "LLMOPS_PIPELINE_API_KEY"}
    nolog = ServiceProcess("pipeline-nolog", env, rag.home, module="services.pipeline",
                           prefix="LLMOPS_PIPELINE").start()
    from llmops.client import Client

    off = Client({"pipeline": nolog.address}, rag.keys["reader"])
    on = rag.client()
    out = {}
    try:
        for suffix, tokens in (("", max_tokens), ("_1_token", 1)):
            sides = {"logging_off": lambda t=tokens: off.pipeline.run("kb-qa@production", QUESTION, max_tokens=t),
                     "logging_on": lambda t=tokens: on.pipeline.run("kb-qa@production", QUESTION, max_tokens=t)}
            for fn in sides.values():
                for _ in range(3):
                    fn()
            times: dict[str, list[float]] = {k: [] for k in sides}
            for r in range(ROUNDS):
                for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
                    for _ in range(PER_ROUND):
                        t = time.perf_counter()
                        sides[name]()
                        times[name].append(time.perf_counter() - t)
            out[f"inference_logging{suffix}"] = Comparison("logging_off", "logging_on", Stats.of(times["logging_off"]),
                                                           Stats.of(times["logging_on"]))
    finally:
        off.close()
        nolog.terminate()
    return out


if __name__ == "__main__":
    sys.exit(main())
