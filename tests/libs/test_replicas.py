"""Clients of several replicas (`host:port,host:port`): calls are spread round robin over the
replicas that report SERVING, and a rolling restart (each replica stopped gracefully, then
started again on its port) under a steady loop of calls loses none of them."""

from __future__ import annotations

import functools
import threading
from collections import Counter

from llmops.client import CallError, Client
from llmops.core import auth
from llmops.core.server import ServerConfig
from llmops.testing.services import ServerThread, free_port, make_keys, wait_until
from services.registry.config import RegistryConfig
from services.registry.server import build as build_registry


def _replica(tmp_path, name: str, port: int, keys: auth.KeyStore) -> ServerThread:
    """A registry whose model `m` says which replica answered (its own database)."""
    config = RegistryConfig(database_url=f"sqlite:///{tmp_path / f'{name}.db'}", artifact_root=str(tmp_path / name))
    return ServerThread(functools.partial(build_registry, config=config), keys,
                        ServerConfig(port=port, drain_s=0.3)).start()


def test_calls_spread_over_replicas_and_a_rolling_restart_loses_none(tmp_path):
    keys = make_keys(tmp_path / "keys.json")
    store = auth.KeyStore(tmp_path / "keys.json")
    ports = {"a": free_port(), "b": free_port()}
    replicas = {name: _replica(tmp_path, name, port, store) for name, port in ports.items()}
    for name, r in replicas.items():
        with Client({"registry": r.address}, keys["admin"]) as c:
            c.registry.create_model("m", description=name)
    client = Client({"registry": ",".join(f"localhost:{p}" for p in ports.values())}, keys["reader"])
    answered: Counter = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                answered[client.registry.get_model("m").description] += 1
            except CallError as exc:
                failures.append(f"{exc.code.name}: {exc.message}")

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    try:
        wait_until(lambda: answered["a"] >= 20 and answered["b"] >= 20, what="calls on both replicas")
        for name in ("a", "b"):  # a rolling restart
            replicas[name].stop(grace=5)
            before = answered.copy()
            other = "b" if name == "a" else "a"
            wait_until(lambda o=other, b=before: answered[o] >= b[o] + 20, what=f"{other} serving alone")
            replicas[name] = _replica(tmp_path, name, ports[name], store)
            wait_until(lambda n=name, b=before: answered[n] >= b[n] + 20, what=f"{name} back in rotation")
    finally:
        stop.set()
        worker.join(10)
        client.close()
        for r in replicas.values():
            r.stop()
    assert not failures, failures[:5]
    assert min(answered.values()) >= 60, answered
