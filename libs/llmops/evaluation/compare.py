"""Champion vs candidate: a dataset's evaluation questions answered through generation routes
(greedy, one at a time so latencies are comparable), scored by exact match (and, for rows with
key phrases, answer match: exact or containing a key phrase) and token F1, with the answer length
and latency, side by side, and how sure each difference is (paired bootstrap interval, McNemar).

A side is a route name, or a registry model reference (`name@version`, `name@alias`), for which
an evaluation route `eval-{name}-{version}` targeting just that model is created once (routes
are immutable and creating one takes the admin role; pass route names to avoid that).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llmops.client.base import CallError
from llmops.client.generation import GenerationClient, registry_target
from llmops.core.errors import FailedPrecondition
from llmops.evaluation import exact, stats


@dataclass
class SideResult:
    label: str  # as the user named it
    route: str
    served_by: str = ""
    answers: list[str] = field(default_factory=list)
    output_tokens: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    matches: list[bool] = field(default_factory=list)
    answer_matches: list[bool] = field(default_factory=list)
    f1: list[float] = field(default_factory=list)
    scored_by_phrases: bool = False
    verdicts: list = field(default_factory=list)  # judge.Verdict per question, when a judge was asked

    @property
    def exact_match(self) -> float:
        return sum(self.matches) / len(self.matches) if self.matches else 0.0

    @property
    def answer_match(self) -> float:
        return sum(self.answer_matches) / len(self.answer_matches) if self.answer_matches else 0.0

    @property
    def token_f1(self) -> float:
        return statistics.fmean(self.f1) if self.f1 else 0.0

    @property
    def judge_scores(self) -> list[float | None]:
        return [v.score for v in self.verdicts]

    @property
    def judge_mean(self) -> float | None:
        scored = [x for x in self.judge_scores if x is not None]
        return statistics.fmean(scored) if scored else None

    @property
    def mean_answer_tokens(self) -> float:
        return statistics.fmean(self.output_tokens) if self.output_tokens else 0.0

    @property
    def latency_p50_ms(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else 0.0

    @property
    def latency_mean_ms(self) -> float:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else 0.0


def route_for(generation: GenerationClient, side: str) -> str:
    """The route to evaluate `side` through (created for a model reference when missing)."""
    if "@" not in side:
        return side
    model, _, selector = side.partition("@")
    route = re.sub(r"[^a-z0-9_.-]", "-", f"eval-{model}-{selector}".lower())[:63]
    try:
        existing = generation.get_route(route)
    except CallError as exc:
        if exc.code.name != "NOT_FOUND":
            raise
        try:
            generation.create_route(route, [registry_target(side)])
        except CallError as err:
            if err.code.name != "ALREADY_EXISTS":  # created meanwhile by someone else: fine
                raise
        return route
    targets = [t.registry_model for t in existing.targets]
    if targets != [side]:
        raise FailedPrecondition(f"route {route} exists but targets {targets}, not {side}; pass a route name instead")
    return route


def evaluate(generation: GenerationClient, label: str, route: str, items: list[tuple[list[dict], str]], *,
             max_tokens: int, progress: Callable[[], None] = lambda: None,
             key_phrases: list[tuple[str, ...]] | None = None, judge=None) -> SideResult:
    """`key_phrases`, one tuple per item, adds the answer-match score; `judge` (a
    `judge.Judge`) scores every answer too."""
    result = SideResult(label, route, scored_by_phrases=any(key_phrases or ()))
    phrases = key_phrases or [()] * len(items)
    for (prompt, reference), keys in zip(items, phrases, strict=True):
        started = time.perf_counter()
        out = generation.generate(route, prompt, max_tokens=max_tokens, temperature=0.0)
        result.latencies_ms.append((time.perf_counter() - started) * 1e3)
        result.served_by = result.served_by or out.served_by
        result.answers.append(out.text)
        result.output_tokens.append(out.usage.output_tokens)
        result.matches.append(exact.exact_match(out.text, reference))
        result.answer_matches.append(exact.answer_match(out.text, reference, keys))
        result.f1.append(exact.token_f1(out.text, reference))
        if judge is not None:
            result.verdicts.append(judge(prompt[-1]["content"] if prompt else "", reference, out.text))
        progress()
    return result


def table(candidate: SideResult, champion: SideResult) -> str:
    """The side-by-side table people read before approving."""
    rows = [
        ("exact match", f"{candidate.exact_match:.0%}", f"{champion.exact_match:.0%}",
         f"{(candidate.exact_match - champion.exact_match) * 100:+.0f} pts"),
        *([("answer match (key phrase)", f"{candidate.answer_match:.0%}", f"{champion.answer_match:.0%}",
            f"{(candidate.answer_match - champion.answer_match) * 100:+.0f} pts")] if candidate.scored_by_phrases else []),
        ("token F1", f"{candidate.token_f1:.0%}", f"{champion.token_f1:.0%}",
         f"{(candidate.token_f1 - champion.token_f1) * 100:+.0f} pts"),
        *([("judge score (1-5)", f"{candidate.judge_mean:.2f}", f"{champion.judge_mean:.2f}",
            f"{candidate.judge_mean - champion.judge_mean:+.2f}")]
          if candidate.judge_mean is not None and champion.judge_mean is not None else []),
        ("mean answer length (tokens)", f"{candidate.mean_answer_tokens:.1f}", f"{champion.mean_answer_tokens:.1f}",
         f"{candidate.mean_answer_tokens - champion.mean_answer_tokens:+.1f}"),
        ("latency p50 (ms)", f"{candidate.latency_p50_ms:.0f}", f"{champion.latency_p50_ms:.0f}",
         f"{candidate.latency_p50_ms - champion.latency_p50_ms:+.0f}"),
        ("latency mean (ms)", f"{candidate.latency_mean_ms:.0f}", f"{champion.latency_mean_ms:.0f}",
         f"{candidate.latency_mean_ms - champion.latency_mean_ms:+.0f}"),
    ]
    head = ("", f"candidate {candidate.label}", f"champion {champion.label}", "difference")
    lines = columns(head, rows)
    lines.append(f"served by: {candidate.served_by or '-'} vs {champion.served_by or '-'}; "
                 f"{len(candidate.matches)} question{'' if len(candidate.matches) == 1 else 's'}")
    lines += significance(candidate, champion)
    return "\n".join(lines)


def columns(head: tuple[str, ...], rows: list[tuple[str, ...]], *, rule: bool = True) -> list[str]:
    """`head` and `rows` as aligned text columns, with a dashed rule under the head when `rule`."""
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def line(cells) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(head), *(["  ".join("-" * w for w in widths)] if rule else []), *map(line, rows)]


def significance(candidate: SideResult, champion: SideResult) -> list[str]:
    """How sure the differences are: a 95% paired-bootstrap interval for each score and McNemar's
    exact test for the right/wrong ones (same rows on both sides)."""
    scores = [("exact match", candidate.matches, champion.matches, True),
              *([("answer match", candidate.answer_matches, champion.answer_matches, True)]
                if candidate.scored_by_phrases else []),
              ("token F1", candidate.f1, champion.f1, False)]
    out = []
    for name, cand, champ, binary in scores:
        if not cand or len(cand) != len(champ):
            continue
        d = stats.paired_bootstrap([float(x) for x in cand], [float(x) for x in champ])
        line = f"{name}: {d.mean * 100:+.0f} pts, 95% CI {d.low * 100:+.0f} to {d.high * 100:+.0f} ({_verdict(d)})"
        if binary:
            m = stats.mcnemar(cand, champ)
            line += (f"; McNemar p = {m.p_value:.3g} ({m.candidate_only} right only for the candidate, "
                     f"{m.champion_only} only for the champion)")
        out.append(line)
    pairs = []
    if len(candidate.verdicts) == len(champion.verdicts):  # the same questions on both sides
        pairs = [(a, b) for a, b in zip(candidate.judge_scores, champion.judge_scores, strict=True)
                 if a is not None and b is not None]
    if pairs:
        d = stats.paired_bootstrap([a for a, _ in pairs], [b for _, b in pairs])
        out.append(f"judge score: {d.mean:+.2f}, 95% CI {d.low:+.2f} to {d.high:+.2f} ({_verdict(d)}; "
                   f"{len(pairs)} questions scored on both sides, rubric {candidate.verdicts[0].rubric})")
    return out


def _verdict(d: stats.PairedDifference) -> str:
    return "the candidate is better" if d.low > 0 else "the candidate is worse" if d.high < 0 else "not significant"
