"""Change feeds, one mechanism for every follower (registry events, the feedback log, tuning-job
events): read what is new from the store, yield it, then wait until a writer in this process
signals a commit, or until `poll_s` passes (which picks up writes by other replicas sharing the
database). The signal is taken *before* each read, so a commit that lands between the read and
the wait still wakes the follower at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class ChangeSignal:
    """Wakes every waiting follower when something was committed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """Set by the next `notify()`; take it before reading."""
        return self._event


async def follow(signal: ChangeSignal, poll_s: float, read: Callable[[], Awaitable[Sequence[T]]], *,
                 page: int = 0, done: Callable[[], Awaitable[bool]] | None = None) -> AsyncIterator[T]:
    """Items from `read()` (which keeps and advances its own cursor) as they are committed. A batch
    of `page` items or more is read again at once (there may be more waiting); `done()`, asked after
    each batch, ends the feed."""
    while True:
        ticket = signal.ticket()
        batch = await read()
        for item in batch:
            yield item
        if done is not None and await done():
            return
        if page and len(batch) >= page:
            continue
        try:
            await asyncio.wait_for(ticket.wait(), poll_s)
        except TimeoutError:
            pass
