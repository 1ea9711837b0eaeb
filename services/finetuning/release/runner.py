"""Running progressive releases: for each step the candidate takes its share of the alias's
traffic (the alias's canary in the registry; the pipeline draws per request), the feedback
service's signals for candidate and stable version are read every `poll_s` over the step (and,
with a judge, a sample of both versions' new answers is scored), a
breach rolls back at once (canary ended, reason recorded in the registry's event and here), and a
step passes when its interval is over with enough requests on both sides and no breach. The last
step (100%) moves the alias to the candidate.

Durability: the step reached, its start and the share are stored with the release; a restarted
service resumes the current step (the canary never left the registry), and an abort that a
restart interrupted still ends the canary.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from llmops.client.base import CallError
from llmops.core.timeutil import now_us
from llmops.evaluation.judge import Judge
from services.finetuning import store as st
from services.finetuning.queue import RunQueue
from services.finetuning.release import signals
from services.finetuning.store import ReleaseRecord, ReleaseStore

log = logging.getLogger(__name__)
JUDGE_WINDOW = 200  # newest answers looked at per poll
JUDGE_PER_POLL = 8  # answers judged per poll at most (each is a generation call)


def sampled(request_id: str, percent: int) -> bool:
    """Whether an answer is in the judge's sample: a stable draw from its request id."""
    return int(hashlib.sha256(request_id.encode()).hexdigest()[:8], 16) % 100 < percent


