"""The queue every kind of run shares (tuning jobs, evaluations, releases): runs wait QUEUED in the store, at
most `limit` run at once, every state change is a compare-and-set recorded as an event, and a
cancel ends a run that has not started at once, else asks the running one to stop.

Durability: the store says which runs are queued or running. When the service starts, running
runs go back to the queue (each kind resumes from what it saved) and cancelling ones end
CANCELLED."""

from __future__ import annotations

import asyncio
import functools
import logging

from llmops.core import feeds
from llmops.core.errors import FailedPrecondition
from llmops.core.feeds import ChangeSignal
from services.finetuning import store as st
from services.finetuning.store import EventRecord, RunStore

log = logging.getLogger(__name__)


class RunQueue:
    """Subclasses implement `_run(run)` (called in its own task; `_active` is cleared after it)
    and `_stop(run_id)` (ask a running run to stop)."""

    resume_message = "the service restarted; the run resumes"
    stop_word = "cancel"  # what stopping this kind of run is called, for messages

    def __init__(self, store: RunStore, limit: int):
        self._store = store
        self._db = store.db
        self._limit = limit
        self._active: set[str] = set()
        self._tasks: set[asyncio.Task] = set()
        self._wake = asyncio.Event()
        self.signal = ChangeSignal()  # notified on every event written (watchers follow it)
        self._loop: asyncio.Task | None = None

    async def start(self) -> None:
        for run in await self._db.run(self._store.in_states, st.RUNNING, st.CANCELLING):
            if run.state == st.CANCELLING:
                await self._record(run.id, st.CANCELLED, "the service restarted while cancelling",
                                   state=st.CANCELLED, expect=(st.CANCELLING,))
            else:
                await self._record(run.id, st.QUEUED, self.resume_message, state=st.QUEUED, expect=(st.RUNNING,))
        self._loop = asyncio.get_running_loop().create_task(self._schedule())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def _record(self, run_id: str, event_state: int, message: str, *, expect: tuple[int, ...] = (),
                      step: int = 0, **values):
        """Change the run (`values`: columns such as state) and record an event about it; with
        `expect`, only from those states (None, nothing written, when the run was elsewhere).
        Every state change goes through here as a compare-and-set, so a terminal state is decided
        once, whoever races for it (a cancel against success, a restart against a cancel)."""
        run = await self._db.run(functools.partial(
            self._store.update, run_id, event=EventRecord(run_id, 0, event_state, step=step, message=message),
            expect=expect, **values))
        if run is not None:
            self.signal.notify()
        return run

    async def _schedule(self) -> None:
        while True:
            self._wake.clear()
            free = self._limit - len(self._active)
            if free > 0:
                queued = [r for r in await self._db.run(self._store.in_states, st.QUEUED) if r.id not in self._active]
                for run in queued[:free]:
                    self._active.add(run.id)
                    task = asyncio.get_running_loop().create_task(self._guarded(run))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            try:
                await asyncio.wait_for(self._wake.wait(), 5.0)
            except TimeoutError:
                pass

    async def _guarded(self, run) -> None:
        try:
            await self._run(run)
        finally:
            self._active.discard(run.id)
            self.wake()  # the next queued run may start

    async def _run(self, run) -> None:
        raise NotImplementedError

    def _stop(self, run_id: str) -> None:
        raise NotImplementedError

    async def _start(self, run):
        """RUNNING from QUEUED; None (and CANCELLED) when it was cancelled while it waited."""
        started = await self._record(run.id, st.RUNNING, "started", state=st.RUNNING, expect=(st.QUEUED,))
        if started is None:
            await self._record(run.id, st.CANCELLED, "cancelled before it started", state=st.CANCELLED,
                               expect=(st.CANCELLING,))
        return started

    async def _fail(self, run_id: str, message: str, error: str) -> None:
        """FAILED, unless a cancel came first: then CANCELLED."""
        if await self._record(run_id, st.FAILED, message, state=st.FAILED, error=error,
                              expect=(st.QUEUED, st.RUNNING)) is None:
            await self._record(run_id, st.CANCELLED, "cancelled", state=st.CANCELLED, expect=(st.CANCELLING,))

    async def cancel(self, run):
        """CANCELLED at once when it has not started, else CANCELLING until it stops;
        FAILED_PRECONDITION when it has ended (or ends meanwhile)."""
        if run.state in st.TERMINAL:
            raise self._ended(run)
        if run.state == st.QUEUED:
            done = await self._record(run.id, st.CANCELLED, "cancelled before it started", state=st.CANCELLED,
                                      expect=(st.QUEUED,))
            if done is not None:
                return done
        cancelling = await self._record(run.id, st.CANCELLING, "cancel requested: stopping at the next step",
                                        state=st.CANCELLING, expect=(st.QUEUED, st.RUNNING))
        if cancelling is None:
            now = await self._db.run(self._store.get, run.id)
            if now.state == st.CANCELLING:
                return now
            raise self._ended(now)
        self._stop(run.id)
        return cancelling

    def _ended(self, run) -> FailedPrecondition:
        return FailedPrecondition(f"{self._store.collection}/{run.id} already ended ({st.STATE_NAMES[run.state]}); "
                                  f"nothing to {self.stop_word}")


async def follow_events(store: RunStore, signal: ChangeSignal, run_id: str, poll_s: float):
    """A run's events from the first, then live, until it has ended and every event was sent."""
    sequence = 0

    async def read() -> list[EventRecord]:
        nonlocal sequence
        found = await store.db.run_read(store.events_after, run_id, sequence)
        sequence = found[-1].sequence if found else sequence
        return found

    async def ended() -> bool:
        run = await store.db.run_read(store.get, run_id)
        return run.state in st.TERMINAL and not await store.db.run_read(store.events_after, run_id, sequence)

    async for event in feeds.follow(signal, poll_s, read, done=ended):
        yield event
