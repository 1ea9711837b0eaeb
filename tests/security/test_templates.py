"""Hostile templates over the wire: an editor's template that would take seconds of CPU or
hundreds of MB in one C call is stopped with INVALID_ARGUMENT within about a second, and the
prompt service keeps answering everyone else meanwhile."""

from __future__ import annotations

import statistics
import threading
import time
import uuid

import grpc
import pytest

from llmops.testing.services import code_of

pytestmark = pytest.mark.slow  # the whole stack

HOSTILE = [
    "{{ (((9**64)**64)**64)**64 }}",
    '{{ "%0300000000d" % 1 }}',
    "{{ 'a' | center(300000000) }}",
    "{{ ('x' * 90000) | replace('x', 'y' * 90000) }}",
]


def test_hostile_templates_are_refused_fast_and_others_keep_their_latency(rag):
    editor = rag.client("editor").prompt
    name = f"hostile-{uuid.uuid4().hex[:6]}"
    editor.create_template(name)
    for source in HOSTILE:
        editor.create_version(name, [("user", source)])
    versions = range(1, len(HOSTILE) + 1)
    stop = threading.Event()
    outcomes: list[tuple[grpc.StatusCode, float, str]] = []

    def attack() -> None:
        while not stop.is_set():
            for v in versions:
                start = time.monotonic()
                code, message = code_of(editor.assemble, f"{name}@{v}")
                outcomes.append((code, time.monotonic() - start, message))

    attackers = [threading.Thread(target=attack, daemon=True) for _ in range(3)]
    for t in attackers:
        t.start()
    time.sleep(0.5)
    reader = rag.client("reader").prompt
    latencies = []
    for _ in range(60):
        start = time.monotonic()
        reader.list_templates()
        latencies.append(time.monotonic() - start)
        time.sleep(0.05)
    stop.set()
    for t in attackers:
        t.join(30)
    assert outcomes and all(code is grpc.StatusCode.INVALID_ARGUMENT for code, _, _ in outcomes), outcomes[:3]
    walls = sorted(w for _, w, _ in outcomes)
    p99 = sorted(latencies)[int(len(latencies) * 0.99) - 1]
    print(f"hostile renders: {len(outcomes)} refused, wall max {walls[-1]:.2f} s; concurrent ListPromptTemplates "
          f"p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    # each waits for a free renderer (3 attackers, 2 workers) and then at most the limit and its grace
    assert max(w for _, w, m in outcomes if "stopped" in m) < 3.0
    assert p99 < 0.1
    # the service still renders honest templates
    editor.create_version(name, [("user", "fine {{ 6 * 7 }}")])
    assert editor.assemble(f"{name}@{len(HOSTILE) + 1}").messages[0].content == "fine 42"
