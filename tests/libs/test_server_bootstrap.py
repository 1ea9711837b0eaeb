"""The shared server bootstrap and interceptors, on a small test service built from the
generated health stubs' cousin: a generic handler, so no test-only proto is needed."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from llmops.core import auth, channels
from llmops.core.errors import NotFound, ResourceExhausted
from llmops.core.server import ServerConfig, ServiceBinding, create_server
from llmops.core.status import details_of
from llmops.testing.services import ServerThread

SERVICE = "test.v1.Probe"


def _identity(b: bytes) -> bytes:
    return b


class ProbeServicer:
    """Behaviour chosen by the request body: ok, notfound, limit, boom, slow:<s>, whoami."""

    async def Call(self, request: bytes, context) -> bytes:
        cmd = request.decode()
        if cmd == "notfound":
            raise NotFound("thing 'x' does not exist")
        if cmd == "limit":
            raise ResourceExhausted("too many requests; retry later", retry_after_s=1.5)
        if cmd == "boom":
            raise RuntimeError("secret internals at /srv/db password=hunter2")
        if cmd.startswith("slow:"):
            await asyncio.sleep(float(cmd[5:]))
        if cmd == "whoami":
            return auth.caller().name.encode()
        return b"ok"

    async def Unlisted(self, request: bytes, context) -> bytes:
        return b"should never run"

    async def Stream(self, request: bytes, context):
        for i in range(3):
            yield str(i).encode()
        raise NotFound("stream ended badly")


def add_probe(servicer: ProbeServicer, server) -> None:
    handlers = {
        "Call": grpc.unary_unary_rpc_method_handler(servicer.Call, _identity, _identity),
        "Unlisted": grpc.unary_unary_rpc_method_handler(servicer.Unlisted, _identity, _identity),
        "Stream": grpc.unary_stream_rpc_method_handler(servicer.Stream, _identity, _identity),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


POLICY = auth.Policy.for_service(SERVICE, {"Call": auth.Role.READER, "Stream": auth.Role.READER})


@pytest.fixture
def probe(key_store, spans):
    provider, exporter = spans

    async def factory(config, keys):
        binding = ServiceBinding(SERVICE, add_probe, ProbeServicer(), POLICY)
        return await create_server([binding], config, keys=keys, tracer_provider=provider)

    thread = ServerThread(factory, key_store, ServerConfig(port=0, default_timeout_s=0.5, grace_period_s=5)).start()
    yield thread
    thread.stop()


def call(address: str, key: str | None, body: str, timeout: float | None = None, method: str = "Call"):
    with channels.sync_channel(address, key) as ch:
        fn = ch.unary_unary(f"/{SERVICE}/{method}", request_serializer=_identity, response_deserializer=_identity)
        return fn.with_call(body.encode(), timeout=timeout)


def status(address, key, body, **kw) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(address, key, body, **kw)
    return info.value


def test_domain_errors_map_to_their_codes(probe, keys):
    err = status(probe.address, keys["reader"], "notfound")
    assert err.code() is grpc.StatusCode.NOT_FOUND and err.details() == "thing 'x' does not exist"
    err = status(probe.address, keys["reader"], "limit")
    assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    details = details_of(err)
    assert details.retry_after_s == 1.5 and details.reason == "RESOURCE_EXHAUSTED" and details.domain == "llmops"


def test_unexpected_errors_are_internal_without_internals_and_logged_with_trace_id(probe, keys, caplog):
    caplog.set_level(logging.ERROR)
    err = status(probe.address, keys["reader"], "boom")
    assert err.code() is grpc.StatusCode.INTERNAL
    assert "hunter2" not in err.details() and "/srv" not in err.details() and "Traceback" not in err.details()
    trace_id = dict(err.trailing_metadata())["x-trace-id"]
    assert trace_id in err.details()
    logged = [r for r in caplog.records if trace_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None  # the traceback stays in the server log


def test_auth_is_deny_by_default_and_health_is_open(probe, keys):
    assert status(probe.address, None, "ok").code() is grpc.StatusCode.UNAUTHENTICATED
    assert status(probe.address, "llm_wrong", "ok").code() is grpc.StatusCode.UNAUTHENTICATED
    err = status(probe.address, keys["admin"], "ok", method="Unlisted")
    assert err.code() is grpc.StatusCode.PERMISSION_DENIED and "policy" in err.details()
    resp, _ = call(probe.address, keys["reviewer"], "whoami")
    assert resp == b"reviewer"
    with grpc.insecure_channel(probe.address) as ch:
        assert health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
            health_pb2.HealthCheckResponse.SERVING


def test_calls_without_deadline_get_the_default_one(probe, keys):
    with grpc.insecure_channel(probe.address) as ch:  # a bare channel: no client-side deadline
        fn = ch.unary_unary(f"/{SERVICE}/Call", request_serializer=_identity, response_deserializer=_identity)
        md = [("authorization", f"Bearer {keys['reader']}")]
        with pytest.raises(grpc.RpcError) as info:
            fn(b"slow:2", metadata=md)
        assert info.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED and "0.5 s" in info.value.details()
        assert fn(b"slow:0.1", metadata=md) == b"ok"


def test_client_deadline_is_honoured(probe, keys):
    start = time.monotonic()
    assert status(probe.address, keys["reader"], "slow:0.4", timeout=0.1).code() is grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - start < 0.4


def test_streaming_errors_are_mapped_after_items(probe, keys):
    with channels.sync_channel(probe.address, keys["reader"]) as ch:
        fn = ch.unary_stream(f"/{SERVICE}/Stream", request_serializer=_identity, response_deserializer=_identity)
        got = []
        with pytest.raises(grpc.RpcError) as info:
            for item in fn(b""):
                got.append(item)
    assert got == [b"0", b"1", b"2"] and info.value.code() is grpc.StatusCode.NOT_FOUND


def test_trace_context_is_continued_and_returned(probe, keys, spans):
    _, exporter = spans
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with grpc.insecure_channel(probe.address) as ch:
        fn = ch.unary_unary(f"/{SERVICE}/Call", request_serializer=_identity, response_deserializer=_identity)
        _, c = fn.with_call(b"ok", metadata=[("authorization", f"Bearer {keys['reader']}"),
                                             ("traceparent", f"00-{trace_id}-00f067aa0ba902b7-01")])
    assert dict(c.trailing_metadata())["x-trace-id"] == trace_id
    deadline = time.monotonic() + 3
    while not exporter.get_finished_spans() and time.monotonic() < deadline:
        time.sleep(0.02)
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == "00f067aa0ba902b7"


def test_graceful_stop_finishes_in_flight_calls_and_reports_not_serving(probe, keys):
    results: list = []

    def slow_call():
        try:
            results.append(call(probe.address, keys["reader"], "slow:0.4", timeout=5)[0])
        except grpc.RpcError as err:
            results.append(err.code())

    import threading

    t = threading.Thread(target=slow_call)
    t.start()
    time.sleep(0.15)
    stopping = asyncio.run_coroutine_threadsafe(probe.server.stop(5), probe.loop)
    time.sleep(0.05)
    with grpc.insecure_channel(probe.address) as ch:
        try:
            resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=1)
            assert resp.status == health_pb2.HealthCheckResponse.NOT_SERVING
        except grpc.RpcError as err:  # already refusing new calls is also a correct answer
            assert err.code() is grpc.StatusCode.UNAVAILABLE
    stopping.result(10)
    t.join(5)
    assert results == [b"ok"]
    probe.server = None  # already stopped


def test_client_retries_unavailable_only(key_store, keys):
    attempts = {"unavailable": 0, "invalid": 0}

    class Flaky:
        async def Call(self, request: bytes, context) -> bytes:
            kind = request.decode()
            attempts[kind] += 1
            if kind == "unavailable" and attempts[kind] < 3:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
            if kind == "invalid":
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad")
            return b"ok"

        Unlisted = ProbeServicer.Unlisted
        Stream = ProbeServicer.Stream

    async def factory(config, keys_):
        return await create_server([ServiceBinding(SERVICE, add_probe, Flaky(), POLICY)], config, keys=keys_)

    thread = ServerThread(factory, key_store).start()
    try:
        assert call(thread.address, keys["reader"], "unavailable")[0] == b"ok"
        assert attempts["unavailable"] == 3
        assert status(thread.address, keys["reader"], "invalid").code() is grpc.StatusCode.INVALID_ARGUMENT
        assert attempts["invalid"] == 1
    finally:
        thread.stop()


def test_message_size_limit_from_config(key_store, keys):
    async def factory(config, keys_):
        return await create_server([ServiceBinding(SERVICE, add_probe, ProbeServicer(), POLICY)], config, keys=keys_)

    thread = ServerThread(factory, key_store, ServerConfig(port=0, max_message_bytes=1024)).start()
    try:
        err = status(thread.address, keys["reader"], "x" * 4096)
        assert err.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        thread.stop()
