"""Running evaluations: every row of the dataset answered by the target (and by the baseline,
row for row), at most `concurrency` calls at once, each answered row stored as it finishes with
an event; then the metrics, the paired comparison and, for a registry version, the record in the
registry that approval gates read.

Durability: rows are the checkpoint. A restarted service puts a running evaluation back in the
queue and it answers only the rows not yet stored; a row answered twice across a restart is
stored once. A cancel stops after the calls in flight; nothing is recorded in the registry.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

from llmops.evaluation import scoring
from llmops.evaluation.datasets import Expectation
from llmops.evaluation.judge import Judge
from services.finetuning import store as st
from services.finetuning.evaluation import targets
from services.finetuning.evaluation.targets import Target
from services.finetuning.queue import RunQueue
from services.finetuning.store import EvaluationRecord, EvaluationStore, EventRecord

log = logging.getLogger(__name__)
ITEMS = "items.jsonl"
RECORD_ATTEMPTS = 5


class EvaluationRunner(RunQueue):
    resume_message = "the service restarted; the evaluation resumes with the rows not yet answered"

    def __init__(self, store: EvaluationStore, directory: Path, client, limit: int):
        super().__init__(store, limit)
        self._dir = directory
        self._client = client  # an llmops Client with the service's key: registry, generation, pipeline, prompt
        self._stopping: set[str] = set()

    def run_dir(self, evaluation_id: str) -> Path:
        return self._dir / evaluation_id

    def write_items(self, evaluation_id: str, items: list[dict]) -> None:
        d = self.run_dir(evaluation_id)
        d.mkdir(parents=True, exist_ok=True)
        (d / ITEMS).write_text("".join(json.dumps(i) + "\n" for i in items))

    def _stop(self, run_id: str) -> None:
        self._stopping.add(run_id)

    async def _run(self, ev: EvaluationRecord) -> None:
        started = await self._start(ev)
        if started is None:
            return
        try:
            await self._answer_all(started)
            if started.id in self._stopping:
                await self._record(ev.id, st.CANCELLED, "cancelled; nothing recorded", state=st.CANCELLED,
                                   expect=(st.RUNNING, st.CANCELLING))
                return
            await self._finish(ev.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an evaluation fails with a reason; the service goes on
            log.exception("evaluation %s failed", ev.id)
            text = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:500]
            await self._fail(ev.id, text, text)
        finally:
            self._stopping.discard(ev.id)

    def _sides(self, ev: EvaluationRecord) -> list[tuple[str, Target]]:
        baseline = Target.from_dict(ev.spec.get("baseline"))
        sides = [("target", targets.prepare(self._client, Target.from_dict(ev.spec["target"])))]
        if baseline is not None:
            sides.append(("baseline", targets.prepare(self._client, baseline)))
        return sides

    async def _answer_all(self, ev: EvaluationRecord) -> None:
        spec = ev.spec
        items = [json.loads(x) for x in (self.run_dir(ev.id) / ITEMS).read_text().splitlines() if x.strip()]
        sides = await asyncio.to_thread(self._sides, ev)
        judge = None
        if spec.get("judge"):
            judge = await asyncio.to_thread(Judge, self._client, spec["judge"]["route"], spec["judge"]["rubric"])
        done = {(side, index) for side, index, _ in await self._db.run_read(self._store.rows, ev.id)}
        todo = [(i, side, target) for i in range(len(items)) for side, target in sides if (side, i) not in done]
        total = len(items) * len(sides)
        gate = asyncio.Semaphore(spec["concurrency"])
        loop = asyncio.get_running_loop()

        async def one(pool, i: int, side: str, target: Target) -> None:
            async with gate:
                if ev.id in self._stopping:
                    return
                item = items[i]
                call = functools.partial(
                    targets.answer, self._client, target, i, side, item["messages"], item["reference"],
                    Expectation(tuple(item.get("key_phrases", ())), tuple(item.get("sources", ()))),
                    max_tokens=spec["max_tokens"], judge=judge)
                row = await loop.run_in_executor(pool, call)
                what = f"{side} row {i + 1} of {len(items)}" + (f" failed: {row.error}" if row.error else " answered")
                event = EventRecord(ev.id, 0, st.RUNNING, message=f"progress: {what}")
                if await self._db.run(self._store.add_row, ev.id, side, i, asdict(row), event):
                    self.signal.notify()

        with ThreadPoolExecutor(max_workers=spec["concurrency"], thread_name_prefix=f"eval-{ev.id[:6]}") as pool:
            await asyncio.gather(*(one(pool, i, side, target) for i, side, target in todo))
        log.info("evaluation %s: %d rows answered in this run, %d of %d before", ev.id, len(todo), total - len(todo),
                 total)

    async def _finish(self, evaluation_id: str) -> None:
        ev = await self._db.run_read(self._store.get, evaluation_id)
        rows = await self._db.run_read(self._store.rows, evaluation_id)
        by_side: dict[str, list[scoring.Row]] = {"target": [], "baseline": []}
        for side, _, body in rows:
            body["cited"] = tuple(body.get("cited", ()))
            by_side[side].append(scoring.Row(**body))
        comparisons = scoring.compare(by_side["target"], by_side["baseline"]) if by_side["baseline"] else []
        result = {"metrics": scoring.aggregate(by_side["target"]),
                  "baseline_metrics": scoring.aggregate(by_side["baseline"]) if by_side["baseline"] else {},
                  "comparisons": [comparison_to_dict(c) for c in comparisons]}
        await self._db.run(functools.partial(self._store.update, evaluation_id, result=result))
        target = Target.from_dict(ev.spec["target"])
        recorded = False
        if target.kind != targets.ROUTE:
            await asyncio.to_thread(self._record_in_registry, ev, result)
            recorded = True
        m = result["metrics"]
        summary = ", ".join(f"{k} {m[k]:.3g}" for k in ("exact_match", "token_f1", "answer_match", "error_rate")
                            if k in m)
        where = f"; recorded against {target.version}" if recorded else ""
        done = await self._record(evaluation_id, st.SUCCEEDED, f"done: {summary}{where}", state=st.SUCCEEDED,
                                  recorded=recorded, expect=(st.RUNNING, st.CANCELLING), step=ev.steps_done)
        if done is None:
            log.error("evaluation %s finished but had already ended", evaluation_id)

    def _record_in_registry(self, ev: EvaluationRecord, result: dict) -> None:
        """The registry keeps the evidence its gates read; retried while it is unavailable (a
        recorded evaluation is recorded once: the registry returns the stored record)."""
        baseline = Target.from_dict(ev.spec.get("baseline"))
        comparisons = {c["metric"]: {**c, "champion_version": baseline.version}
                       for c in result["comparisons"]} if baseline is not None else {}
        targets.retried(lambda: self._client.registry.record_evaluation(
            f"evaluations/{ev.id}", ev.target_version, ev.spec["dataset_uri"], str(ev.spec["dataset_version"]),
            result["metrics"], comparisons), RECORD_ATTEMPTS, 1.0)


def comparison_to_dict(c: scoring.Comparison) -> dict:
    d = c.difference
    return {"metric": c.metric, "value": c.value, "baseline_value": c.baseline_value, "difference": d.mean,
            "ci_low": d.low, "ci_high": d.high, "p_value": c.p_value, "rows": d.rows}
