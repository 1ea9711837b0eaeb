"""Fair share of a server's slots, an interceptor stage after authentication.

- Unary calls share one pool; past it a call is shed at once with RESOURCE_EXHAUSTED and a retry
  delay, instead of queuing without bound.
- Streams (watches, downloads, uploads, streamed answers) have a pool of their own and a cap per
  principal, so one caller holding hundreds of watches takes neither the other callers' streams
  nor any unary slot.
- Health and reflection never pass through here (they are open): probes are never refused.

gRPC's own `maximum_concurrent_rpcs` is set above the sum of both pools (see server.py), so it
only ever refuses what this stage would have shed anyway, and health keeps headroom.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from llmops.core import auth
from llmops.core.errors import ResourceExhausted
from llmops.core.interceptors import Call, Stage


@dataclass(frozen=True)
class Limits:
    max_unary: int = 256
    max_streams: int = 128
    max_streams_per_principal: int = 16
    retry_after_s: float = 1.0


class AdmissionStage(Stage):
    def __init__(self, limits: Limits):
        self._limits = limits
        self._unary = 0
        self._streams = 0
        self._per_principal: Counter[str] = Counter()

    def enter(self, call: Call) -> None:
        if call.open:
            return
        limits = self._limits
        if not (call.streaming_response or call.streaming_request):
            if self._unary >= limits.max_unary:
                raise ResourceExhausted(f"the server is at capacity ({limits.max_unary} calls in flight); retry "
                                        "after the delay", retry_after_s=limits.retry_after_s)
            self._unary += 1
            call.state["admitted"] = ""
            return
        who = auth.caller().name
        if self._per_principal[who] >= limits.max_streams_per_principal:
            raise ResourceExhausted(f"{who} already holds {limits.max_streams_per_principal} open streams on this "
                                    "server; close one (or wait) before opening another",
                                    retry_after_s=limits.retry_after_s)
        if self._streams >= limits.max_streams:
            raise ResourceExhausted(f"the server holds its maximum of {limits.max_streams} open streams; retry "
                                    "after the delay", retry_after_s=limits.retry_after_s)
        self._streams += 1
        self._per_principal[who] += 1
        call.state["admitted"] = who

    def exit(self, call: Call) -> None:
        who = call.state.pop("admitted", None)
        if who is None:
            return
        if not (call.streaming_response or call.streaming_request):
            self._unary -= 1
            return
        self._streams -= 1
        self._per_principal[who] -= 1
        if not self._per_principal[who]:
            del self._per_principal[who]
