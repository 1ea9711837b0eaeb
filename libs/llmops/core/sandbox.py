"""A small pool of worker processes that render user-authored templates, so a hostile one costs
the service nothing it cannot take back.

Each worker is `python -m llmops.core.sandbox`: it limits its own address space (RLIMIT_AS),
lowers its CPU priority (nice), and renders one job at a time with `templating.render_here`.
The service waits at most the time limit plus a short grace; a worker still busy then is killed
(SIGKILL) and replaced, and the caller gets INVALID_ARGUMENT. A worker that runs out of memory
answers INVALID_ARGUMENT and is replaced. Jobs and answers are length-prefixed JSON frames on the
worker's stdin/stdout; nothing the worker sends is unpickled or executed.

`render` and `render_many` block: call them from a worker thread, as the services' assembly and
token counting do. All workers busy for `queue_timeout_s`: RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import json
import os
import queue
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from llmops.core import template_limits as limits
from llmops.core.errors import InvalidArgument, ResourceExhausted

_HEADER = struct.Struct(">I")
GRACE_S = 0.25  # past the time limit, before the worker is killed
MAX_FRAME = 64 * 1024 * 1024


class _Worker:
    def __init__(self, memory_mb: int):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMOPS_", "OTEL_"))}
        # The service's own import paths (a virtualenv or Bazel runfiles), so `-m llmops.core.sandbox`
        # resolves as it does here; no service settings or telemetry endpoints go with it.
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmops.core.sandbox", str(memory_mb)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env, close_fds=True)

    def send(self, job: dict) -> None:
        data = json.dumps(job).encode()
        self.proc.stdin.write(_HEADER.pack(len(data)) + data)

    def receive(self, deadline: float) -> dict | None:
        """The answer, or None when the deadline passed or the worker died."""
        fd = self.proc.stdout.fileno()
        header = self._read(fd, _HEADER.size, deadline)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        if size > MAX_FRAME:
            return None
        body = self._read(fd, size, deadline)
        return None if body is None else json.loads(body)

    @staticmethod
    def _read(fd: int, n: int, deadline: float) -> bytes | None:
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(out))
            if not chunk:
                return None  # the worker died
            out += chunk
        return bytes(out)

    def kill(self) -> None:
        try:
            self.proc.kill()
        except OSError:
            pass
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            f.close()


class RenderPool:
    """`workers` sandbox processes (started on first use), each limited to `memory_mb`."""

    def __init__(self, workers: int = 2, *, memory_mb: int = 256, time_limit_s: float = limits.TIME_LIMIT_S,
                 queue_timeout_s: float = 5.0):
        self._memory_mb = memory_mb
        self.time_limit_s = time_limit_s
        self._queue_timeout_s = queue_timeout_s
        self._idle: queue.Queue[_Worker | None] = queue.Queue()
        for _ in range(workers):
            self._idle.put(None)  # a slot; its worker starts when first needed
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.killed = 0  # workers killed for running past the limit or out of memory

    def _spawn(self) -> _Worker:
        worker = _Worker(self._memory_mb)
        with self._lock:
            self._all.add(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.kill()

    def render(self, source: str, variables: Mapping[str, Any], where: str, kind: str = limits.PROMPT,
               max_chars: int = limits.MAX_OUTPUT_CHARS) -> str:
        return self.render_many([(source, variables, where)], kind, max_chars)[0]

    def render_many(self, jobs: Sequence[tuple[str, Mapping[str, Any], str]], kind: str = limits.PROMPT,
                    max_chars: int = limits.MAX_OUTPUT_CHARS) -> list[str]:
        """Each (source, variables, where) rendered, in one round trip; the time limit bounds them
        all together."""
        frame = {"jobs": [list(j) for j in jobs], "kind": kind, "time_limit_s": self.time_limit_s,
                 "max_chars": max_chars}
        where = jobs[0][2] if jobs else ""
        try:
            worker = self._idle.get(timeout=self._queue_timeout_s)
        except queue.Empty:
            raise ResourceExhausted("every template renderer is busy; retry shortly", retry_after_s=1.0) from None
        replace = False
        try:
            if worker is None or worker.proc.poll() is not None:
                worker = self._spawn()
            try:
                worker.send(frame)
            except OSError:  # it died since its last job: once more on a fresh one
                self._retire(worker)
                worker = self._spawn()
                worker.send(frame)
            answer = worker.receive(time.monotonic() + self.time_limit_s + GRACE_S)
            if answer is None:
                replace = True
                self.killed += 1
                if worker.proc.poll() is None:
                    raise InvalidArgument(limits.too_slow(where, self.time_limit_s))
                raise InvalidArgument(f"{where}: rendering failed (the template needed more than the renderer's "
                                      f"{self._memory_mb} MB or crashed it)")
            if answer.get("retire"):
                replace = True
                self.killed += 1
            if "error" in answer:
                raise InvalidArgument(answer["error"])
            return answer["texts"]
        finally:
            if replace:  # the replacement starts now, so its start-up overlaps the wait for the next job
                self._retire(worker)
                worker = None if self._closed else self._spawn()
            elif self._closed and worker is not None:
                self._retire(worker)
                worker = None
            self._idle.put(worker)

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers = list(self._all)
            self._all.clear()
        for w in workers:
            w.kill()


def _limit_self(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        os.nice(10)  # a runaway render yields the CPU to the service's own work
    except OSError:
        pass


def _serve(memory_mb: int) -> None:
    from llmops.core import templating  # Jinja2 only in the workers

    _limit_self(memory_mb)
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()

    def read(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = os.read(stdin, n - len(out))
            if not chunk:
                raise SystemExit(0)  # the service closed the pipe (or died)
            out += chunk
        return bytes(out)

    def write(obj: dict) -> None:
        data = json.dumps(obj).encode()
        frame = _HEADER.pack(len(data)) + data
        while frame:
            frame = frame[os.write(stdout, frame):]

    while True:
        (size,) = _HEADER.unpack(read(_HEADER.size))
        frame = json.loads(read(size))
        deadline = time.monotonic() + frame["time_limit_s"]
        where = frame["jobs"][0][2] if frame["jobs"] else ""
        try:
            texts = []
            for source, variables, where in frame["jobs"]:
                if time.monotonic() > deadline:
                    raise InvalidArgument(limits.too_slow(where, frame["time_limit_s"]))
                texts.append(templating.render_here(source, variables, where, frame["kind"], frame["time_limit_s"],
                                                    frame["max_chars"], deadline=deadline))
            write({"texts": texts})
        except InvalidArgument as exc:
            write({"error": exc.message})
        except MemoryError:
            write({"error": f"{where}: rendering needed more than the renderer's {memory_mb} MB and was "
                            "stopped", "retire": True})
            raise SystemExit(0) from None
        except RecursionError:
            write({"error": f"{where}: the template recursed too deeply"})
        except Exception as exc:  # noqa: BLE001 - whatever a template raises is the template's fault
            write({"error": f"{where}: the template failed to render ({type(exc).__name__})"})


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
