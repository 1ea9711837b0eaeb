"""One evaluation row answered and scored, the metrics of a run, and target vs baseline on the
same rows: the vocabulary evaluation runs store, the registry's gates read and the CLI prints.

Per-row scores (`Row.scores`) are 0/1 for right/wrong metrics and 0-1 for partial ones; a row
whose call failed keeps its error and scores 0 on every answer metric (it was not answered
right), so error-prone versions cannot look better by failing the hard questions.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from llmops.evaluation import exact, stats

# per-row score -> the run metric that averages it; `higher` is better unless listed in LOWER
ANSWER_SCORES = ("exact_match", "answer_match", "token_f1", "contains_reference")
METRIC_OF = {"exact_match": "exact_match", "answer_match": "answer_match", "token_f1": "token_f1",
             "contains_reference": "contains_reference", "hit": "hit_rate", "recall": "recall",
             "reciprocal_rank": "mrr", "citation_supported": "citation_support", "error": "error_rate",
             "judge_score": "judge_score"}
BINARY = frozenset({"exact_match", "answer_match", "contains_reference", "hit", "citation_supported", "error"})
LOWER_IS_BETTER = frozenset({"error_rate", "latency_p50_ms", "latency_p95_ms"})
GATE_METRICS = frozenset(METRIC_OF.values())


@dataclass
class Row:
    index: int
    side: str  # "target" or "baseline"
    question: str
    reference: str
    answer: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    output_tokens: int = 0
    judge_score: float | None = None
    judge_reason: str = ""
    error: str = ""
    cited: tuple[str, ...] = ()

    def per_row(self) -> dict[str, float]:
        """Every per-row score, the error and the judge's included."""
        out = dict(self.scores)
        out["error"] = float(bool(self.error))
        if self.judge_score is not None:
            out["judge_score"] = self.judge_score
        return out


def answer_scores(answer: str, reference: str, key_phrases: Sequence[str] = ()) -> dict[str, float]:
    return {"exact_match": float(exact.exact_match(answer, reference)),
            "answer_match": float(exact.answer_match(answer, reference, tuple(key_phrases))),
            "token_f1": exact.token_f1(answer, reference),
            "contains_reference": float(exact.contains_reference(answer, reference))}


def failed(row: Row, error: str) -> Row:
    row.error = error[:500]
    row.scores = dict.fromkeys(ANSWER_SCORES, 0.0)
    return row


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    out = call()
    return out, (time.perf_counter() - started) * 1e3


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def aggregate(rows: Sequence[Row]) -> dict[str, float]:
    """A run's metrics: answer metrics over every row (failed rows count as wrong), retrieval and
    citation metrics over the rows they apply to, latency over answered rows."""
    if not rows:
        return {"rows": 0.0}
    out: dict[str, float] = {"rows": float(len(rows))}
    per = [r.per_row() for r in rows]
    for score, metric in METRIC_OF.items():
        values = [p[score] for p in per if score in p]
        if values:
            out[metric] = statistics.fmean(values)
    answered = [r for r in rows if not r.error]
    latencies = [r.latency_ms for r in answered]
    out["latency_p50_ms"] = _percentile(latencies, 0.5)
    out["latency_p95_ms"] = _percentile(latencies, 0.95)
    out["mean_output_tokens"] = statistics.fmean(r.output_tokens for r in answered) if answered else 0.0
    return out


@dataclass(frozen=True)
class Comparison:
    metric: str
    value: float
    baseline_value: float
    difference: stats.PairedDifference
    p_value: float | None  # McNemar, right/wrong metrics only

    @property
    def verdict(self) -> str:
        return verdict(self.metric, self.difference.low, self.difference.high)


def verdict(metric: str, low: float, high: float) -> str:
    """What a 95% interval of (target - baseline) on `metric` says."""
    lower = metric in LOWER_IS_BETTER
    if (high < 0) if lower else (low > 0):
        return "the target is better"
    if (low > 0) if lower else (high < 0):
        return "the target is worse"
    return "not significant"


def compare(target: Sequence[Row], baseline: Sequence[Row]) -> list[Comparison]:
    """Target minus baseline per metric over the rows both sides scored (paired by index)."""
    by_index = {r.index: r.per_row() for r in baseline}
    paired = [(r.per_row(), by_index[r.index]) for r in target if r.index in by_index]
    out = []
    for score, metric in METRIC_OF.items():
        pairs = [(t[score], b[score]) for t, b in paired if score in t and score in b]
        if not pairs:
            continue
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        p = stats.mcnemar([x >= 0.5 for x in a], [y >= 0.5 for y in b]).p_value if score in BINARY else None
        out.append(Comparison(metric, statistics.fmean(a), statistics.fmean(b), stats.paired_bootstrap(a, b), p))
    return out
