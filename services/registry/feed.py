"""WatchEvents: replay from the event log, then follow it. Writers in this process wake watchers
at once; a periodic poll also picks up events written by other replicas sharing the database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from llmops.core import feeds
from llmops.core.feeds import ChangeSignal
from services.registry.domain import EventRecord
from services.registry.store import RegistryStore

BATCH = 500


class EventFeed:
    def __init__(self, store: RegistryStore, poll_s: float):
        self._store = store
        self._poll_s = poll_s
        self._signal = ChangeSignal()

    def notify(self) -> None:
        """Wake every watcher (called after a committed change)."""
        self._signal.notify()

    async def follow(self, after: int, accept: Callable[[EventRecord], bool]) -> AsyncIterator[EventRecord]:
        cursor = after if after > 0 else await self._store.db.run_read(self._store.last_sequence)

        async def read() -> list[EventRecord]:
            nonlocal cursor
            batch = await self._store.db.run_read(self._store.list_events, None, cursor, BATCH)
            cursor = batch[-1].sequence if batch else cursor
            return batch

        async for event in feeds.follow(self._signal, self._poll_s, read, page=BATCH):
            if accept(event):
                yield event
