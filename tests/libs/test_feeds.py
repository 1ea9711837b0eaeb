"""The change feed every follower uses: a commit that lands between a follower's read and its
wait wakes it at once (not a poll interval later), full pages are read again at once, and `done`
ends the feed."""

from __future__ import annotations

import asyncio
import time

from llmops.core.feeds import ChangeSignal, follow


async def test_a_commit_between_the_read_and_the_wait_is_not_missed():
    signal, log, cursor = ChangeSignal(), [], [0]

    async def read():
        batch = log[cursor[0]:]
        cursor[0] = len(log)
        if len(log) == 0:  # a writer commits right after this read, before the follower waits
            log.append("late")
            signal.notify()
        return batch

    started = time.monotonic()
    feed = follow(signal, 30.0, read)
    assert await asyncio.wait_for(anext(feed), 5) == "late"
    assert time.monotonic() - started < 5  # woken by the signal, not by the 30 s poll
    await feed.aclose()


async def test_full_pages_are_read_again_at_once_and_done_ends_the_feed():
    pages = [[1, 2], [3, 4], [5]]
    reads = []

    async def read():
        reads.append(time.monotonic())
        return pages.pop(0) if pages else []

    async def done():
        return not pages

    items = [i async for i in follow(ChangeSignal(), 30.0, read, page=2, done=done)]
    assert items == [1, 2, 3, 4, 5] and len(reads) == 3
    assert reads[-1] - reads[0] < 5  # no poll wait between full pages
