"""Approval gates: the evidence a version needs before a person may approve it.

A model (or pipeline bundle) may declare a gate: on a dataset, a metric of the candidate is at
least the champion's minus a margin, compared on the same rows in one evaluation run (and at
least a floor, when set); with `require_confidence` the 95% paired interval must clear the margin,
not just the mean. The evidence is the evaluation records the evaluation service writes against
versions (RecordEvaluation, a method only that service's key is granted). The champion is the
version the gate's alias points to now: a record compared with an older champion is stale.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from llmops.core.errors import InvalidArgument
from llmops.evaluation.scoring import GATE_METRICS, LOWER_IS_BETTER
from services.registry import names


@dataclass(frozen=True)
class Gate:
    dataset_uri: str
    metric: str
    max_regression: float = 0.0
    min_value: float | None = None
    require_confidence: bool = False
    champion_alias: str = "production"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Gate | None:
        return cls(**d) if d else None

    def describe(self) -> str:
        lower = self.metric in LOWER_IS_BETTER
        parts = [f"{self.metric} on {self.dataset_uri}: "
                 f"{'at most' if lower else 'at least'} the {self.champion_alias} version's "
                 f"{'plus' if lower else 'minus'} {self.max_regression:g}"
                 + (" (the whole 95% interval)" if self.require_confidence else "")]
        if self.min_value is not None:
            parts.append(f"{'at most' if lower else 'at least'} {self.min_value:g}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Comparison:
    champion_version: str
    champion_value: float
    difference: float
    ci_low: float
    ci_high: float
    rows: int
    p_value: float | None = None


@dataclass(frozen=True)
class Evidence:
    """One evaluation's result recorded against a version."""

    evaluation: str
    model: str
    version: int
    dataset_uri: str
    dataset_version: str
    metrics: dict[str, float]
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    rows: int = 0
    recorded_by: str = ""
    time_us: int = 0
    id: int = 0  # position in the registry's records (a page token's position)


def check_gate(gate: Gate) -> Gate:
    if not gate.dataset_uri or len(gate.dataset_uri) > 1024:
        raise InvalidArgument("gate.dataset_uri is required (the dataset the evaluation runs, e.g. "
                              "`registry:docs-qa`), up to 1024 characters", field="gate.dataset_uri")
    if gate.metric not in GATE_METRICS:
        raise InvalidArgument(f"gate.metric {gate.metric[:60]!r} is not a metric evaluations report; use one of "
                              f"{', '.join(sorted(GATE_METRICS))}", field="gate.metric")
    if not (math.isfinite(gate.max_regression) and gate.max_regression >= 0):
        raise InvalidArgument(f"gate.max_regression must be a number >= 0, got {gate.max_regression}",
                              field="gate.max_regression")
    if gate.min_value is not None and not math.isfinite(gate.min_value):
        raise InvalidArgument("gate.min_value must be a finite number", field="gate.min_value")
    names.check_alias(gate.champion_alias)
    return gate


def unmet(gate: Gate, ref: str, records: list[Evidence], champion: str | None) -> str | None:
    """None when one of `records` (newest first) passes `gate` for version `ref`, else why none
    does (the newest few reasons), in words a person can act on. `champion`: the champion's
    version name, None when there is none to compare with."""
    on_dataset = [r for r in records if r.dataset_uri == gate.dataset_uri]
    if not on_dataset:
        baseline = f" against {champion}" if champion else ""
        return (f"the gate needs an evaluation of {ref} on {gate.dataset_uri}{baseline} and none is recorded; run "
                f"`llmops eval create {ref} --dataset {gate.dataset_uri} --watch`")
    reasons = []
    for r in on_dataset:
        why = _fails(gate, r, champion)
        if why is None:
            return None
        reasons.append(f"evaluation {r.evaluation}: {why}")
    return "; ".join(reasons[:3])


def _fails(gate: Gate, r: Evidence, champion: str | None) -> str | None:
    value = r.metrics.get(gate.metric)
    if value is None:
        hint = " (it needs a judge: --judge and --rubric)" if gate.metric == "judge_score" else ""
        return f"it reports no {gate.metric}{hint}"
    lower = gate.metric in LOWER_IS_BETTER
    if gate.min_value is not None and (value > gate.min_value if lower else value < gate.min_value):
        return f"{gate.metric} {value:.3g} is {'above the ceiling' if lower else 'below the floor'} {gate.min_value:g}"
    if champion is None:
        return None
    c = r.comparisons.get(gate.metric)
    if c is None or c.champion_version != champion:
        seen = f" (it compared with {c.champion_version})" if c is not None else ""
        return f"it was not compared with the champion {champion}{seen}"
    # the candidate's gain, in the direction that is better
    gain, low = (-c.difference, -c.ci_high) if lower else (c.difference, c.ci_low)
    bound = low if gate.require_confidence else gain
    if bound < -gate.max_regression:
        what = "the 95% interval reaches" if gate.require_confidence else "the difference is"
        return (f"{gate.metric} {value:.3g} vs the champion's {c.champion_value:.3g}: {what} "
                f"{bound:+.3g}, past the allowed regression of {gate.max_regression:g} "
                f"(difference {c.difference:+.3g}, 95% CI {c.ci_low:+.3g} to {c.ci_high:+.3g}, {c.rows} rows)")
    return None
