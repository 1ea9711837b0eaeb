"""`llmops up | down | status`: every implemented service as its own process on loopback.

State lives in $LLMOPS_HOME: run/<service>.pid, logs/<service>.log, config.json (addresses and
the admin key, read by the CLI and the Python client) and keys.json (hashed keys, read by the
services).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmops.core import auth, cpu, localenv

# The services `llmops up` starts, in dependency order; each later service is added here.
SERVICES = ["registry", "retrieval", "prompt", "modelserver", "generation", "feedback", "pipeline", "finetuning"]
# Services that also serve HTTP beside gRPC: the setting that sets its port, its config.json entry.
EXTRA_HTTP = {"pipeline": ("LLMOPS_PIPELINE_HTTP_PORT", "pipeline_http"),
              "feedback": ("LLMOPS_FEEDBACK_HTTP_PORT", "feedback_http")}
HTTP_SERVICES = {"modelserver"}  # BentoML: health is GET /readyz
# Services that call others in the background (not on a caller's behalf) get their own key.
PIPELINE_GRANTS = ("FeedbackService/LogInference", "FeedbackService/LogInferences")
# The fine-tuning service downloads bases and datasets and registers candidates (editor); its
# evaluations record their results as gate evidence and create a model version's evaluation route;
# its releases move a protected alias's canary and the alias itself (a release is started by an
# approver, and the registry still refuses versions that are not approved).
FINETUNING_GRANTS = ("RegistryService/RecordEvaluation", "GenerationService/CreateRoute",
                     "RegistryService/SetCanary", "RegistryService/SetAlias")
# Each service's own key: the least role it needs, plus single methods granted beyond it.
SERVICE_KEYS = {"modelserver": (auth.Role.READER, ()), "generation": (auth.Role.READER, ()),
                "pipeline": (auth.Role.READER, PIPELINE_GRANTS),  # logs answers to the feedback service
                "finetuning": (auth.Role.EDITOR, FINETUNING_GRANTS)}
START_TIMEOUT_S = 120.0  # the model server imports BentoML, torch and DeepSpeed
STOP_TIMEOUT_S = 20.0


@dataclass
class ServiceState:
    name: str
    address: str
    pid: int | None
    health: str


def _run_dir() -> Path:
    return localenv.home() / "run"


def _pid_file(service: str) -> Path:
    return _run_dir() / f"{service}.pid"


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(service: str) -> int | None:
    try:
        return int(_pid_file(service).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def health(address: str, timeout: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(address) as ch:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    except grpc.RpcError as err:
        return err.code().name


def http_health(address: str, timeout: float = 1.0) -> str:
    try:
        with urllib.request.urlopen(f"http://{address}/readyz", timeout=timeout) as resp:
            return "SERVING" if resp.status == 200 else "NOT_SERVING"
    except OSError:
        return "UNAVAILABLE"


def service_health(name: str, address: str) -> str:
    return http_health(address) if name in HTTP_SERVICES else health(address)


def _port_free(port: int) -> bool:
    """Whether a service could listen on `port` now. SO_REUSEADDR as the servers themselves
    bind: connections of a just-stopped service lingering in TIME_WAIT do not hold the port."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ensure_admin_key(config: localenv.LocalConfig) -> str:
    """The admin key from config.json if the key file still knows it, else a new one."""
    keys = auth.KeyStore(localenv.keys_path())
    if config.api_key and keys.lookup(config.api_key) is not None:
        return config.api_key
    return auth.add_key(localenv.keys_path(), "admin", auth.Role.ADMIN)


def _plan(config: localenv.LocalConfig, names: list[str], free_ports: bool) -> dict[str, str]:
    """Where each service listens: a running one keeps its address; the others get theirs now,
    all before any starts, so each service is told where every other one is."""
    out = {}
    for name in names + [entry for n, (_, entry) in EXTRA_HTTP.items() if n in names]:
        address = config.services.get(name)
        owner = next((n for n, (_, entry) in EXTRA_HTTP.items() if entry == name), name)
        if address and _alive(_read_pid(owner)):
            out[name] = address
            continue
        port = localenv.free_port() if free_ports else localenv.DEFAULT_PORTS[name]
        if not _port_free(port):
            raise RuntimeError(f"port {port} for {name} is taken by another program; stop it or use `llmops up --free-ports`")
        out[name] = f"127.0.0.1:{port}"
    return out


