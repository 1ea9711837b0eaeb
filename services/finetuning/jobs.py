"""Running tuning jobs: the shared run queue (`queue.RunQueue`), one worker process per job, its event
log mirrored into the store, a maximum run time, cancellation, restarts, and the result
registered in the registry as a candidate version with lineage.

Durability: the store says which jobs are queued or running. When the service starts, running
jobs go back to the queue; their workers start again on the same job folder and resume from the
last complete checkpoint. A worker that dies (kill -9, out of memory) is started again the same
way, up to `max_restarts` times. A worker dies with the service (PR_SET_PDEATHSIG), so a restarted
service never finds a stray worker writing the same folder.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from llmops.core import localenv
from services.finetuning import store as st
from services.finetuning.config import FineTuningConfig
from services.finetuning.queue import RunQueue
from services.finetuning.store import EventRecord, JobRecord, JobStore

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
CANCELLED_EXIT = 3


class JobRunner(RunQueue):
    resume_message = "the service restarted; the job resumes from its last checkpoint"

    def __init__(self, store: JobStore, config: FineTuningConfig, registry):
        super().__init__(store, config.max_concurrent_jobs)
        self._config = config
        self._registry = registry  # a sync RegistryClient with the service's key (used in threads)
        self._dir = config.resolved_jobs_dir()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._followers: dict[str, _Follower] = {}  # how far each job's worker log has been read

    def job_dir(self, job_id: str) -> Path:
        return self._dir / job_id

    async def stop(self) -> None:
        for proc in self._procs.values():  # the jobs stay RUNNING and resume from their checkpoints
            if proc.returncode is None:
                proc.kill()
        await super().stop()

    def _stop(self, run_id: str) -> None:
        proc = self._procs.get(run_id)
        if proc is not None and proc.returncode is None:
            proc.terminate()

    # -- one job -------------------------------------------------------------------------------

    async def _run(self, job: JobRecord) -> None:
        d = self.job_dir(job.id)
        started = await self._start(job)
        if started is None:  # cancelled while it waited
            return
        job = started
        try:
            if not (d / "base").exists():
                await asyncio.to_thread(self._download_base, job, d)
            while True:
                code = await self._worker(job, d)
                job = await self._db.run(self._store.get, job.id)
                if job.state == st.CANCELLING or code == CANCELLED_EXIT:
                    await self._record(job.id, st.CANCELLED, "cancelled; no version registered", state=st.CANCELLED,
                                       expect=(st.RUNNING, st.CANCELLING))
                    return
                if code == 0:
                    await self._register(job, d)
                    return
                failure = self._failure(d)
                if failure or job.restarts >= self._config.max_restarts:
                    await self._fail(job.id, failure or f"the worker died {job.restarts + 1} times (last exit {code}); "
                                     f"see {d / 'worker.log'}", failure or f"worker exited with {code}")
                    return
                job = await self._record(job.id, st.RUNNING, f"the worker exited with {code}; restarting it from the "
                                         "last checkpoint", restarts=job.restarts + 1)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a job fails with a reason; the service goes on
            log.exception("tuning job %s failed", job.id)
            await self._fail(job.id, f"{type(exc).__name__}: {exc}"[:500], f"{type(exc).__name__}: {exc}"[:500])
        finally:
            self._followers.pop(job.id, None)

    def _download_base(self, job: JobRecord, d: Path) -> None:
        tmp = d / "base.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        self._registry.download_version(job.spec["base_version"], tmp)
        tmp.rename(d / "base")

    @staticmethod
    def _failure(d: Path) -> str:
        """The reason a worker gave for failing (a bad dataset, say: restarting will not help)."""
        path = d / "events.jsonl"
        if not path.exists():
            return ""
        lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
        return next((e.get("message", "failed") for e in reversed(lines) if e.get("type") == "failed"), "")

    async def _worker(self, job: JobRecord, d: Path) -> int:
        proc = await asyncio.create_subprocess_exec(
            *worker_command(d, self._config.gpus_per_job), cwd=ROOT,
            stdout=open(d / "worker.log", "ab"), stderr=asyncio.subprocess.STDOUT)
        self._procs[job.id] = proc
        follow = asyncio.get_running_loop().create_task(self._follow(job.id, d, proc))
        try:
            return await asyncio.wait_for(proc.wait(), self._config.max_run_time_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            with (d / "events.jsonl").open("a") as f:
                f.write(json.dumps({"type": "failed", "time": time.time(),
                                    "message": f"ran longer than the limit of {self._config.max_run_time_s:g} s"}) + "\n")
            return -9
        finally:
            await asyncio.sleep(0.3)  # the last lines of the log
            follow.cancel()
            await asyncio.gather(follow, return_exceptions=True)
            await self._mirror(job.id, d)
            self._procs.pop(job.id, None)

    async def _follow(self, job_id: str, d: Path, proc) -> None:
        while proc.returncode is None:
            await self._mirror(job_id, d)
            await asyncio.sleep(0.5)

    async def _mirror(self, job_id: str, d: Path) -> None:
        """Copy the worker's new events into the store, reading only what was appended since the
        last call. The worker cuts its log back to the checkpoint when it resumes (the file
        shrinks: read it again from the start), so steps already recorded are skipped, never
        recorded twice."""
        path = d / "events.jsonl"
        if not path.exists():
            return
        follower = self._followers.get(job_id)
        if follower is None:  # first look in this service's life: what the store already has
            follower = self._followers[job_id] = _Follower(seen=await self._db.run(self._seen, job_id))
        with path.open("rb") as f:
            if f.seek(0, 2) < follower.offset:
                follower.offset = 0
            f.seek(follower.offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]  # a line still being written waits for the next look
        follower.offset += len(complete)
        job = await self._db.run(self._store.get, job_id)
        changes: dict = {}
        new = []
        for line in complete.decode().splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            kind, step = e.get("type", ""), int(e.get("step", 0))
            time_us = int(e.get("time", time.time()) * 1e6)
            key = _key(kind, step, time_us)
            if key in follower.seen:
                continue
            follower.seen.add(key)
            if kind == "progress":
                changes["steps_done"] = max(changes.get("steps_done", job.steps_done), step)
            if kind in ("progress", "started", "resumed"):
                changes["total_steps"] = int(e.get("total", job.total_steps))
            new.append(EventRecord(job_id, 0, job.state, step, float(e.get("loss", 0.0)), float(e.get("eval_loss", 0.0)),
                                   e.get("checkpoint", ""), _message(e), time_us))
        if new or changes:
            await self._db.run(functools.partial(self._store.update, job_id, events=new, **changes))
            self.signal.notify()

    def _seen(self, job_id: str) -> set:
        return {_key(e.message.split(":", 1)[0], e.step, e.time_us) for e in self._store.events_after(job_id, 0)}

    async def _register(self, job: JobRecord, d: Path) -> None:
        """Upload the output folder as a new version of the output model, with lineage and
        metrics, left awaiting approval."""
        result = json.loads((d / "result.json").read_text())
        metrics = {k: float(v) for k, v in result.get("metrics", {}).items()}
        spec = job.spec
        version = await asyncio.to_thread(self._upload, job, d / "output", metrics)
        # A cancel that arrives while the result uploads is too late: the version exists, so the
        # job ends SUCCEEDED with it (never CANCELLED with a registered version).
        done = await self._record(job.id, st.SUCCEEDED, f"registered {version} (awaiting approval)",
                                  state=st.SUCCEEDED, result_model_version=version, metrics=metrics,
                                  expect=(st.RUNNING, st.CANCELLING))
        if done is None:
            log.error("tuning job %s registered %s but had already ended", job.id, version)
            return
        log.info("tuning job %s registered %s from %s", job.id, version, spec["base_version"])
        shutil.rmtree(d / "checkpoints", ignore_errors=True)  # the model is in the registry now

    def _upload(self, job: JobRecord, folder: Path, metrics: dict[str, float]) -> str:
        from llmops.api.registry.v1 import registry_pb2 as rpb
        from llmops.client.base import CallError

        spec = job.spec
        model = spec["output_model"]
        try:
            self._registry.create_model(model, description=f"fine-tuned from {spec['base_version']}")
        except CallError as exc:
            if exc.code.name != "ALREADY_EXISTS":
                raise
        lineage = rpb.Lineage(base_version=spec["base_version"], dataset_uri=spec["dataset_uri"],
                              dataset_version=str(spec["dataset_version"]), tuning_job_id=f"tuningJobs/{job.id}")
        v = self._registry.upload_folder(model, folder, format="hf-causal-lm", lineage=lineage, metrics=metrics,
                                         description=f"{spec['method']} fine-tune of {spec['base_version']} on "
                                                     f"{spec['dataset_uri']}@{spec['dataset_version']}")
        return v.name


def worker_command(d: Path, gpus: int) -> list[str]:
    """One worker process on the CPU or one GPU; the DeepSpeed launcher (one process per GPU,
    data parallel) for more."""
    if gpus <= 1:
        return [sys.executable, "-m", "services.finetuning.worker", str(d)]
    return [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(gpus), "--master_port",
            str(localenv.free_port()), "--no_local_rank", "--module", "services.finetuning.worker", str(d)]


@dataclass
class _Follower:
    offset: int = 0  # bytes of the worker's event log already read
    seen: set = field(default_factory=set)  # event keys already in the store


def _key(kind: str, step: int, time_us: int) -> tuple:
    """Progress and checkpoints are once per step; other events once per moment."""
    return (kind, step) if kind in ("progress", "checkpoint") else (kind, step, time_us)


def _message(e: dict) -> str:
    """Event kind first (`progress: ...`), so the store's events can be matched with the log."""
    kind = e.get("type", "event")
    detail = {k: v for k, v in e.items() if k not in ("type", "time", "step", "loss", "eval_loss", "checkpoint")}
    return f"{kind}: {json.dumps(detail, sort_keys=True)}" if detail else f"{kind}:"
