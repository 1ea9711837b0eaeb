"""Adaptive batching: one engine thread per loaded model takes whatever requests are waiting (up
to `max_batch`) and decodes them together. A lone caller never waits; under concurrency the
thread waits up to `window_s` for more requests to join, so closed-loop clients that finish
together start together instead of splitting into a batch of one and a batch of the rest."""

from __future__ import annotations

import queue
import threading
import time

from services.modelserver.engine import Engine, Job


class Batcher:
    def __init__(self, engine: Engine, max_batch: int = 8, window_s: float = 0.01):
        self.engine = engine
        self.max_batch = max_batch
        self.window_s = window_s
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._active = 0
        self._lock = threading.Lock()
        self._last_batch = 0
        self.batches = 0
        self._thread = threading.Thread(target=self._loop, name=f"engine:{engine.name}", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> int:
        """Requests queued or running."""
        with self._lock:
            return self._active + self._queue.qsize()

    def submit(self, job: Job) -> None:
        self._queue.put(job)

    def close(self) -> None:
        self._queue.put(None)

    def _take(self) -> list[Job] | None:
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        deadline = time.monotonic() + (self.window_s if self._last_batch > 1 else 0.0)
        while len(jobs) < self.max_batch:
            try:
                wait = deadline - time.monotonic()
                job = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                self._queue.put(None)
                break
            jobs.append(job)
        return jobs

    def _loop(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            live = [j for j in jobs if not j.cancelled.is_set()]
            for j in jobs:
                if j.cancelled.is_set():
                    j.emit("error", "cancelled before it started")
            if not live:
                continue
            with self._lock:
                self._active = len(live)
            self._last_batch = len(live)
            self.batches += 1
            try:
                self.engine.run_batch(live)
            finally:
                with self._lock:
                    self._active = 0