def up(services: list[str] | None = None, *, free_ports: bool = False, echo=print) -> localenv.LocalConfig:
    """Start what is not running, wait until each reports SERVING, write config.json."""
    home = localenv.home()
    (home / "logs").mkdir(parents=True, exist_ok=True)
    _run_dir().mkdir(parents=True, exist_ok=True)
    config = localenv.LocalConfig.load()
    config.api_key = ensure_admin_key(config)
    names = services or SERVICES
    plan = _plan(config, names, free_ports)
    for name in names:
        pid = _read_pid(name)
        address = plan[name]
        if _alive(pid) and service_health(name, address) == "SERVING":
            echo(f"{name:<11} already running on {address} (pid {pid})")
            continue
        port = int(address.rsplit(":", 1)[1])
        prefix = f"LLMOPS_{name.upper()}"
        env = {**os.environ, **cpu.torch_thread_env(),  # torch processes wait passively: see llmops.core.cpu
               "LLMOPS_HOME": str(home), f"{prefix}_HOST": "127.0.0.1", f"{prefix}_PORT": str(port),
               f"{prefix}_KEYS_FILE": str(localenv.keys_path()),
               # where every service listens (a service calls those it needs)
               **{f"LLMOPS_{s.upper()}_ADDRESS": a for s, a in {**config.services, **plan}.items()}}
        if free_ports:  # metrics default to the gRPC port + 1000, which a free port may not have
            env[f"{prefix}_METRICS_PORT"] = "0"
        if name in EXTRA_HTTP:
            setting, entry = EXTRA_HTTP[name]
            env[setting] = plan[entry].rsplit(":", 1)[1]
        if name in SERVICE_KEYS:
            role, grants = SERVICE_KEYS[name]
            env[f"{prefix}_API_KEY"] = auth.add_key(localenv.keys_path(), f"service-{name}", role, grants=grants)
        log = open(home / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", f"services.{name}"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # outlives this command
        _pid_file(name).write_text(str(proc.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while (status := service_health(name, address)) != "SERVING":
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with code {proc.returncode}; see {home / 'logs' / (name + '.log')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not healthy after {START_TIMEOUT_S:.0f} s (last: {status})")
            time.sleep(0.1)
        config.services[name] = address
        extra = f", HTTP on {plan[EXTRA_HTTP[name][1]]}" if name in EXTRA_HTTP else ""
        if name in EXTRA_HTTP:
            config.services[EXTRA_HTTP[name][1]] = plan[EXTRA_HTTP[name][1]]
        config.save()
        echo(f"{name:<11} serving on {address}{extra} (pid {proc.pid})")
    config.save()
    return config


def down(echo=print) -> None:
    """SIGTERM every service at once (each stops gracefully: in-flight calls finish, outboxes and
    usage are flushed to their own stores), then SIGKILL what is still there after the timeout.
    Stopping them together takes as long as the slowest one, not the sum."""
    running = {}
    for name in reversed(SERVICES):
        pid = _read_pid(name)
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
            running[name] = pid
        else:
            _pid_file(name).unlink(missing_ok=True)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while running and time.monotonic() < deadline:
        for name, pid in list(running.items()):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not _alive(pid):
                echo(f"{name:<11} stopped")
                _pid_file(name).unlink(missing_ok=True)
                del running[name]
        time.sleep(0.05)
    for name, pid in running.items():
        os.kill(pid, signal.SIGKILL)
        echo(f"{name:<11} killed (did not stop within {STOP_TIMEOUT_S:.0f} s)")
        _pid_file(name).unlink(missing_ok=True)


def status() -> list[ServiceState]:
    config = localenv.LocalConfig.load()
    out = []
    for name in SERVICES:
        pid = _read_pid(name)
        address = config.services.get(name, "")
        state = service_health(name, address) if address and _alive(pid) else "STOPPED"
        out.append(ServiceState(name, address, pid if _alive(pid) else None, state))
    return out
