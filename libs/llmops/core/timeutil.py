"""Times as integer microseconds since the epoch (portable across SQL engines) and their
protobuf Timestamp form."""

from __future__ import annotations

import time

from google.protobuf import duration_pb2, timestamp_pb2


def now_us() -> int:
    return time.time_ns() // 1000


def timestamp(us: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(us)
    return ts


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d
