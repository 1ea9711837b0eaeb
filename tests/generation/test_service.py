"""The generation gateway end to end: a real model server process running the demo model, an
OpenAI-compatible provider on loopback, routes with splits, fallback, limits and usage."""

from __future__ import annotations

import collections
import logging
import threading
import time

import grpc
import httpx
import pytest

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.client import ResourceExhaustedError
from llmops.client.generation import provider_target, registry_target
from llmops.core import status
from llmops.testing.services import code_of, wait_until
from tests.generation.conftest import CANARY, KEY_VAR, start_model_server

Q = [("user", "What does the registry keep?")]


def test_generate_and_stream_the_demo_model_with_usage(gen):
    g = gen.admin().generation
    g.create_route("chat", [registry_target("demo@production")])
    unary = g.generate("chat", Q, max_tokens=12)
    assert unary.served_by == "registry:models/demo/versions/1"
    assert unary.usage.input_tokens > 5 and 1 <= unary.usage.output_tokens <= 12
    assert unary.usage.time_to_first_token.ToNanoseconds() > 0
    assert unary.usage.total_time.ToNanoseconds() >= unary.usage.time_to_first_token.ToNanoseconds()
    parts = list(g.stream("chat", Q, max_tokens=12))
    assert parts[0].served_by == unary.served_by
    last = parts[-1]
    # greedy decoding: the stream is the same answer, counted the same way
    assert "".join(p.delta for p in parts) == unary.text
    assert (last.usage.input_tokens, last.usage.output_tokens) == (unary.usage.input_tokens, unary.usage.output_tokens)
    assert last.finish_reason == unary.finish_reason
    counted = g.count_tokens("chat", ["the registry keeps models", ""])
    assert counted.context_window == 512 and counted.counts[0] > 0 and counted.counts[1] == 0


def test_provider_route_unary_and_stream(gen):
    g = gen.admin().generation
    g.create_route("external", [provider_target(gen.fake.base_url, "gpt-test", f"env:{KEY_VAR}")])
    r = g.generate("external", [("user", "hello provider")], max_tokens=8)
    assert (r.text, r.served_by) == ("echo: hello provider", "provider:gpt-test")
    assert (r.usage.input_tokens, r.usage.output_tokens) == (2, 3)
    sent = gen.fake.requests[-1]
    assert sent["headers"]["authorization"] == f"Bearer {CANARY}" and sent["body"]["max_tokens"] == 8
    parts = list(g.stream("external", [("user", "hello provider")], max_tokens=8))
    assert "".join(p.delta for p in parts) == "echo: hello provider"
    assert parts[-1].usage.output_tokens == 3 and parts[0].served_by == "provider:gpt-test"


