"""WatchEvents: replay from the event log, then follow it. Writers in this process wake watchers
at once; a periodic poll also picks up events written by other replicas sharing the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from services.registry.domain import EventRecord
from services.registry.store import RegistryStore

BATCH = 500


class EventFeed:
    def __init__(self, store: RegistryStore, poll_s: float):
        self._store = store
        self._poll_s = poll_s
        self._changed = asyncio.Event()

    def notify(self) -> None:
        """Wake every watcher (called after a committed change)."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after: int, accept: Callable[[EventRecord], bool]) -> AsyncIterator[EventRecord]:
        cursor = after if after > 0 else await self._store.db.run_read(self._store.last_sequence)
        while True:
            changed = self._changed  # take it before reading, so no change slips between
            batch = await self._store.db.run_read(self._store.list_events, None, cursor, BATCH)
            for event in batch:
                cursor = event.sequence
                if accept(event):
                    yield event
            if len(batch) < BATCH:
                try:
                    await asyncio.wait_for(changed.wait(), self._poll_s)
                except TimeoutError:
                    pass
