"""Services for tests and benchmarks: an aio server in a background thread, keys for each role,
free ports, service processes started the way `llmops up` starts them, and waiting for a
condition rather than for a fixed time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from llmops.core import auth
from llmops.core.localenv import free_port  # noqa: F401 - tests import it from here
from llmops.core.server import Server, ServerConfig

ROOT = Path(__file__).resolve().parents[3]  # the checkout (an editable install): services run from here
ROLES = ("reader", "reviewer", "editor", "approver", "admin")


def make_keys(path: Path) -> dict[str, str]:
    """One key per role, named after the role; returns role -> key."""
    return {role: auth.add_key(path, role, role) for role in ROLES}


class ServerThread:
    """Runs `factory(ServerConfig(port=0), keys)` on its own event loop in a thread."""

    def __init__(self, factory: Callable[[ServerConfig, auth.KeyStore], Awaitable[Server]], keys: auth.KeyStore,
                 config: ServerConfig | None = None):
        self._factory = factory
        self._keys = keys
        self._config = config or ServerConfig(port=0)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Server | None = None

    def start(self) -> ServerThread:
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._factory(self._config, self._keys), self.loop).result(60)
        return self

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.port}"

    def run(self, coro: Awaitable, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, grace: float | None = 0) -> None:
        if self.server is not None:
            self.run(self.server.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def until_ended(get: Callable[[], object], timeout: float = 120.0):
    """Poll `get()` (a tuning job, evaluation or release) until its state is terminal; returns it."""
    from llmops.api.finetuning.v1 import finetuning_pb2 as fpb

    ended = (fpb.JOB_STATE_SUCCEEDED, fpb.JOB_STATE_FAILED, fpb.JOB_STATE_CANCELLED)
    return wait_until(lambda: (run := get()).state in ended and run, timeout, interval=0.2, what="the run to end")


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02, what: str = ""):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout`
    seconds naming `what`: a test waits for the condition it needs, never for a guessed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what or getattr(predicate, '__name__', 'a condition')}")
        time.sleep(interval)


def code_of(fn, *args, **kwargs):
    """The status code and message of a failing call (client wrapper or raw stub); a call must
    never fail with UNKNOWN or show a traceback."""
    import grpc
    import pytest

    from llmops.client import CallError

    with pytest.raises((CallError, grpc.RpcError)) as info:
        fn(*args, **kwargs)
    err = info.value
    code, message = (err.code, err.message) if isinstance(err, CallError) else (err.code(), err.details())
    assert code is not grpc.StatusCode.UNKNOWN
    assert "Traceback" not in message and 'File "' not in message
    return code, message


class ServiceProcess:
    """`python -m services.<name>` (or another module) as its own process, bound to a free
    loopback port; `prefix` is its settings prefix (default `LLMOPS_<NAME>`)."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, *, module: str = "",
                 args: tuple[str, ...] = (), prefix: str = "", port: int = 0):
        self.name = name
        self.env = env
        self.workdir = workdir
        self.module = module or f"services.{name}"
        self.args = args
        self.prefix = prefix or f"LLMOPS_{name.upper()}"
        self.port = port  # 0: a free one, reported in the ready file
        self.proc: subprocess.Popen | None = None
        self.address = ""
        self.http_address = ""  # for a service that also serves HTTP
        self.metrics_address = ""  # Prometheus /metrics
        self.log = workdir / f"{name}.log"

    def launch(self) -> ServiceProcess:
        """Start the process without waiting (see `wait`); several can start side by side."""
        prefix = self.prefix
        self._ready = self.workdir / f"{self.name}.ready"
        self._ready.unlink(missing_ok=True)
        env = {**os.environ, f"{prefix}_METRICS_PORT": "0", **self.env, f"{prefix}_PORT": str(self.port),
               f"{prefix}_HOST": "127.0.0.1",
               f"{prefix}_READY_FILE": str(self._ready)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args], env=env, cwd=ROOT,
            stdout=open(self.log, "ab"), stderr=subprocess.STDOUT,
        )
        return self

    def wait(self, timeout: float = 60) -> ServiceProcess:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while not self._ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        lines = self._ready.read_text().split("\n")
        self.address = lines[0].strip()
        self.http_address = next((x.split()[1] for x in lines[1:] if x.startswith("http ")), "")
        self.metrics_address = next((x.split()[1] for x in lines[1:] if x.startswith("metrics ")), "")
        return self

    def start(self, timeout: float = 60) -> ServiceProcess:
        return self.launch().wait(timeout)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def kill(self) -> int:
        assert self.proc is not None
        self.proc.kill()
        return self.proc.wait(10)