def test_a_faithful_gateway_tools_unset_fields_and_provider_options(gen):
    g = gen.admin().generation
    g.create_route("faithful", [provider_target(gen.fake.base_url, "gpt-test", f"env:{KEY_VAR}")])
    g.generate("faithful", [("user", "hi")])
    assert not {"temperature", "top_p", "seed", "stop", "max_tokens", "n", "tools"} & set(gen.fake.requests[-1]["body"])
    weather = pb.Tool(type="function", function=pb.FunctionDefinition(name="get_weather"))
    weather.function.parameters.update({"type": "object", "properties": {"city": {"type": "string"}}})
    request = g.request("faithful", [("user", "Paris")], temperature=0.25)
    request.tools.append(weather)
    request.tool_choice.mode = "required"
    request.provider_options.update({"parallel_tool_calls": False})
    out = g.stub.Generate(request)
    call = out.choices[0].tool_calls[0]
    assert out.finish_reason == pb.FINISH_REASON_TOOL_CALLS and call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Paris"}'
    body = gen.fake.requests[-1]["body"]
    assert body["temperature"] == 0.25 and body["tool_choice"] == "required" and body["parallel_tool_calls"] is False
    stream_request = pb.StreamGenerateRequest()
    stream_request.CopyFrom(pb.StreamGenerateRequest.FromString(request.SerializeToString()))
    parts = list(g.stub.StreamGenerate(stream_request))
    fragments = [c for p in parts for c in p.tool_calls]
    assert fragments[0].name == "get_weather" and "".join(f.arguments for f in fragments) == call.function.arguments
    assert parts[-1].finish_reason == pb.FINISH_REASON_TOOL_CALLS
    # a provider option outside the allow-list, and tools to a route of registry models only
    request.provider_options.update({"frobnicate": 1})
    code, msg = code_of(g.stub.Generate, request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "frobnicate" in msg
    g.create_route("models-only", [registry_target("demo@production")])
    request = g.request("models-only", [("user", "Paris")])
    request.tools.append(weather)
    with pytest.raises(grpc.RpcError) as info:
        g.stub.Generate(request)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details_of(info.value).field_violations[0].field == "tools"


def test_model_server_choices_and_log_probabilities(gen):
    g = gen.admin().generation
    g.create_route("choices", [registry_target("demo@production")])
    out = g.generate("choices", Q, max_tokens=5, temperature=1.0, seed=3, n=3, logprobs=True, top_logprobs=2)
    assert [c.index for c in out.choices] == [0, 1, 2] and out.text == out.choices[0].text
    assert len({c.text for c in out.choices}) > 1  # seeded per choice: different, yet reproducible
    assert all(c.logprobs and all(t.logprob <= 0 and len(t.top_logprobs) == 2 for t in c.logprobs)
               for c in out.choices)
    again = g.generate("choices", Q, max_tokens=5, temperature=1.0, seed=3, n=3)
    assert [c.text for c in again.choices] == [c.text for c in out.choices]
    assert out.usage.output_tokens == sum(1 for c in out.choices for _ in c.logprobs)
    parts = list(g.stream("choices", Q, max_tokens=5, temperature=1.0, seed=3, n=3))
    assert ["".join(p.delta for p in parts if p.index == i) for i in range(3)] == [c.text for c in out.choices]
    assert sorted(p.index for p in parts if p.finish_reason) == [0, 1, 2] and parts[-1].HasField("usage")


def test_weighted_split_between_two_versions(gen):
    g = gen.admin().generation
    g.create_route("canary", [registry_target("demo@a", 80), registry_target("demo@b", 20)])
    served = collections.Counter(g.generate("canary", prompt="x", max_tokens=1).served_by for _ in range(200))
    a, b = served["registry:models/demo/versions/1"], served["registry:models/demo/versions/2"]
    assert a + b == 200
    assert 140 <= a <= 180, served  # 80 % of 200, within 3.5 standard deviations


def test_fallback_when_the_model_server_stops_and_unavailable_without_one(gen, tmp_path):
    server = start_model_server(tmp_path, gen.registry.address, gen.keys["reader"], name="ms-fallback")
    thread = gen.start_generation(server.address)
    try:
        from llmops.client import Client

        with Client({"generation": thread.address}, gen.keys["admin"]) as c:
            g = c.generation
            g.create_route("with-fallback", [registry_target("demo@production"),
                                             provider_target(gen.fake.base_url, "backup", f"env:{KEY_VAR}", weight=0)])
            g.create_route("no-fallback", [registry_target("demo@production")])
            assert g.generate("with-fallback", Q, max_tokens=2).served_by.startswith("registry:")
            server.terminate()
            assert g.generate("with-fallback", Q, max_tokens=2).served_by == "provider:backup"
            streamed = list(g.stream("with-fallback", Q, max_tokens=4))
            assert streamed[0].served_by == "provider:backup"
            code, message = code_of(g.generate, "no-fallback", Q, max_tokens=2)
            assert code is grpc.StatusCode.UNAVAILABLE and "model server" in message
    finally:
        thread.stop()
        if server.proc.poll() is None:
            server.terminate()


def test_moving_the_alias_under_load_fails_no_request(gen):
    admin = gen.admin()
    admin.registry.set_alias("demo", "live", 1)
    admin.generation.create_route("live", [registry_target("demo@live")])
    reader = gen.clients["reader"].generation
    failures, served, stop = [], [], threading.Event()

    def client(streaming: bool) -> None:
        while not stop.is_set():
            try:
                if streaming:
                    parts = list(reader.stream("live", Q, max_tokens=6))
                    served.append(parts[0].served_by)
                else:
                    served.append(reader.generate("live", Q, max_tokens=6).served_by)
            except Exception as exc:  # noqa: BLE001 - every failure is what this test counts
                failures.append(exc)

    workers = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for w in workers:
        w.start()
    wait_until(lambda: len(served) >= 16, timeout=60, what="requests served by version 1 under load")
    admin.registry.set_alias("demo", "live", 2)
    wait_until(lambda: "registry:models/demo/versions/2" in served[-5:], timeout=60, what="version 2 serving")
    moved = len(served)
    wait_until(lambda: len(served) >= moved + 4, timeout=60, what="more requests after the move")
    stop.set()
    for w in workers:
        w.join(30)
    assert not failures, failures[:3]
    assert served[0] == "registry:models/demo/versions/1"
    assert served[-1] == "registry:models/demo/versions/2"
    assert len(served) > 20


def test_bad_input_gets_clear_codes(gen):
    admin = gen.admin().generation
    admin.create_route("limited", [registry_target("demo@production")], max_output_tokens=32)
    assert code_of(admin.generate, "nope", Q)[0] is grpc.StatusCode.NOT_FOUND
    code, msg = code_of(admin.generate, "limited", Q, max_tokens=100)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "100" in msg and "32" in msg
    code, msg = code_of(admin.generate, "limited", prompt="word " * 600, max_tokens=10)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "512" in msg and "context window" in msg
    admin.create_route("roomy", [registry_target("demo@production")])
    code, msg = code_of(admin.generate, "roomy", prompt="word " * 100, max_tokens=500)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "500" in msg and "512" in msg
    assert code_of(admin.generate, "roomy", Q, prompt="both")[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.generate, "roomy", Q, temperature=3.0)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.generate, "roomy", [("robot", "hi")])[0] is grpc.StatusCode.INVALID_ARGUMENT
    # routes
    assert code_of(admin.create_route, "roomy", [registry_target("demo@production")])[0] is grpc.StatusCode.ALREADY_EXISTS
    assert code_of(admin.create_route, "empty", [])[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(admin.create_route, "w0", [registry_target("demo@production", 0)])[0] is grpc.StatusCode.INVALID_ARGUMENT
    code, msg = code_of(admin.create_route, "raw-key", [provider_target(gen.fake.base_url, "m", CANARY)])
    assert code is grpc.StatusCode.INVALID_ARGUMENT and CANARY not in msg
    assert code_of(admin.create_route, "bad-url", [provider_target("ftp://x", "m")])[0] is grpc.StatusCode.INVALID_ARGUMENT
    # no side channels: internal hosts (unless the operator lists them) and variables outside the prefix
    for url, why in (("http://169.254.169.254/latest", "link-local"), ("http://metadata.google.internal/v1", "metadata"),
                     ("http://localhost:8080/v1", "loopback"), ("http://[::1]:9/v1", "loopback"),
                     ("http://127.0.0.2:9/v1", "loopback"), ("http://0.0.0.0:9/v1", "routable")):
        code, msg = code_of(admin.create_route, "internal", [provider_target(url, "m")])
        assert code is grpc.StatusCode.INVALID_ARGUMENT and why in msg and "ALLOWED_HOSTS" in msg, url
    for ref in ("env:HOME", "env:AWS_SECRET_ACCESS_KEY", "env:LLMOPS_GENERATION_API_KEY"):
        code, msg = code_of(admin.create_route, "env-leak", [provider_target(gen.fake.base_url, "m", ref)])
        assert code is grpc.StatusCode.INVALID_ARGUMENT and "LLMOPS_PROVIDER_" in msg, ref
    editor = gen.clients["editor"].generation
    assert code_of(editor.create_route, "mine", [registry_target("demo@production")])[0] is grpc.StatusCode.PERMISSION_DENIED
    admin.create_route("ghost", [registry_target("ghost@production")])
    assert code_of(admin.generate, "ghost", Q)[0] is grpc.StatusCode.NOT_FOUND
    admin.create_route("unset-key", [provider_target(gen.fake.base_url, "m", "env:LLMOPS_PROVIDER_TEST_NOT_SET")])
    with pytest.raises(grpc.RpcError) as info:  # the gateway's fault, not the caller's: INTERNAL (HTTP 502)
        admin.stub.Generate(admin.request("unset-key", Q))
    assert info.value.code() is grpc.StatusCode.INTERNAL
    assert status.details_of(info.value).reason == "UPSTREAM_CREDENTIAL_MISSING"


def test_provider_429_is_resource_exhausted_with_retry_delay(gen):
    g = gen.admin().generation
    g.create_route("busy-provider", [provider_target(gen.fake.base_url, "gpt-test", f"env:{KEY_VAR}")])
    gen.fake.mode = "rate_limited"
    try:
        with pytest.raises(grpc.RpcError) as info:
            g.stub.Generate(g.request("busy-provider", Q))
        assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert status.details_of(info.value).retry_after_s == 7.0  # google.rpc.RetryInfo
    finally:
        gen.fake.mode = "ok"


def test_a_full_model_server_refuses_with_a_retry_delay_and_a_fallback_takes_the_excess(gen, tmp_path):
    """One row decoding and one waiting fill this model server: the next request is refused at
    once (RESOURCE_EXHAUSTED with the server's own retry estimate), a route with a fallback sends
    it there, and what was admitted still completes."""
    server = start_model_server(tmp_path, gen.registry.address, gen.keys["reader"], name="ms-full",
                                LLMOPS_MODELSERVER_MAX_BATCH="1", LLMOPS_MODELSERVER_MAX_WAITING="0")
    thread = gen.start_generation(server.address)
    try:
        from llmops.client import Client

        with Client({"generation": thread.address}, gen.keys["admin"]) as c:
            g = c.generation
            g.create_route("one-row", [registry_target("demo@production")])
            g.create_route("overflow", [registry_target("demo@production"),
                                        provider_target(gen.fake.base_url, "backup", f"env:{KEY_VAR}", weight=0)])
            running = g.stream("one-row", prompt="The registry", max_tokens=400)
            next(running)
            waiting = {}
            waiter = threading.Thread(target=lambda: waiting.update(r=g.generate("one-row", prompt="A", max_tokens=3)))
            waiter.start()
            wait_until(lambda: httpx.post(f"http://{server.address}/status", json={}).json()["busy"] == 2,
                       what="a second request waiting")
            with pytest.raises(grpc.RpcError) as refused:
                g.stub.Generate(g.request("one-row", Q, max_tokens=2))
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "at capacity" in refused.value.details()
            assert 0.05 <= status.details_of(refused.value).retry_after_s <= 30
            assert g.generate("overflow", Q, max_tokens=2).served_by == "provider:backup"
            running.close()  # the running row ends; the waiting one gets its turn
            waiter.join(30)
            assert waiting["r"].usage.output_tokens <= 3 and waiting["r"].served_by.startswith("registry:")
            models = httpx.post(f"http://{server.address}/status", json={}).json()["models"]
            assert models[0]["refused"] >= 2
    finally:
        thread.stop()
        if server.proc.poll() is None:
            server.terminate()


def test_limits_per_caller_and_a_budget_that_holds_for_streams(gen):
    admin = gen.admin().generation
    admin.create_route("rpm", [provider_target(gen.fake.base_url, "gpt-test", f"env:{KEY_VAR}")], requests_per_minute=3)
    reader, editor = gen.clients["reader"].generation, gen.clients["editor"].generation
    for _ in range(3):
        reader.generate("rpm", Q)
    with pytest.raises(grpc.RpcError) as info:
        reader.stub.Generate(reader.request("rpm", Q))
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert 0 < status.details_of(info.value).retry_after_s <= 60
    with pytest.raises(ResourceExhaustedError) as refused:  # the Python client: one exception per status
        reader.generate("rpm", Q)
    assert 0 < refused.value.retry_after_s <= 60 and len(refused.value.trace_id) == 32
    editor.generate("rpm", Q)  # limits are per caller

    admin.create_route("budget", [registry_target("demo@production")], token_budget=120)
    used, streams = 0, 0
    while True:
        try:
            parts = list(reader.stream("budget", Q, max_tokens=40))
        except Exception as exc:  # noqa: BLE001 - the call the budget refuses
            assert getattr(exc, "code", None) is grpc.StatusCode.RESOURCE_EXHAUSTED, exc
            break
        usage = parts[-1].usage
        used += usage.input_tokens + usage.output_tokens
        streams += 1
        assert streams < 10
    assert streams >= 2 and used <= 120
    [record] = wait_until(lambda: [r for r in reader.get_usage(route="budget") if r.requests == streams],
                          what="the usage batch")  # usage is written in batches
    assert record.input_tokens + record.output_tokens == used and record.requests == streams


def test_usage_is_counted_the_same_for_stream_and_unary_and_private(gen):
    admin = gen.admin().generation
    admin.create_route("metered", [registry_target("demo@production")])
    viewer = gen.clients["approver"].generation
    unary = viewer.generate("metered", Q, max_tokens=5)
    streamed = list(viewer.stream("metered", Q, max_tokens=5))[-1]
    [record] = wait_until(lambda: [r for r in viewer.get_usage(route="metered") if r.requests == 2],
                          what="the usage batch")
    assert record.caller == "approver" and record.requests == 2
    assert record.input_tokens == unary.usage.input_tokens + streamed.usage.input_tokens
    assert record.output_tokens == unary.usage.output_tokens + streamed.usage.output_tokens
    assert code_of(viewer.get_usage, caller="admin")[0] is grpc.StatusCode.PERMISSION_DENIED
    assert [r.caller for r in admin.get_usage(caller="approver", route="metered")] == ["approver"]


def test_cancelling_a_stream_stops_generation_on_the_model_server(gen):
    g = gen.admin().generation
    g.create_route("long", [registry_target("demo@production")])
    stream = g.stream("long", prompt="The registry", max_tokens=400)
    for _ in range(3):
        next(stream)
    cancelled = time.monotonic()
    stream.close()
    while gen.status()["busy"]:
        assert time.monotonic() - cancelled < 5, "generation went on after the client cancelled"
        time.sleep(0.005)
    model = {m["version"]: m for m in gen.status()["models"]}["models/demo/versions/1"]
    # the row was cancelled inside the model server (not finished), long before its 400 tokens;
    # how long the cancel took there is a figure (`last_cancel_ms`), not a test on a shared machine
    assert model["last_cancel_ms"] is not None and 3 <= model["last_cancel_tokens"] < 400, model


def test_credentials_never_leak_and_content_is_not_traced(gen, caplog):
    caplog.set_level(logging.DEBUG)
    gen.exporter.clear()
    g = gen.admin().generation
    route = g.create_route("secretive", [provider_target(gen.fake.base_url, "gpt-test", f"env:{KEY_VAR}")])
    seen = [str(route), str(g.get_route("secretive")), str(g.list_routes())]
    seen.append(str(g.generate("secretive", [("user", "private question")])))
    gen.fake.mode = "leaky_error"  # the provider echoes the key it got in its error
    try:
        for call in (lambda: g.generate("secretive", Q), lambda: list(g.stream("secretive", Q))):
            code, message = code_of(call)
            assert code is grpc.StatusCode.INVALID_ARGUMENT and "[redacted]" in message
            seen.append(message)
    finally:
        gen.fake.mode = "ok"
    spans = gen.exporter.get_finished_spans()
    assert spans
    seen += [str(s.attributes) + str(s.events) + str(s.status.description) for s in spans]
    seen += [r.getMessage() for r in caplog.records]
    seen += [p.read_bytes().decode(errors="replace") for p in gen.home.glob("gen-*.db*")]
    assert not [s for s in seen if CANARY in s]
    assert not [s for s in spans if "private question" in str(s.attributes)]  # content capture is off
    gen_span = next(s for s in spans if s.name.endswith("/Generate") and s.attributes.get("gen_ai.usage.output_tokens"))
    assert gen_span.attributes["gen_ai.request.model"] == "gpt-test"


def test_one_trace_from_the_client_into_the_model_server(gen):
    import sqlite3

    g = gen.admin().generation
    g.create_route("traced", [registry_target("demo@production")])
    gen.exporter.clear()
    tracer = gen.provider.get_tracer("test")
    with tracer.start_as_current_span("client") as span:
        g.generate("traced", Q, max_tokens=3)
        trace_id = format(span.get_span_context().trace_id, "032x")
    gateway = [s for s in gen.exporter.get_finished_spans() if s.name.endswith("/Generate")]
    assert gateway and format(gateway[-1].context.trace_id, "032x") == trace_id
    attrs = gateway[-1].attributes
    assert attrs["gen_ai.request.model"] == "demo@production" and attrs["gen_ai.usage.output_tokens"] == 3
    assert "llmops.time_to_first_token_ms" in attrs
    deadline = time.monotonic() + 10
    rows = []
    while not rows and time.monotonic() < deadline:
        time.sleep(0.3)
        with sqlite3.connect(gen.home / "traces.db") as db:
            rows = db.execute("SELECT name, attributes FROM spans WHERE trace_id = ?", (trace_id,)).fetchall()
    assert rows and rows[0][0] == "modelserver.generate"
    assert '"gen_ai.usage.output_tokens": 3' in rows[0][1]


def test_model_server_serves_prometheus_metrics(gen):
    gen.http.post("/status", json={})
    resp = gen.http.get("/metrics")
    assert resp.status_code == 200 and "bentoml_service_request" in resp.text
