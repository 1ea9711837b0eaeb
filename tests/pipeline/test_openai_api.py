"""The OpenAI-compatible HTTP API, driven by the official `openai` package unchanged: pipelines
and routes as models, streaming as server-sent events, keys and errors as OpenAI clients expect
them, and the trace id in a header."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = pytest.mark.slow  # the whole stack

QUESTION = "Who may move the production alias of a model?"


@pytest.fixture
def oai(rag):
    client = openai.OpenAI(base_url=f"http://{rag.http_address}/v1", api_key=rag.keys["reader"], max_retries=0)
    yield client
    client.close()


def test_chat_completion_from_a_pipeline_with_citations_and_trace(rag, oai):
    raw = oai.chat.completions.with_raw_response.create(model="kb-qa@production",
                                                        messages=[{"role": "user", "content": QUESTION}])
    out = raw.parse()
    trace_id = raw.headers["x-trace-id"]
    assert len(trace_id) == 32 and raw.headers["x-request-id"]
    assert out.object == "chat.completion" and out.model == "kb-qa@production"
    assert out.choices[0].message.role == "assistant" and out.choices[0].message.content
    assert out.choices[0].finish_reason in ("stop", "length")
    assert out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    extra = out.model_extra["llmops"]
    assert extra["trace_id"] == trace_id and extra["request_id"] == raw.headers["x-request-id"]
    assert extra["citations"][0]["document_id"] == "approvals.md"
    assert extra["versions"]["model"].startswith("models/demo/versions/")
    # the same answer as over gRPC (seeded), and the HTTP request is the root of its trace
    grpc_out = rag.client().pipeline.run("kb-qa@production", QUESTION)
    assert out.choices[0].message.content == grpc_out.answer
    spans = rag.spans(trace_id, want_services=6)
    assert {s.service for s in spans} >= {"llmops-pipeline", "llmops-modelserver", "llmops-retrieval"}
    assert any(s.name == "POST /v1/chat/completions" and s.attributes.get("http.response.status_code") == 200
               for s in spans)


def test_streaming_chat_completion(rag, oai):
    chunks = list(oai.chat.completions.create(model="kb-qa@production", stream=True,
                                              stream_options={"include_usage": True},
                                              messages=[{"role": "user", "content": QUESTION}]))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].model_extra["llmops"]["citations"]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish in (["stop"], ["length"])
    assert chunks[-1].usage.completion_tokens > 0 and not chunks[-1].choices
    assert text == rag.client().pipeline.run("kb-qa@production", QUESTION).answer


def test_a_route_as_model_and_the_models_list(rag, oai):
    out = oai.chat.completions.create(model="ext", messages=[{"role": "system", "content": "be brief"},
                                                             {"role": "user", "content": "hello there"}],
                                      max_tokens=8, temperature=0.3)
    assert out.choices[0].message.content == "echo: hello there"
    assert "llmops" not in (out.model_extra or {})
    sent = rag.fake.requests[-1]["body"]
    assert sent["messages"][0] == {"role": "system", "content": "be brief"} and sent["temperature"] == pytest.approx(0.3)
    streamed = "".join(c.choices[0].delta.content or "" for c in oai.chat.completions.create(
        model="ext", stream=True, messages=[{"role": "user", "content": "hello there"}]) if c.choices)
    assert streamed == "echo: hello there"
    ids = {m.id for m in oai.models.list()}
    assert {"kb-qa@production", "ext-qa@production", "demo", "ext"} <= ids


def test_errors_as_openai_clients_expect_them(rag, oai):
    bad = openai.OpenAI(base_url=f"http://{rag.http_address}/v1", api_key="llm_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="kb-qa@production", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    bad.close()
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="nope@production", messages=[{"role": "user", "content": QUESTION}])
    assert "nope" in info.value.message
    with pytest.raises(openai.NotFoundError):
        oai.chat.completions.create(model="no-such-route", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="kb-qa@production", messages=[{"role": "user", "content": " "}])
    assert "question is empty" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="kb-qa@production", messages=[{"role": "system", "content": "x"}])
    assert info.value.body["param"] == "messages" and "user's question" in info.value.message
    with pytest.raises(openai.BadRequestError):  # streamed: the status still comes before the stream
        list(oai.chat.completions.create(model="kb-qa@production", stream=True, messages=[]))
    resp = httpx.post(f"http://{rag.http_address}/v1/chat/completions", content=b"{not json",
                      headers={"authorization": f"Bearer {rag.keys['reader']}"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    assert "x-trace-id" in resp.headers
