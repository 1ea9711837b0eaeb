"""What an evaluation asks, and how: a registry model version answers through an evaluation route
pinned to that version (`eval-{model}-{version}`, created once: routes are immutable), a route by
name, and a pipeline bundle version through the pipeline service, as its users meet it (prompt,
retrieval, route, sampling of that version). Every row is greedy, so a rerun gives the same
answers.

A call the service refuses for load (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED) is
retried with backoff; a row that still fails, or fails for any other reason, is kept with its
error (scored wrong, counted in error_rate): an evaluation measures errors too."""

from __future__ import annotations

import time
from dataclasses import dataclass

from llmops.client.base import CallError
from llmops.evaluation import compare, rag, scoring
from llmops.evaluation.datasets import Expectation
from llmops.evaluation.judge import Judge

MODEL, PIPELINE, ROUTE = 1, 2, 3  # TargetKind
KIND_NAMES = {MODEL: "model", PIPELINE: "pipeline", ROUTE: "route"}
RETRYABLE = {"UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}
ROUTE_PREFIX = "route:"


@dataclass(frozen=True)
class Target:
    kind: int
    version: str  # `models/{m}/versions/{n}`, or the route name
    ask: str  # what the calls name: a route, or a bundle reference `name@version`

    def to_dict(self) -> dict:
        return {"kind": self.kind, "version": self.version, "ask": self.ask}

    @classmethod
    def from_dict(cls, d: dict | None) -> Target | None:
        return cls(d["kind"], d["version"], d["ask"]) if d else None


def resolve(client, ref: str) -> Target:
    """`route:NAME` or a registry reference (`name@version`, `name@alias`), to what it is now;
    raises the client's CallError (NOT_FOUND for an unknown one)."""
    if ref.startswith(ROUTE_PREFIX):
        route = ref.removeprefix(ROUTE_PREFIX)
        client.generation.get_route(route)
        return Target(ROUTE, route, route)
    version = client.registry.get_version(ref)
    model = version.name.split("/")[1]
    pinned = f"{model}@{version.version}"  # an alias could move mid-run; the version cannot
    if version.HasField("pipeline_spec"):
        return Target(PIPELINE, version.name, pinned)
    return Target(MODEL, version.name, "")


def prepare(client, target: Target) -> Target:
    """A model version gets its evaluation route (created when missing)."""
    if target.kind != MODEL or target.ask:
        return target
    model, _, rest = target.version.removeprefix("models/").partition("/versions/")
    return Target(MODEL, target.version, compare.route_for(client.generation, f"{model}@{rest}"))


def retried(call, attempts: int, delay_s: float):
    """`call()`, again after a growing pause (or the delay the service asked for) while it fails
    with a code that says the service is busy or away; the last failure is raised."""
    for attempt in range(attempts):
        try:
            return call()
        except CallError as exc:
            if exc.code.name not in RETRYABLE or attempt + 1 == attempts:
                raise
            time.sleep(max(delay_s, exc.retry_after_s or 0.0))
            delay_s *= 2
    return None


def answer(client, target: Target, index: int, side: str, messages: list[dict], reference: str,
           expect: Expectation, *, max_tokens: int, judge: Judge | None, attempts: int = 4,
           timeout_s: float = 300.0) -> scoring.Row:
    question = messages[-1]["content"] if messages else ""
    row = scoring.Row(index, side, question, reference)
    try:
        if target.kind == PIPELINE:
            retried(lambda: _ask_pipeline(client, target, row, expect, max_tokens, timeout_s), attempts, 0.5)
        else:
            retried(lambda: _ask_route(client, target, row, messages, expect, max_tokens, timeout_s), attempts, 0.5)
    except CallError as exc:
        return scoring.failed(row, f"{exc.code.name}: {exc.message}")
    if judge is not None:
        try:
            verdict = judge(question, reference, row.answer)
            row.judge_score, row.judge_reason = verdict.score, verdict.reason
        except CallError as exc:  # the judge's failure is not the target's: no score, no error
            row.judge_reason = f"not judged: {exc.code.name}: {exc.message}"[:500]
    return row


def _ask_route(client, target, row, messages, expect, max_tokens, timeout_s) -> None:
    out, row.latency_ms = scoring.timed(lambda: client.generation.generate(
        target.ask, messages, max_tokens=max_tokens, temperature=0.0,
        timeout=timeout_s))
    row.answer, row.output_tokens = out.text, out.usage.output_tokens
    row.scores = scoring.answer_scores(out.text, row.reference, expect.key_phrases)


def _ask_pipeline(client, target, row, expect, max_tokens, timeout_s) -> None:
    out, row.latency_ms = scoring.timed(lambda: client.pipeline.run(
        target.ask, row.question, max_tokens=max_tokens, sampling={"temperature": 0.0}, timeout=timeout_s))
    row.answer, row.output_tokens = out.answer, out.usage.output_tokens
    row.cited = tuple(c.document_id for c in out.citations)
    row.scores = scoring.answer_scores(out.answer, row.reference, expect.key_phrases)
    found = rag.retrieval_scores(row.cited, expect.sources)
    if found is not None:
        hit, recall, rr = found
        row.scores.update(hit=float(hit), recall=recall, reciprocal_rank=rr)
    supported = rag.citation_support(out.answer, [(c.marker, c.text) for c in out.citations])
    if supported is not None:
        row.scores["citation_supported"] = float(supported)
