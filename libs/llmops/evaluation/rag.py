"""A pipeline scored on an evaluation set, as a user meets it: each question asked through the
pipeline (its bundle's prompt, index, route and sampling), up to `concurrency` at once, then
- retrieval, for rows that name their source documents: hit rate (a source is among the chunks
  given to the model), recall (the share of the row's sources among them) and reciprocal rank
  (1 / the rank of the first source; MRR over rows);
- citation support: when the answer cites chunks by marker (`[1]`), whether the cited chunks
  contain most of the answer's words (overlap of normalised words, at least half);
- answer match: the answer matches the reference exactly or contains one of its key phrases;
- optionally an LLM judge's score and reason per answer (`judge.Judge`)."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from llmops.evaluation import exact
from llmops.evaluation.datasets import Dataset
from llmops.evaluation.judge import Judge, Verdict


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
    recall: float | None = None  # share of the row's sources among the cited documents
    reciprocal_rank: float | None = None
    supported: bool | None = None  # None: the answer cites no chunk by marker
    judged: Verdict | None = None  # an LLM judge's score and reason, when one was asked


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

    @staticmethod
    def _mean(values: list) -> float | None:
        scored = [float(v) for v in values if v is not None]
        return statistics.fmean(scored) if scored else None

    @property
    def recall(self) -> float | None:
        return self._mean([a.recall for a in self.answers])

    @property
    def mrr(self) -> float | None:
        return self._mean([a.reciprocal_rank for a in self.answers])

    @property
    def citation_support(self) -> float | None:
        return self._mean([a.supported for a in self.answers])

    @property
    def judge_score(self) -> float | None:
        """The judge's mean score over the answers it scored."""
        return self._mean([a.judged.score for a in self.answers if a.judged is not None])

    @property
    def latency_p50_ms(self) -> float:
        return statistics.median(a.latency_ms for a in self.answers) if self.answers else 0.0

    def summary(self) -> str:
        n = len(self.answers)
        models = sorted({a.model for a in self.answers if a.model})
        extra = "".join(f", {name} {value:.{digits}}" for name, value, digits in
                        (("recall", self.recall, "0%"), ("MRR", self.mrr, "2f"),
                         ("citation support", self.citation_support, "0%"),
                         ("judge score", self.judge_score, "2f")) if value is not None)
        return (f"{self.pipeline} ({', '.join(models) or '-'}): {n} questions, retrieval hit rate "
                f"{self.hit_rate:.0%}{extra}, answer match {self.answer_match:.0%} "
                f"({sum(a.right for a in self.answers)}/{n}), latency p50 {self.latency_p50_ms:.0f} ms")


def retrieval_scores(cited: Sequence[str], sources: Sequence[str]) -> tuple[bool, float, float] | None:
    """(hit, recall, reciprocal rank) of the cited documents (in rank order) against a row's
    sources; None when the row names none."""
    wanted = set(sources)
    if not wanted:
        return None
    ranked = list(dict.fromkeys(cited))  # a document cited by several chunks counts at its best rank
    found = [i for i, d in enumerate(ranked) if d in wanted]
    return bool(found), len(wanted & set(ranked)) / len(wanted), (1 / (found[0] + 1)) if found else 0.0


_MARKER = re.compile(r"\[(\d+)\]")


def citation_support(answer: str, citations: Sequence[tuple[str, str]], *, at_least: float = 0.5) -> bool | None:
    """Whether the chunks the answer cites (`citations`: (marker, text) pairs, the marker as
    `[n]`) contain at least `at_least` of the answer's words; None when it cites none."""
    used = {f"[{m}]" for m in _MARKER.findall(answer)}
    texts = [text for marker, text in citations if marker in used]
    if not texts:
        return None
    words = exact.normalize(_MARKER.sub(" ", answer)).split()
    if not words:
        return None
    cited_words = set(exact.normalize(" ".join(texts)).split())
    return sum(w in cited_words for w in words) / len(words) >= at_least


def evaluate(pipeline_client, pipeline: str, ds: Dataset, *, limit: int = 0, max_tokens: int = 0,
             timeout_s: float = 300.0, concurrency: int = 1, judge: Judge | None = None,
             progress: Callable[[], None] = lambda: None) -> Report:
    """Ask every evaluation question of `ds` through `pipeline` (a PipelineClient and
    `name@alias`), at most `concurrency` at once; answers in the dataset's order; each scored by
    `judge` too when one is given."""
    items = ds.evaluation[:limit] if limit else ds.evaluation

    def ask(i: int) -> Answer:
        messages, reference = items[i]
        expect = ds.expectation(i)
        question = messages[-1]["content"]
        started = time.perf_counter()
        out = pipeline_client.run(pipeline, question, max_tokens=max_tokens, timeout=timeout_s)
        latency = (time.perf_counter() - started) * 1e3
        cited = tuple(c.document_id for c in out.citations)
        scores = retrieval_scores(cited, expect.sources)
        hit, recall, rr = scores if scores is not None else (None, None, None)
        answer = Answer(question, reference, out.answer, cited, hit,
                        exact.answer_match(out.answer, reference, expect.key_phrases), latency, out.versions.model,
                        recall, rr, citation_support(out.answer, [(c.marker, c.text) for c in out.citations]),
                        judge(question, reference, out.answer) if judge is not None else None)
        progress()
        return answer

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return Report(pipeline, list(pool.map(ask, range(len(items)))))
