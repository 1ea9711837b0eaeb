"""`llmops trace [<trace-id>]`: a trace from the local span store as a waterfall."""

from __future__ import annotations

import time
from collections.abc import Callable

from llmops.core import spanstore, telemetry

BAR_WIDTH = 32
KEY_ATTRIBUTES = (
    "llmops.model", "llmops.version", "llmops.alias", "llmops.reference", "llmops.path", "enduser.id",
    "rpc.grpc.status_code", "llmops.index", "llmops.index_version", "llmops.top_k", "gen_ai.request.model",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "llmops.template", "llmops.prompt_tokens",
    "llmops.truncated", "llmops.pipeline", "llmops.route", "llmops.served_by", "llmops.request_id",
    "http.response.status_code",
)


def render(trace_id: str) -> str:
    spans = spanstore.read_trace(telemetry.trace_store_path(), trace_id)
    if not spans:
        return f"no spans for trace {trace_id} in {telemetry.trace_store_path()} (spans are written within a second)"
    start = min(s.start_ns for s in spans)
    end = max(s.end_ns for s in spans)
    total = max(end - start, 1)
    depth: dict[str, int] = {}
    for s in spans:  # ordered by start: a parent comes before its children
        depth[s.span_id] = depth.get(s.parent_id, -1) + 1 if s.parent_id in depth else 0
    lines = [f"trace {trace_id}  {len(spans)} spans  {total / 1e6:.1f} ms  services: "
             + ", ".join(sorted({s.service for s in spans}))]
    lines.append(f"{'service':<18} {'span':<58} {'start':>9} {'dur':>9}  timeline")
    for s in spans:
        offset = (s.start_ns - start) / total
        width = max(1, round((s.end_ns - s.start_ns) / total * BAR_WIDTH))
        bar = " " * int(offset * BAR_WIDTH) + "█" * width
        name = ("  " * depth[s.span_id] + s.name)[:58]
        flag = " !" if s.status == "ERROR" else ""
        lines.append(f"{s.service:<18} {name:<58} {(s.start_ns - start) / 1e6:>7.1f}ms {s.duration_ms:>7.1f}ms  {bar}{flag}")
        attrs = [f"{k.removeprefix('llmops.')}={s.attributes[k]}" for k in KEY_ATTRIBUTES if k in s.attributes]
        if attrs:
            lines.append(f"{'':<18} {'  ' * depth[s.span_id]}  " + " ".join(attrs))
    return "\n".join(lines)


def render_complete(trace_id: str, before: Callable[[], None] | None = None, timeout_s: float = 5.0,
                    settle_s: float = 0.7) -> str:
    """`render` once every process has exported its spans: services export in batches every
    0.5 s, so wait until the trace stops growing for `settle_s` (at most `timeout_s`)."""
    if before is not None:
        before()
    deadline = time.monotonic() + timeout_s
    count, stable_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n = len(spanstore.read_trace(telemetry.trace_store_path(), trace_id))
        if n != count:
            count, stable_since = n, time.monotonic()
        elif n and time.monotonic() - stable_since >= settle_s:
            break
        time.sleep(0.1)
    return render(trace_id)


def recent() -> str:
    rows = spanstore.recent_traces(telemetry.trace_store_path())
    if not rows:
        return "no traces recorded yet"
    return "\n".join(f"{tid}  {name}" for tid, name, _ in rows)
