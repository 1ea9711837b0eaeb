"""Usage accounting and limits per caller and route.

Limits are checked in memory on the request path: requests and tokens per minute over a sliding
60 s window, and a total token budget. A request reserves its input estimate plus its max_tokens
when admitted (a budget clamps max_tokens to what is left), and the reservation is replaced by
the real counts when it ends, so concurrent and streamed calls can never overrun a budget.
Usage is the same for unary and streamed calls: the counts the backend reported (or, for a
stream the caller cancelled, the tokens delivered so far).

Recorded usage is kept per minute and written to SQL in batches every `flush_s` (and on stop),
keeping the database off the request path; GetUsage adds what is not yet written.

Where the windows live: in this replica's memory by default (each replica enforces its own;
budgets are read from SQL when a caller first appears), or, with `LLMOPS_REDIS_URL`, in Redis
for every replica together (`shared_limits`), the same rules in one atomic script."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field

from llmops.core.errors import ResourceExhausted
from services.generation.shared_limits import Refused, SharedWindows
from services.generation.store import GenerationStore, UsageDelta

log = logging.getLogger(__name__)
WINDOW_S = 60.0


@dataclass
class Window:
    """One caller on one route."""

    requests: deque = field(default_factory=deque)  # admission times
    tokens: deque = field(default_factory=deque)  # (time, tokens) of finished requests
    reserved: int = 0  # tokens held by requests in flight
    used_total: int | None = None  # all-time tokens (budget), loaded on first use

    def prune(self, now: float) -> None:
        while self.requests and now - self.requests[0] >= WINDOW_S:
            self.requests.popleft()
        while self.tokens and now - self.tokens[0][0] >= WINDOW_S:
            self.tokens.popleft()

    def tokens_in_window(self) -> int:
        return sum(n for _, n in self.tokens)


@dataclass
class Reservation:
    caller: str
    route: str
    reserved: int
    max_tokens: int  # possibly clamped by the budget
    settled: bool = False
    shared_id: str = ""  # the reservation's id in the shared windows


@dataclass(frozen=True)
class LimitSpec:
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    token_budget: int = 0


def _over_rpm(caller: str, route: str, limits: LimitSpec, retry_after_s: float) -> ResourceExhausted:
    return ResourceExhausted(
        f"{caller} reached the limit of {limits.requests_per_minute} requests per minute on route {route!r}",
        retry_after_s=retry_after_s)


def _over_budget(caller: str, route: str, limits: LimitSpec, input_tokens: int) -> ResourceExhausted:
    return ResourceExhausted(f"{caller} has used the token budget of {limits.token_budget} on route {route!r} "
                             f"(this request needs {input_tokens} input tokens); an admin can raise it")


def _over_tpm(caller: str, route: str, limits: LimitSpec, used: int, need: int, retry_after_s: float):
    return ResourceExhausted(
        f"{caller} would exceed {limits.tokens_per_minute} tokens per minute on route {route!r} "
        f"({used} used in the last minute, this request needs up to {need})", retry_after_s=retry_after_s)


class Accounting:
    def __init__(self, store: GenerationStore, flush_s: float = 1.0, shared: SharedWindows | None = None):
        self._store = store
        self._flush_s = flush_s
        self._shared = shared
        self._settling: set[asyncio.Task] = set()
        self._windows: dict[tuple[str, str], Window] = defaultdict(Window)
        self._pending: dict[tuple[str, str, int], list[int]] = {}
        self._loading: dict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def admit(self, caller: str, route: str, limits: LimitSpec, input_tokens: int, max_tokens: int) -> Reservation:
        """Reserve capacity for one request or raise RESOURCE_EXHAUSTED (with a retry delay
        where waiting helps)."""
        key = (caller, route)
        if self._shared is not None:
            return await self._admit_shared(caller, route, limits, input_tokens, max_tokens)
        w = self._windows[key]
        if limits.token_budget and w.used_total is None:
            async with self._loading[key]:
                if w.used_total is None:
                    w.used_total = await self._used_total(caller, route)
        now = time.monotonic()
        w.prune(now)
        if limits.requests_per_minute and len(w.requests) >= limits.requests_per_minute:
            raise _over_rpm(caller, route, limits, max(0.05, WINDOW_S - (now - w.requests[0])))
        if limits.token_budget:
            left = limits.token_budget - (w.used_total or 0) - w.reserved - input_tokens
            if left < 1:
                raise _over_budget(caller, route, limits, input_tokens)
            max_tokens = min(max_tokens, left)
        need = input_tokens + max_tokens
        if limits.tokens_per_minute:
            used = w.tokens_in_window() + w.reserved
            if used + need > limits.tokens_per_minute:
                wait = WINDOW_S - (now - w.tokens[0][0]) if w.tokens else 1.0
                raise _over_tpm(caller, route, limits, used, need, max(0.05, wait))
        w.requests.append(now)
        w.reserved += need
        return Reservation(caller, route, need, max_tokens)

    async def _used_total(self, caller: str, route: str) -> int:
        """All-time tokens of a caller on a route: what SQL has plus what is not written yet."""
        rows = await self._store.db.run_read(self._store.usage, caller, route, 0, 2**62)
        return sum(r.input_tokens + r.output_tokens for r in rows) + self._pending_tokens((caller, route))

    async def _admit_shared(self, caller: str, route: str, limits: LimitSpec, input_tokens: int,
                            max_tokens: int) -> Reservation:
        try:
            max_tokens, need, shared_id = await self._shared.admit(
                caller, route, limits.requests_per_minute, limits.tokens_per_minute, limits.token_budget,
                input_tokens, max_tokens, lambda: self._used_total(caller, route))
        except Refused as refused:
            if refused.kind == "rpm":
                raise _over_rpm(caller, route, limits, refused.retry_after_s) from None
            if refused.kind == "budget":
                raise _over_budget(caller, route, limits, input_tokens) from None
            raise _over_tpm(caller, route, limits, refused.used, input_tokens + max_tokens,
                            refused.retry_after_s) from None
        return Reservation(caller, route, need, max_tokens, shared_id=shared_id)

    def settle(self, r: Reservation, input_tokens: int, output_tokens: int) -> None:
        """Replace the reservation with what was really used, and record it (once)."""
        if r.settled:
            return
        r.settled = True
        total = input_tokens + output_tokens
        if self._shared is not None:
            task = asyncio.get_running_loop().create_task(self._settle_shared(r, total))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
        else:
            w = self._windows[(r.caller, r.route)]
            w.reserved -= r.reserved
            w.tokens.append((time.monotonic(), total))
            if w.used_total is not None:
                w.used_total += total
        minute = int(time.time() // 60)
        p = self._pending.setdefault((r.caller, r.route, minute), [0, 0, 0])
        p[0] += 1
        p[1] += input_tokens
        p[2] += output_tokens

    def _pending_tokens(self, key: tuple[str, str]) -> int:
        return sum(v[1] + v[2] for (c, r, _), v in self._pending.items() if (c, r) == key)

    async def settled(self) -> None:
        """Wait for settlements still on their way to the shared store (none in memory)."""
        await asyncio.gather(*self._settling, return_exceptions=True)

    async def _settle_shared(self, r: Reservation, total: int) -> None:
        try:
            await self._shared.settle(r.caller, r.route, r.shared_id, r.reserved, total)
        except Exception:  # the hold expires by itself; the usage is in SQL either way
            log.exception("could not settle a reservation in the shared limits store")

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        deltas = [UsageDelta(c, r, m, *v) for (c, r, m), v in batch.items()]
        try:
            await self._store.db.run(self._store.add_usage, deltas)
        except Exception:  # keep them for the next flush rather than lose them
            log.exception("could not record usage; will retry")
            for (c, r, m), v in batch.items():
                p = self._pending.setdefault((c, r, m), [0, 0, 0])
                for i in range(3):
                    p[i] += v[i]

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(self._flush_s)
            await self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.settled()
        await self.flush()
        if self._shared is not None:
            await self._shared.close()

    async def usage(self, caller: str | None, route: str | None, start_minute: int, end_minute: int) -> list[UsageDelta]:
        rows = await self._store.db.run_read(self._store.usage, caller, route, start_minute, end_minute)
        totals = {(u.caller, u.route): [u.requests, u.input_tokens, u.output_tokens] for u in rows}
        for (c, r, m), v in self._pending.items():
            if (not caller or c == caller) and (not route or r == route) and start_minute <= m <= end_minute:
                t = totals.setdefault((c, r), [0, 0, 0])
                for i in range(3):
                    t[i] += v[i]
        return [UsageDelta(c, r, 0, *v) for (c, r), v in sorted(totals.items())]
