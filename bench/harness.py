"""The harness every benchmark uses: warm-up, interleaved A/B rounds (so drift on a shared
machine hits both sides alike), medians and ratios, and a JSON report.

    result = compare("direct", direct_fn, "service", service_fn)
    write_report("my_bench", {"latency": result}, {"hop": ("latency", "added_p50_ms", "<=", 1.0)})
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Stats:
    n: int
    p50_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        ms = sorted(s * 1000 for s in seconds)
        return cls(len(ms), statistics.median(ms), ms[min(len(ms) - 1, int(0.95 * len(ms)))], statistics.fmean(ms), ms[0])


@dataclass(frozen=True)
class Comparison:
    baseline_name: str
    candidate_name: str
    baseline: Stats
    candidate: Stats

    @property
    def ratio_p50(self) -> float:
        return self.candidate.p50_ms / self.baseline.p50_ms

    @property
    def added_p50_ms(self) -> float:
        return self.candidate.p50_ms - self.baseline.p50_ms

    @property
    def throughput_ratio(self) -> float:
        """Baseline time over candidate time: the candidate's throughput relative to the baseline."""
        return self.baseline.p50_ms / self.candidate.p50_ms

    def as_dict(self) -> dict:
        return {"baseline": self.baseline_name, "candidate": self.candidate_name,
                self.baseline_name: asdict(self.baseline), self.candidate_name: asdict(self.candidate),
                "ratio_p50": round(self.ratio_p50, 3), "added_p50_ms": round(self.added_p50_ms, 4)}


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def compare(baseline_name: str, baseline: Callable[[], object], candidate_name: str, candidate: Callable[[], object],
            *, warmup: int = 200, rounds: int = 20, per_round: int = 100) -> Comparison:
    """Time both callables per call, alternating which goes first each round."""
    _timed(baseline, warmup)
    _timed(candidate, warmup)
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        if r % 2 == 0:
            a += _timed(baseline, per_round)
            b += _timed(candidate, per_round)
        else:
            b += _timed(candidate, per_round)
            a += _timed(baseline, per_round)
    return Comparison(baseline_name, candidate_name, Stats.of(a), Stats.of(b))


@dataclass(frozen=True)
class Throughput:
    baseline_name: str
    candidate_name: str
    concurrency: int
    baseline_qps: float
    candidate_qps: float

    @property
    def ratio(self) -> float:
        return self.candidate_qps / self.baseline_qps

    def as_dict(self) -> dict:
        return {"baseline": self.baseline_name, "candidate": self.candidate_name, "concurrency": self.concurrency,
                f"{self.baseline_name}_qps": round(self.baseline_qps, 1),
                f"{self.candidate_name}_qps": round(self.candidate_qps, 1), "ratio": round(self.ratio, 3)}


def _qps(fn: Callable[[], object], concurrency: int, seconds: float) -> float:
    import threading

    stop = time.perf_counter() + seconds
    counts = [0] * concurrency

    def worker(i: int) -> None:
        while time.perf_counter() < stop:
            fn()
            counts[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - start)


def compare_throughput(baseline_name: str, baseline: Callable[[], object], candidate_name: str,
                       candidate: Callable[[], object], *, concurrency: int, rounds: int = 6,
                       seconds: float = 2.0) -> Throughput:
    """Calls per second with `concurrency` threads calling in a loop, alternating the two sides
    over `rounds` rounds; the median round of each side is reported."""
    _qps(baseline, concurrency, 0.5)
    _qps(candidate, concurrency, 0.5)
    a: list[float] = []
    b: list[float] = []
    for r in range(rounds):
        first, second = ((baseline, a), (candidate, b)) if r % 2 == 0 else ((candidate, b), (baseline, a))
        first[1].append(_qps(first[0], concurrency, seconds))
        second[1].append(_qps(second[0], concurrency, seconds))
    return Throughput(baseline_name, candidate_name, concurrency, statistics.median(a), statistics.median(b))


def rss_mib(pid: int) -> float:
    """A process's resident memory (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def check(value: float, op: str, bound: float) -> bool:
    return value <= bound if op == "<=" else value >= bound


def save(name: str, report: dict, echo: bool = False) -> None:
    """Write `bench/results/<name>.json` (and print it when `echo`)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2))
    if echo:
        print(json.dumps(report, indent=2))


def write_report(name: str, comparisons: dict[str, Comparison | Throughput],
                 targets: dict[str, tuple[str, str, str, float]], extra: dict | None = None) -> dict:
    """Print and save `bench/results/<name>.json`. `targets` maps a label to (comparison, metric,
    "<=" or ">=" bound), e.g. {"hop": ("unary", "added_p50_ms", "<=", 1.0)}."""
    report = {
        "benchmark": name,
        "python": sys.version.split()[0],
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "comparisons": {k: c.as_dict() for k, c in comparisons.items()},
        "targets": {},
        **(extra or {}),
    }
    for label, (comp, metric, op, bound) in targets.items():  # type: ignore[misc]
        value = getattr(comparisons[comp], metric)
        report["targets"][label] = {"metric": f"{comp}.{metric}", "value": round(value, 4), "target": f"{op} {bound}",
                                    "met": check(value, op, bound)}
    save(name, report)
    for k, c in comparisons.items():
        if isinstance(c, Throughput):
            print(f"{k}: {c.baseline_name} {c.baseline_qps:.1f}/s | {c.candidate_name} {c.candidate_qps:.1f}/s "
                  f"at concurrency {c.concurrency} | ratio {c.ratio:.2f}x")
            continue
        print(f"{k}: {c.baseline_name} p50 {c.baseline.p50_ms:.3f} ms p95 {c.baseline.p95_ms:.3f} ms | "
              f"{c.candidate_name} p50 {c.candidate.p50_ms:.3f} ms p95 {c.candidate.p95_ms:.3f} ms | "
              f"ratio {c.ratio_p50:.2f}x, added {c.added_p50_ms:.3f} ms")
    for label, t in report["targets"].items():
        print(f"target {label}: {t['metric']} = {t['value']} (target {t['target']}) {'MET' if t['met'] else 'MISSED'}")
    print(f"report: {RESULTS / (name + '.json')}")
    return report
