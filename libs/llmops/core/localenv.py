"""The local environment of one machine: `LLMOPS_HOME` (default `~/.llmops`) holds the config that
`llmops up` writes (service addresses, the admin key), the key file, data, logs and traces."""

from __future__ import annotations

import json
import os
import random
import socket
from dataclasses import dataclass, field
from pathlib import Path

# Where each service listens when started by `llmops up` or alone without a port setting.
DEFAULT_PORTS = {
    "registry": 50051, "retrieval": 50052, "prompt": 50053, "generation": 50054,
    "pipeline": 50055, "feedback": 50056, "finetuning": 50057,
    "modelserver": 50058,  # HTTP (BentoML), reached by the generation service only
    "pipeline_http": 50059,  # the pipeline's OpenAI-compatible HTTP API
    "feedback_http": 50060,  # the review web app
}


_GIVEN: set[int] = set()  # ports handed out by this process (not bound yet, maybe)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now, for a process about to bind it. Drawn below the
    ephemeral range: a process may bind it many seconds later (services start one after the
    other), and by then outgoing connections, which take ephemeral ports, could have taken one
    the OS had picked. Never the same port twice from one process."""
    low, high = 20000, _ephemeral_low()
    for _ in range(200) if high - low > 1000 else ():
        port = random.randrange(low, high)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as s:  # a machine whose ephemeral range starts low: let the OS pick
        s.bind((host, 0))
        return s.getsockname()[1]


def service_address(service: str) -> str:
    """Where a service is reached: `LLMOPS_<SERVICE>_ADDRESS`, else loopback on its default port."""
    return os.environ.get(f"LLMOPS_{service.upper()}_ADDRESS") or f"127.0.0.1:{DEFAULT_PORTS[service]}"


def home() -> Path:
    return Path(os.environ.get("LLMOPS_HOME") or Path.home() / ".llmops").expanduser()


def data_dir(service: str) -> Path:
    """A service's own data folder, `$LLMOPS_HOME/data/<service>` (created)."""
    path = home() / "data" / service
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_sqlite_url(service: str, filename: str = "") -> str:
    """The embedded default store of a service: SQLite in its data folder."""
    return f"sqlite:///{data_dir(service) / (filename or service + '.db')}"


def config_path() -> Path:
    return home() / "config.json"


def keys_path() -> Path:
    return home() / "keys.json"


@dataclass
class LocalConfig:
    """What a client needs to reach a running stack."""

    services: dict[str, str] = field(default_factory=dict)  # service name -> host:port
    api_key: str = ""

    @classmethod
    def load(cls, path: Path | None = None) -> LocalConfig:
        path = path or config_path()
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(services=data.get("services", {}), api_key=data.get("api_key", ""))

    def save(self, path: Path | None = None) -> Path:
        path = path or config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds a key
        with os.fdopen(fd, "w") as f:
            json.dump({"services": self.services, "api_key": self.api_key}, f, indent=2)
        os.replace(tmp, path)
        return path
