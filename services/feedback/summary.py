"""Monitoring aggregates: per pipeline version and model version over a window, the volume and
error rate of requests, latency percentiles and tokens of answered ones, and what feedback said
about them (quarantined feedback excluded). Progressive releases compare a candidate with the
stable version on these."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from services.feedback.store import FeedbackRow, InferenceRow

THUMB_UP, THUMB_DOWN = 1, 2


@dataclass
class Summary:
    pipeline_version: str
    model_version: str
    requests: int = 0
    feedback_count: int = 0
    approval_rate: float = 0.0
    mean_rating: float = 0.0
    corrections: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    total_tokens: int = 0
    errors: int = 0
    error_rate: float = 0.0
    thumbs_down: int = 0
    thumbs_down_rate: float = 0.0


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summarize(rows: list[tuple[InferenceRow, list[FeedbackRow]]]) -> list[Summary]:
    groups: dict[tuple[str, str], list[tuple[InferenceRow, list[FeedbackRow]]]] = defaultdict(list)
    for inference, fb in rows:
        groups[(inference.pipeline_version, inference.model_version)].append((inference, fb))
    out = []
    for (pipeline_version, model_version), items in sorted(groups.items()):
        s = Summary(pipeline_version, model_version, requests=len(items))
        s.errors = sum(1 for i, _ in items if i.error)
        s.error_rate = s.errors / len(items)
        items = [(i, fb) for i, fb in items if not i.error]
        latencies = sorted(i.latency_ms for i, _ in items)
        s.latency_p50_ms, s.latency_p95_ms = percentile(latencies, 0.5), percentile(latencies, 0.95)
        s.total_tokens = sum(i.input_tokens + i.output_tokens for i, _ in items)
        feedback = [f for _, fb in items for f in fb]
        s.feedback_count = len(feedback)
        ups = sum(1 for f in feedback if f.thumb == THUMB_UP)
        downs = sum(1 for f in feedback if f.thumb == THUMB_DOWN)
        s.approval_rate = ups / (ups + downs) if ups + downs else 0.0
        s.thumbs_down = downs
        s.thumbs_down_rate = len({f.request_id for f in feedback if f.thumb == THUMB_DOWN}) / len(items) if items else 0.0
        ratings = [f.rating for f in feedback if f.rating]
        s.mean_rating = sum(ratings) / len(ratings) if ratings else 0.0
        s.corrections = sum(1 for f in feedback if f.corrected_answer)
        out.append(s)
    return out
