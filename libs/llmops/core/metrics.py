"""Prometheus metrics for every service: requests by status code and latency per RPC (an
interceptor stage), served in the Prometheus text format on a small HTTP port of their own, so a
scraper never competes with gRPC traffic. Services add their own (generation: tokens)."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Histogram, start_http_server

from llmops.core.interceptors import Call, Stage

log = logging.getLogger(__name__)
RPC_REQUESTS = Counter("llmops_rpc_requests_total", "RPCs served, by final status code",
                       ["service", "method", "code"])
RPC_DURATION = Histogram("llmops_rpc_duration_seconds", "Time to serve an RPC (whole stream for streaming RPCs)",
                         ["service", "method"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))


class MetricsStage(Stage):
    def enter(self, call: Call) -> None:
        if not call.open:
            call.state["started"] = time.perf_counter()

    def exit(self, call: Call) -> None:
        started = call.state.get("started")
        if started is None:
            return
        service, _, method = call.method[1:].partition("/")
        service = service.rsplit(".", 1)[-1]
        RPC_REQUESTS.labels(service, method, call.code.name).inc()
        RPC_DURATION.labels(service, method).observe(time.perf_counter() - started)


def serve(host: str, port: int, tls=None) -> int:
    """Serve /metrics on `host:port` (0: a free port) in a background thread, over TLS when the
    service has it (an llmops.core.tls.ServerTLS); returns the port."""
    options = {"certfile": tls.cert_file, "keyfile": tls.key_file} if tls is not None else {}
    server, _ = start_http_server(port, addr=host, **options)
    return server.server_port
