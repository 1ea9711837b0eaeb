"""Limits every generation replica shares, in Redis (`LLMOPS_REDIS_URL`): requests and tokens per
minute and token budgets per caller and route, checked and reserved in one Lua script, so
replicas behind one load balancer enforce one limit between them instead of one each.

Per caller and route (one Redis Cluster hash slot: the keys share a `{route|caller}` tag):
- `requests`: a sorted set of admissions scored by time (the sliding 60 s window);
- `tokens`: finished requests' tokens (`id:count`) scored by time;
- `reserved`: requests in flight (`id:tokens`) scored by when their hold expires, so a replica
  that dies mid-request frees what it held after `HOLD_S`;
- `used`: the all-time tokens a budget counts, loaded from SQL once (SET NX) and then counted
  here by every replica.
Times are the Redis server's (one clock for all replicas)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from llmops.core.errors import Unavailable

HOLD_S = 900  # a reservation outlives any request (the request timeout is 300 s)
PREFIX = "llmops:limits"

# ARGV: window_s, rpm, tpm, budget, input_tokens, max_tokens, id, hold_s
# -> {max_tokens, need} | {-1, retry_after_s} (rpm) | {-2, 0} (budget) | {-3, 0} (budget not loaded)
#    | {-4, retry_after_s, used} (tpm)
ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local window, rpm, tpm, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local input, max_tokens, hold = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
if rpm > 0 and redis.call('ZCARD', KEYS[1]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {-1, tostring(tonumber(oldest[2]) + window - now)}
end
local reserved = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  reserved = reserved + tonumber(string.match(m, ':(%d+)$'))
end
if budget > 0 then
  local used = redis.call('GET', KEYS[4])
  if not used then return {-3, '0'} end
  local left = budget - tonumber(used) - reserved - input
  if left < 1 then return {-2, '0'} end
  if max_tokens > left then max_tokens = left end
end
local need = input + max_tokens
if tpm > 0 then
  local used, oldest = reserved, nil
  local done = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  for i = 1, #done, 2 do
    used = used + tonumber(string.match(done[i], ':(%d+)$'))
    if not oldest then oldest = tonumber(done[i + 1]) end
  end
  if used + need > tpm then
    local wait = 1.0
    if oldest then wait = oldest + window - now end
    return {-4, tostring(wait), used}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[7])
redis.call('ZADD', KEYS[3], now + hold, ARGV[7] .. ':' .. need)
redis.call('EXPIRE', KEYS[1], math.ceil(window) + 1)
redis.call('EXPIRE', KEYS[3], hold + 1)
return {max_tokens, need}
"""

# ARGV: id, reserved tokens, tokens used, window_s
SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
redis.call('ZREM', KEYS[1], ARGV[1] .. ':' .. ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. ARGV[3])
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[4])) + 1)
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('INCRBY', KEYS[3], ARGV[3]) end
return 1
"""


class Refused(Exception):
    """Admission refused: `kind` is rpm, budget or tpm; `retry_after_s` when waiting helps."""

    def __init__(self, kind: str, retry_after_s: float | None = None, used: int = 0):
        super().__init__(kind)
        self.kind, self.retry_after_s, self.used = kind, retry_after_s, used


class SharedWindows:
    def __init__(self, url: str, window_s: float, prefix: str = PREFIX):
        self._redis = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._window_s = window_s
        self._prefix = prefix
        self._admit = self._redis.register_script(ADMIT)
        self._settle = self._redis.register_script(SETTLE)

    def _keys(self, caller: str, route: str) -> list[str]:
        tag = f"{self._prefix}:{{{route}|{caller}}}"
        return [f"{tag}:requests", f"{tag}:tokens", f"{tag}:reserved", f"{tag}:used"]

    async def admit(self, caller: str, route: str, rpm: int, tpm: int, budget: int, input_tokens: int,
                    max_tokens: int, load_used: Callable[[], Awaitable[int]]) -> tuple[int, int, str]:
        """(max_tokens, tokens reserved, reservation id), or raises Refused; UNAVAILABLE when
        Redis cannot be reached (refusing is safer than admitting past a shared limit)."""
        keys, member = self._keys(caller, route), uuid.uuid4().hex
        args = [self._window_s, rpm, tpm, budget, input_tokens, max_tokens, member, HOLD_S]
        try:
            for _ in range(2):
                out = await self._admit(keys=keys, args=args)
                code = int(out[0])
                if code == -3:  # the budget's count is not in Redis yet: start it from SQL, once
                    await self._redis.set(keys[3], await load_used(), nx=True)
                    continue
                break
        except RedisError as exc:
            raise Unavailable(f"the shared limits store (Redis) is unavailable ({type(exc).__name__}); retry shortly",
                              service="redis") from None
        if code == -1:
            raise Refused("rpm", max(0.05, float(out[1])))
        if code in (-2, -3):
            raise Refused("budget")
        if code == -4:
            raise Refused("tpm", max(0.05, float(out[1])), int(out[2]))
        return code, int(out[1]), member

    async def settle(self, caller: str, route: str, member: str, reserved: int, used: int) -> None:
        keys = self._keys(caller, route)
        await self._settle(keys=[keys[2], keys[1], keys[3]], args=[member, reserved, used, self._window_s])

    async def close(self) -> None:
        await self._redis.aclose()
