"""A pipeline scored on an evaluation set, as a user meets it: each question asked through the
pipeline (its bundle's prompt, index, route and sampling), then
- retrieval hit rate: the row's source document is among the chunks the answer cites;
- answer match: the answer matches the reference exactly or contains one of its key phrases."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmops.evaluation import exact
from llmops.evaluation.datasets import Dataset


@dataclass(frozen=True)
class Answer:
    question: str
    reference: str
    answer: str
    cited: tuple[str, ...]  # document ids, in citation order
    hit: bool | None  # None: the row names no source
    right: bool
    latency_ms: float
    model: str


@dataclass
class Report:
    pipeline: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def hit_rate(self) -> float:
        scored = [a.hit for a in self.answers if a.hit is not None]
        return sum(scored) / len(scored) if scored else 0.0

    @property
    def answer_match(self) -> float:
        return sum(a.right for a in self.answers) / len(self.answers) if self.answers else 0.0

    @property
    def latency_p50_ms(self) -> float:
        return statistics.median(a.latency_ms for a in self.answers) if self.answers else 0.0

    def summary(self) -> str:
        n = len(self.answers)
        models = sorted({a.model for a in self.answers if a.model})
        return (f"{self.pipeline} ({', '.join(models) or '-'}): {n} questions, retrieval hit rate "
                f"{self.hit_rate:.0%}, answer match {self.answer_match:.0%} "
                f"({sum(a.right for a in self.answers)}/{n}), latency p50 {self.latency_p50_ms:.0f} ms")


def evaluate(pipeline_client, pipeline: str, ds: Dataset, *, limit: int = 0, max_tokens: int = 0,
             timeout_s: float = 300.0, progress: Callable[[], None] = lambda: None) -> Report:
    """Ask every evaluation question of `ds` through `pipeline` (a PipelineClient and `name@alias`)."""
    report = Report(pipeline)
    items = ds.evaluation[:limit] if limit else ds.evaluation
    for i, (messages, reference) in enumerate(items):
        expect = ds.expectation(i)
        question = messages[-1]["content"]
        started = time.perf_counter()
        out = pipeline_client.run(pipeline, question, max_tokens=max_tokens, timeout=timeout_s)
        latency = (time.perf_counter() - started) * 1e3
        cited = tuple(c.document_id for c in out.citations)
        hit = any(s in cited for s in expect.sources) if expect.sources else None
        report.answers.append(Answer(question, reference, out.answer, cited, hit,
                                     exact.answer_match(out.answer, reference, expect.key_phrases), latency,
                                     out.versions.model))
        progress()
    return report
