"""Continuous batching: one engine thread per loaded model runs a batch one token at a time, and
between two steps it lets waiting requests join (prefilled together, then merged into the
running batch) and finished rows leave. A request never waits for a whole batch to end, only for
the current step and its own prefill; a lone caller runs alone.

Admission is bounded: at most `max_batch` rows decode and at most `max_waiting` wait for a free
row. Past that, `submit` refuses at once with `Overloaded` and a retry delay estimated from the
running rows (the soonest to end, at the measured step time), so a server under twice its
capacity answers the excess in milliseconds and keeps the admitted requests' latency near their
unloaded latency instead of queuing without bound."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from services.modelserver.engine import Engine, Job
from services.modelserver.running import Batch

log = logging.getLogger(__name__)


class Overloaded(Exception):
    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Scheduler:
    def __init__(self, engine: Engine, max_batch: int = 8, max_waiting: int = 4):
        self.engine = engine
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self._waiting: deque[Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._running = 0
        self._step_s = 0.0  # moving average of a decode step
        self._soonest = 0  # fewest tokens any running row still has to make
        self.steps = 0
        self.joins = 0  # times rows joined a batch that was already running
        self.refused = 0
        self._thread = threading.Thread(target=self._loop, name=f"engine:{engine.name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> int:
        """Rows running or waiting."""
        with self._wake:
            return self._running + len(self._waiting)

    def retry_after_s(self) -> float:
        """About when a row frees: the soonest-ending row's remaining tokens at the step time."""
        return min(30.0, max(0.05, self._soonest * self._step_s))

    def check(self, rows: int) -> None:
        """`Overloaded` now if `rows` more would not be taken (a cheap early refusal, before the
        prompt is tokenised; `submit` decides)."""
        with self._wake:
            self._refuse(rows)

    def submit(self, jobs: list[Job]) -> None:
        """Queue the rows of one request, all or none; `Overloaded` when the queue is full. A
        request with more rows than the queue holds is taken when nothing else waits."""
        with self._wake:
            self._refuse(len(jobs))
            for job in jobs:
                job.on_end = self._row_ended
            self._waiting.extend(jobs)
            self._wake.notify()

    def _refuse(self, rows: int) -> None:
        if self._closed:
            raise Overloaded("this model is being unloaded; retry", 1.0)
        queued = len(self._waiting) + rows - max(0, self.max_batch - self._running)
        if queued > self.max_waiting and self._waiting:
            self.refused += 1
            raise Overloaded(f"the model server is at capacity ({self._running} rows decoding, "
                             f"{len(self._waiting)} waiting); retry after the delay", self.retry_after_s())

    def _row_ended(self) -> None:
        """A running row ended (engine thread): its place is free for the next request at once,
        not only once the step that ended it has finished."""
        with self._wake:
            self._running -= 1

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop once the rows already taken have ended; waits up to `timeout_s` for the engine
        thread (an idle one ends at once), so no torch work outlives its model."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    def _admit(self, batch: Batch | None) -> list[Job]:
        """Waiting jobs that fit now; blocks while there is nothing to do."""
        with self._wake:
            while batch is None and not self._waiting and not self._closed:
                self._wake.wait()
            running = len(batch.rows) if batch is not None else 0
            if batch is not None and not batch.joinable:
                return []  # this cache cannot take rows mid-batch: they start with the next batch
            jobs = []
            while self._waiting and running + len(jobs) < self.max_batch:
                job = self._waiting.popleft()
                if job.cancelled.is_set():
                    job.on_end = None  # it never ran
                    job.end("error", "cancelled before it started")
                else:
                    jobs.append(job)
            self._running += len(jobs)
            return jobs

    def _start(self, jobs: list[Job], batch: Batch | None) -> Batch | None:
        """Prefill `jobs` and put them beside the running rows; a failure fails the rows it
        touched (a join that broke half way leaves a cache no row can trust) and the thread
        goes on."""
        try:
            fresh = self.engine.prefill(jobs)
        except Exception as exc:  # noqa: BLE001 - the new rows fail; the running ones go on
            self.engine.fail(jobs, exc)
            return batch
        if batch is None:
            return fresh
        try:
            batch = batch.join(fresh)
        except Exception as exc:  # noqa: BLE001
            self.engine.fail([r.job for r in batch.rows] + jobs, exc)
            return None
        self.joins += 1
        return batch

    def _loop(self) -> None:
        try:
            self.engine.tune_threads(self.max_batch)
        except Exception:
            log.warning("could not time %s's thread counts; keeping the defaults", self.engine.name, exc_info=True)
        batch: Batch | None = None
        while True:
            jobs = self._admit(batch)
            if self._closed and batch is None and not jobs:
                return
            if jobs:
                batch = self._start(jobs, batch)
            if batch is None:
                continue
            started = time.monotonic()
            rows = [r.job for r in batch.rows]
            try:
                batch = self.engine.step(batch)
            except Exception as exc:  # noqa: BLE001 - every row of the batch fails; the thread goes on
                self.engine.fail(rows, exc)
                batch = None
            self.steps += 1
            elapsed = time.monotonic() - started
            self._step_s = elapsed if not self._step_s else 0.9 * self._step_s + 0.1 * elapsed
            self._soonest = min((r.remaining for r in batch.rows), default=0) if batch is not None else 0
