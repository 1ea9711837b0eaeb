"""Statistics for candidate vs champion on the same rows, so a comparison says how sure it is.

- `paired_bootstrap`: the mean per-row difference (candidate - champion) and its confidence
  interval from resampling rows with replacement (both sides resampled together, so a hard
  question stays hard for both); deterministic for a given seed.
- `mcnemar`: for a right/wrong metric, the exact McNemar test on the discordant rows (rows one
  side got right and the other wrong): the two-sided p-value that the sides are equally good.
Pure Python: evaluation runs inside the CLI and services that load no numpy."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedDifference:
    mean: float  # candidate - champion, averaged over rows
    low: float  # confidence interval of `mean`
    high: float
    confidence: float
    rows: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_bootstrap(candidate: Sequence[float], champion: Sequence[float], *, confidence: float = 0.95,
                     resamples: int = 2000, seed: int = 0) -> PairedDifference:
    """Percentile bootstrap over rows of the mean difference."""
    if len(candidate) != len(champion):
        raise ValueError(f"paired samples differ in length: {len(candidate)} vs {len(champion)}")
    diffs = [float(a) - float(b) for a, b in zip(candidate, champion, strict=True)]
    n = len(diffs)
    if n == 0:
        return PairedDifference(0.0, 0.0, 0.0, confidence, 0)
    mean = math.fsum(diffs) / n
    rng = random.Random(seed)
    means = sorted(math.fsum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    tail = (1 - confidence) / 2
    low = means[max(0, math.floor(tail * resamples))]
    high = means[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return PairedDifference(mean, low, high, confidence, n)


@dataclass(frozen=True)
class McNemar:
    candidate_only: int  # rows the candidate got right and the champion wrong
    champion_only: int
    p_value: float  # two-sided, exact (binomial on the discordant rows)


def mcnemar(candidate: Sequence[bool], champion: Sequence[bool]) -> McNemar:
    if len(candidate) != len(champion):
        raise ValueError(f"paired samples differ in length: {len(candidate)} vs {len(champion)}")
    b = sum(1 for a, c in zip(candidate, champion, strict=True) if a and not c)
    c = sum(1 for a, ch in zip(candidate, champion, strict=True) if ch and not a)
    n = b + c
    if n == 0:
        return McNemar(0, 0, 1.0)
    tail = math.fsum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return McNemar(b, c, min(1.0, 2 * tail))