class ReleaseRunner(RunQueue):
    resume_message = "the service restarted; the release resumes its current step"
    stop_word = "abort"

    def __init__(self, store: ReleaseStore, client, limit: int, poll_s: float):
        super().__init__(store, limit)
        self._client = client  # registry (canary, alias) and feedback (signals), with the service's key
        self._poll_s = poll_s
        self._stopping: set[str] = set()
        self._wakes: dict[str, asyncio.Event] = {}

    async def start(self) -> None:
        for rel in await self._db.run(self._store.in_states, st.CANCELLING):
            await asyncio.to_thread(self._end_canary, rel, "aborted (finished after a restart)")
        await super().start()

    def _stop(self, run_id: str) -> None:
        self._stopping.add(run_id)
        if run_id in self._wakes:
            self._wakes[run_id].set()

    async def cancel(self, run):
        if run.state == st.QUEUED and run.result.get("percent"):  # resumed after a restart: its canary is live
            await asyncio.to_thread(self._end_canary, run, "aborted")
        return await super().cancel(run)

    # -- registry ------------------------------------------------------------------------------

    @staticmethod
    def _parts(rel: ReleaseRecord) -> tuple[str, str, int]:
        s = rel.spec
        return s["model"], s["alias"], int(s["candidate_version"].rsplit("/", 1)[1])

    def _end_canary(self, rel: ReleaseRecord, reason: str) -> None:
        model, alias, _ = self._parts(rel)
        self._client.registry.set_canary(model, alias, 0, 0, reason=f"releases/{rel.id}: {reason}")

    # -- one release ---------------------------------------------------------------------------

    async def _run(self, rel: ReleaseRecord) -> None:
        started = await self._start(rel)
        if started is None:
            return
        self._wakes[rel.id] = asyncio.Event()
        try:
            await self._steps(started)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the safe way out of a release that cannot go on is back to stable
            log.exception("release %s failed", rel.id)
            text = f"{type(exc).__name__}: {getattr(exc, 'message', exc)}"[:300]
            try:
                await asyncio.to_thread(self._end_canary, rel, f"rolled back: the release failed ({text})")
            except CallError:
                log.exception("release %s could not end its canary", rel.id)
            await self._fail(rel.id, f"failed and rolled back: {text}", text)
        finally:
            self._stopping.discard(rel.id)
            self._wakes.pop(rel.id, None)

    async def _steps(self, rel: ReleaseRecord) -> None:
        spec, result = rel.spec, dict(rel.result)
        model, alias, number = self._parts(rel)
        steps, i = spec["steps"], rel.steps_done
        while i < len(steps):
            if rel.id in self._stopping:
                return await self._aborted(rel, result)
            percent = steps[i]
            if percent >= 100:
                await asyncio.to_thread(self._client.registry.set_alias, model, alias, number)
                result.update(percent=100, outcome=f"promoted: {alias} points to {spec['candidate_version']}")
                await self._record(rel.id, st.SUCCEEDED, result["outcome"], state=st.SUCCEEDED, result=result,
                                   steps_done=len(steps), step=len(steps), expect=(st.RUNNING, st.CANCELLING))
                return
            if result.get("step") != i:  # a new step; a resumed one keeps its start and its canary
                reason = f"releases/{rel.id}: step {i + 1} of {len(steps)}"
                await asyncio.to_thread(self._client.registry.set_canary, model, alias, number, percent, reason)
                result.update(step=i, percent=percent, step_start_us=now_us(), judged={}, judged_ids=[])
                await self._record(rel.id, st.RUNNING, f"step {i + 1} of {len(steps)}: {percent}% of {model}@{alias} "
                                   f"traffic to {spec['candidate_version']}", result=result, step=i)
            verdict, why = await self._watch(rel, result)
            if verdict == "stopped":
                return await self._aborted(rel, result)
            if verdict == "breach":
                return await self._roll_back(rel, result, why)
            i += 1
            await self._record(rel.id, st.RUNNING, f"step {i} of {len(steps)} passed at {percent}%: {why}",
                               result=result, steps_done=i, step=i)

    async def _watch(self, rel: ReleaseRecord, result: dict) -> tuple[str, str]:
        """("passed" | "breach" | "stopped", why) for the current step."""
        spec = rel.spec
        margins = signals.Margins(**spec["margins"])
        start, interval_us = result["step_start_us"], spec["interval_s"] * 1e6
        wake = self._wakes[rel.id]
        judge = None
        if spec.get("judge"):
            judge = await asyncio.to_thread(Judge, self._client, spec["judge"]["route"], spec["judge"]["rubric"])
        last: tuple = ()
        while True:
            if rel.id in self._stopping:
                return "stopped", ""
            try:
                if judge is not None:
                    await asyncio.to_thread(self._judge_sample, rel, result, judge)
                summaries = await asyncio.to_thread(self._client.feedback.summary, spec["model"], start_us=start)
            except CallError as exc:  # no signals for now: hold the share and look again
                if exc.code.name not in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"):
                    raise
                log.warning("release %s: no signals this poll (%s); holding at %s%%", rel.id, exc.code.name,
                            result.get("percent"))
                await asyncio.sleep(self._poll_s)
                continue
            candidate = signals.of_version(summaries, spec["candidate_version"], result.get("judged"))
            stable = signals.of_version(summaries, spec["stable_version"], result.get("judged"))
            now = (candidate.to_dict(), stable.to_dict())
            if now != last:  # shown by GetRelease while the step runs
                last = now
                result.update(candidate_signals=now[0], stable_signals=now[1])
                await self._db.run(lambda: self._store.update(rel.id, result=dict(result)))
            why = signals.breach(margins, candidate, stable)
            if why:
                return "breach", why
            if now_us() - start >= interval_us and signals.enough(margins, candidate, stable, judge is not None):
                return "passed", (f"error rate {candidate.error_rate:.1%} vs {stable.error_rate:.1%}, thumbs down "
                                  f"{candidate.thumbs_down_rate:.1%} vs {stable.thumbs_down_rate:.1%}, p95 "
                                  f"{candidate.latency_p95_ms:.0f} vs {stable.latency_p95_ms:.0f} ms over "
                                  f"{candidate.requests} vs {stable.requests} requests")
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), self._poll_s)
            except TimeoutError:
                pass

    def _judge_sample(self, rel: ReleaseRecord, result: dict, judge: Judge) -> None:
        """Score this step's new live answers of both versions that fall in the sample (drawn
        by request id, so a restart draws the same), a few per poll."""
        spec = rel.spec
        versions = (spec["candidate_version"], spec["stable_version"])
        seen = set(result["judged_ids"])
        records = self._client.feedback.inferences(pipeline=spec["model"], limit=JUDGE_WINDOW)
        picked = [r for r in records if r.pipeline_version in versions and r.request_id not in seen
                  and r.create_time.ToMicroseconds() >= result["step_start_us"]
                  and sampled(r.request_id, spec["judge_sample_percent"])]
        for r in picked[:JUDGE_PER_POLL]:
            result["judged_ids"].append(r.request_id)
            try:
                verdict = judge(r.question, "", r.answer)
            except CallError as exc:  # the judge's trouble is not the candidate's: no score
                log.warning("release %s: the judge failed on %s: %s", rel.id, r.request_id, exc)
                continue
            if verdict.score is not None:
                count, total = result["judged"].get(r.pipeline_version, (0, 0.0))
                result["judged"][r.pipeline_version] = (count + 1, total + verdict.score)
        del result["judged_ids"][:-JUDGE_WINDOW * 10]

    async def _roll_back(self, rel: ReleaseRecord, result: dict, why: str) -> None:
        await asyncio.to_thread(self._end_canary, rel, f"rolled back: {why}")
        result.update(percent=0, outcome=f"rolled back at {result.get('percent', 0)}%: {why}",
                      rollback_time_us=now_us())
        await self._record(rel.id, st.FAILED, result["outcome"], state=st.FAILED, error=why, result=result,
                           expect=(st.RUNNING, st.CANCELLING))

    async def _aborted(self, rel: ReleaseRecord, result: dict) -> None:
        await asyncio.to_thread(self._end_canary, rel, "aborted")
        result.update(percent=0, outcome="aborted: the stable version has all traffic")
        await self._record(rel.id, st.CANCELLED, result["outcome"], state=st.CANCELLED, result=result,
                           expect=(st.CANCELLING, st.RUNNING))
