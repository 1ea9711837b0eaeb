"""The local span store: where spans go when no OTLP endpoint is configured.

Every service process appends finished spans to one SQLite file (WAL, so readers never block
writers and several processes can write); `llmops trace <trace-id>` reads a trace back.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL, span_id TEXT NOT NULL, parent_id TEXT, service TEXT NOT NULL,
    name TEXT NOT NULL, kind TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL,
    status TEXT NOT NULL, attributes TEXT NOT NULL, PRIMARY KEY (trace_id, span_id));
CREATE INDEX IF NOT EXISTS spans_by_start ON spans (start_ns);
"""


@dataclass(frozen=True)
class StoredSpan:
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    attributes: dict

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    return conn


class SqliteSpanExporter(SpanExporter):
    """An OpenTelemetry exporter writing to the local span store."""

    def __init__(self, path: Path):
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = []
        for s in spans:
            ctx = s.get_span_context()
            parent = s.parent.span_id if s.parent is not None else None
            rows.append((
                format(ctx.trace_id, "032x"),
                format(ctx.span_id, "016x"),
                format(parent, "016x") if parent else None,
                str(s.resource.attributes.get("service.name", "unknown")),
                s.name,
                s.kind.name,
                s.start_time or 0,
                s.end_time or 0,
                s.status.status_code.name,
                json.dumps(dict(s.attributes or {}), default=str),
            ))
        try:
            with self._lock:
                if self._conn is None:
                    self._conn = _connect(self._path)
                self._conn.executemany("INSERT OR REPLACE INTO spans VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        except sqlite3.Error:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def read_trace(path: Path, trace_id: str) -> list[StoredSpan]:
    """All stored spans of one trace, ordered by start time."""
    if not path.exists():
        return []
    conn = _connect(path)
    try:
        rows = conn.execute(
            "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns", (trace_id.lower(),)
        ).fetchall()
    finally:
        conn.close()
    return [StoredSpan(*r[:9], attributes=json.loads(r[9])) for r in rows]


def recent_traces(path: Path, limit: int = 20) -> list[tuple[str, str, int]]:
    """(trace id, root span name, start ns) of the latest traces."""
    if not path.exists():
        return []
    conn = _connect(path)
    try:
        return conn.execute(
            "SELECT trace_id, name, MIN(start_ns) AS s FROM spans GROUP BY trace_id ORDER BY s DESC LIMIT ?",
            (limit,),
        ).fetchall()
    finally:
        conn.close()
