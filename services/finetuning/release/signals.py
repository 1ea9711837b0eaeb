"""What a progressive release judges: each version's live signals over the current step (from the
feedback service's summary: requests, errors, thumbs down, latency p95; with a judge, the mean
score of a sample of its answers) and whether the candidate is worse than the stable version by
more than the declared margins, with enough requests (and judged answers) on both sides to say so."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Margins:
    max_error_rate_increase: float = 0.05  # negative: not checked
    max_thumbs_down_rate_increase: float = 0.1
    max_latency_p95_ratio: float = 1.5
    min_requests: int = 20
    max_judge_score_drop: float = 0.5  # only with a judge
    min_judged: int = 5

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Signals:
    requests: int = 0
    errors: int = 0
    thumbs_down: int = 0
    latency_p95_ms: float = 0.0
    judged: int = 0  # answers the judge scored
    judge_sum: float = 0.0

    @property
    def judge_score(self) -> float:
        return self.judge_sum / self.judged if self.judged else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def thumbs_down_rate(self) -> float:
        answered = self.requests - self.errors
        return self.thumbs_down / answered if answered else 0.0

    def to_dict(self) -> dict[str, float]:
        out = {"requests": float(self.requests), "error_rate": self.error_rate,
               "thumbs_down_rate": self.thumbs_down_rate, "latency_p95_ms": self.latency_p95_ms}
        if self.judged:
            out.update(judged=float(self.judged), judge_score=self.judge_score)
        return out


def of_version(summaries, pipeline_version: str, judged: dict | None = None) -> Signals:
    """One bundle version's signals from the summary's rows (one per model version it used) and
    the judge's scores so far (`judged`: version -> [count, sum])."""
    count, total = (judged or {}).get(pipeline_version, (0, 0.0))
    out = Signals(judged=count, judge_sum=total)
    for s in summaries:
        if s.pipeline_version == pipeline_version:
            out.requests += s.requests
            out.errors += s.errors
            out.thumbs_down += s.thumbs_down
            out.latency_p95_ms = max(out.latency_p95_ms, s.latency_p95_ms)
    return out


def enough(m: Margins, candidate: Signals, stable: Signals, judging: bool = False) -> bool:
    """Both sides have the requests (and, when a judge samples, the judged answers) a step needs."""
    requests = candidate.requests >= m.min_requests and stable.requests >= m.min_requests
    return requests and (not judging or min(candidate.judged, stable.judged) >= m.min_judged)


def breach(m: Margins, candidate: Signals, stable: Signals) -> str | None:
    """Why the candidate is worse than the margins allow, or None (also while the requests are too
    few to judge)."""
    if (0 <= m.max_judge_score_drop and min(candidate.judged, stable.judged) >= m.min_judged
            and candidate.judge_score < stable.judge_score - m.max_judge_score_drop):
        return (f"judge score {candidate.judge_score:.2f} vs {stable.judge_score:.2f} (allowed "
                f"-{m.max_judge_score_drop:g}) over {candidate.judged} vs {stable.judged} judged answers")
    if not enough(m, candidate, stable):
        return None
    over = f"over {candidate.requests} vs {stable.requests} requests"
    if 0 <= m.max_error_rate_increase < candidate.error_rate - stable.error_rate:
        return (f"error rate {candidate.error_rate:.1%} vs {stable.error_rate:.1%} for the stable version "
                f"(allowed +{m.max_error_rate_increase:.1%}) {over}")
    if 0 <= m.max_thumbs_down_rate_increase < candidate.thumbs_down_rate - stable.thumbs_down_rate:
        return (f"thumbs-down rate {candidate.thumbs_down_rate:.1%} vs {stable.thumbs_down_rate:.1%} "
                f"(allowed +{m.max_thumbs_down_rate_increase:.1%}) {over}")
    if (m.max_latency_p95_ratio >= 0 and stable.latency_p95_ms > 0
            and candidate.latency_p95_ms > m.max_latency_p95_ratio * stable.latency_p95_ms):
        return (f"latency p95 {candidate.latency_p95_ms:.0f} ms vs {stable.latency_p95_ms:.0f} ms "
                f"(allowed x{m.max_latency_p95_ratio:g}) {over}")
    return None
