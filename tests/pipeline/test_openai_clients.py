"""The clients people already use, unchanged, against the OpenAI-compatible API over real HTTP:
the `openai` package (sync, async, streaming, a tool call round trip with the loopback provider),
LangChain's ChatOpenAI (a system message, streaming, structured output) and LlamaIndex's
OpenAILike (chat and complete) and OpenAIEmbedding. Also the parameter policy: every field
honoured, passed through or refused by name, never dropped."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import openai
import pytest
from pydantic import BaseModel

pytestmark = pytest.mark.slow  # the whole stack

QUESTION = "Who may move the production alias of a model?"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


@pytest.fixture
def oai(rag):
    client = openai.OpenAI(base_url=f"http://{rag.http_address}/v1", api_key=rag.keys["reader"], max_retries=0)
    yield client
    client.close()


def sent(rag) -> dict:
    """The body the loopback provider last received."""
    return rag.fake.requests[-1]["body"]


def bad_request(call) -> openai.BadRequestError:
    with pytest.raises(openai.BadRequestError) as info:
        call()
    assert info.value.body["type"] == "invalid_request_error"
    return info.value


# -- pipelines take what chat clients send ---------------------------------------------------------

def test_a_system_message_adds_to_the_templates_instructions(rag, oai):
    out = oai.chat.completions.create(model="ext-qa@production", messages=[
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": QUESTION}])
    assert out.choices[0].message.content.startswith("echo: ")
    system = sent(rag)["messages"][0]
    assert system["role"] == "system"
    template_part, _, caller_part = system["content"].partition("Instructions from the caller")
    assert template_part.startswith("Answer from the context and cite sources")  # the guard stays first
    assert "approver role" in template_part and caller_part.endswith("Answer in one sentence.")
    assert sent(rag)["messages"][-1] == {"role": "user", "content": QUESTION}


def test_sampling_overrides_a_bundles_within_its_bounds_and_is_reported(rag, oai):
    out = oai.chat.completions.create(model="ext-qa@production", temperature=0.7, top_p=0.9, seed=42, stop=["##"],
                                      max_tokens=50, messages=[{"role": "user", "content": QUESTION}])
    body = sent(rag)
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"], body["max_tokens"]) == (
        0.7, 0.9, 42, ["##"], 50)
    used = out.model_extra["llmops"]["sampling"]
    assert used == {"temperature": 0.7, "top_p": 0.9, "seed": 42, "stop": ["##"], "max_tokens": 50}
    # a bundle that bounds temperature and pins the seed
    rag.bundle("bounded-qa", "ext", {"max_tokens": 100, "temperature": 0.2, "seed": 7,
                                     "bounds": {"temperature": [0, 0.5]}, "pinned": ["seed"]})
    err = bad_request(lambda: oai.chat.completions.create(model="bounded-qa@production", temperature=0.9,
                                                          messages=[{"role": "user", "content": QUESTION}]))
    assert err.param == "temperature" and "[0, 0.5]" in err.message
    err = bad_request(lambda: oai.chat.completions.create(model="bounded-qa@production", seed=8,
                                                          messages=[{"role": "user", "content": QUESTION}]))
    assert err.param == "seed" and "pinned" in err.message
    out = oai.chat.completions.create(model="bounded-qa@production", seed=7, temperature=0.4,
                                      messages=[{"role": "user", "content": QUESTION}])
    assert out.model_extra["llmops"]["sampling"]["temperature"] == 0.4 and sent(rag)["seed"] == 7
    err = bad_request(lambda: oai.chat.completions.create(model="bounded-qa@production", max_tokens=101,
                                                          messages=[{"role": "user", "content": QUESTION}]))
    assert err.param == "max_tokens" and "100" in err.message


def test_fields_a_pipeline_cannot_honour_are_refused_by_name(rag, oai):
    ask = [{"role": "user", "content": QUESTION}]
    cases = {"tools": {"tools": [WEATHER]}, "n": {"n": 2}, "logprobs": {"logprobs": True},
             "response_format": {"response_format": {"type": "json_object"}}, "metadata": {"metadata": {"a": "b"}}}
    for param, extra in cases.items():
        err = bad_request(lambda extra=extra: oai.chat.completions.create(model="kb-qa@production", messages=ask,
                                                                          **extra))
        assert err.param == param, (param, err.message)


# -- the parameter policy ------------------------------------------------------------------------------

def test_out_of_range_and_unknown_fields_are_400_naming_the_field(rag, oai):
    ask = [{"role": "user", "content": "hello"}]
    for extra, param in [({"max_tokens": 2**31}, "max_tokens"), ({"seed": 2**63}, "seed"),
                         ({"temperature": 2.5}, "temperature"), ({"top_p": -0.1}, "top_p"),
                         ({"presence_penalty": 3}, "presence_penalty"), ({"n": 9}, "n"),
                         ({"top_logprobs": 21}, "top_logprobs"), ({"stop": ["a", "b", "c", "d", "e"]}, "stop")]:
        err = bad_request(lambda extra=extra: oai.chat.completions.create(model="ext", messages=ask, **extra))
        assert err.param == param, (extra, err.message)
    err = bad_request(lambda: oai.chat.completions.create(model="ext", messages=ask, extra_body={"frobnicate": 1}))
    assert err.param == "frobnicate" and "unknown field" in err.message
    err = bad_request(lambda: oai.chat.completions.create(model="ext", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]))
    assert err.param.startswith("messages[0].content")
    err = bad_request(lambda: oai.chat.completions.create(model="ext", messages=ask, functions=[WEATHER["function"]]))
    assert err.param == "functions" and "tools" in err.message


def test_a_route_sends_only_what_the_caller_set(rag, oai):
    oai.chat.completions.create(model="ext", messages=[{"role": "user", "content": "hello"}])
    body = sent(rag)
    assert not {"temperature", "top_p", "seed", "stop", "max_tokens", "n", "tools", "user"} & set(body)
    oai.chat.completions.create(model="ext", messages=[{"role": "user", "content": "hello"}], temperature=0.3,
                                presence_penalty=0.5, frequency_penalty=-0.5, user="u-17", logit_bias={"42": -5},
                                parallel_tool_calls=False, tools=[WEATHER], tool_choice="none",
                                service_tier="auto", metadata={"team": "docs"}, store=False)
    body = sent(rag)
    assert body["temperature"] == 0.3 and body["presence_penalty"] == 0.5 and body["frequency_penalty"] == -0.5
    assert body["user"] == "u-17" and body["logit_bias"] == {"42": -5} and body["parallel_tool_calls"] is False
    assert body["tool_choice"] == "none" and body["tools"][0]["function"]["name"] == "get_weather"
    assert body["service_tier"] == "auto" and body["metadata"] == {"team": "docs"} and body["store"] is False


def test_registry_models_honour_n_seed_stop_and_logprobs_and_refuse_tools(rag, oai):
    ask = [{"role": "user", "content": "hello"}]
    out = oai.chat.completions.create(model="demo", messages=ask, n=2, seed=5, temperature=1.0, max_tokens=6,
                                      logprobs=True, top_logprobs=2)
    assert [c.index for c in out.choices] == [0, 1]
    for c in out.choices:
        assert c.logprobs.content and len(c.logprobs.content[0].top_logprobs) == 2
        assert all(t.logprob <= 0 for t in c.logprobs.content)
    again = oai.chat.completions.create(model="demo", messages=ask, n=2, seed=5, temperature=1.0, max_tokens=6)
    assert [c.message.content for c in again.choices] == [c.message.content for c in out.choices]
    assert out.usage.completion_tokens >= 2
    streamed = list(oai.chat.completions.create(model="demo", messages=ask, n=2, seed=5, temperature=1.0,
                                                max_tokens=6, stream=True))
    texts = ["".join(c.choices[0].delta.content or "" for c in streamed if c.choices and c.choices[0].index == i)
             for i in (0, 1)]
    assert texts == [c.message.content for c in out.choices]
    assert sorted(c.choices[0].index for c in streamed if c.choices and c.choices[0].finish_reason) == [0, 1]
    for extra, param in [({"tools": [WEATHER]}, "tools"), ({"response_format": {"type": "json_schema", "json_schema": {
            "name": "x", "schema": {"type": "object"}}}}, "response_format"), ({"logit_bias": {"1": 1}}, "logit_bias")]:
        err = bad_request(lambda extra=extra: oai.chat.completions.create(model="demo", messages=ask, **extra))
        assert err.param == param and "provider" in err.message


# -- tools through a route --------------------------------------------------------------------------

def test_a_tool_call_round_trip_with_the_openai_client(rag, oai):
    messages = [{"role": "user", "content": "Paris"}]
    out = oai.chat.completions.create(model="ext", messages=messages, tools=[WEATHER],
                                      tool_choice={"type": "function", "function": {"name": "get_weather"}})
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [choice.message, {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    final = oai.chat.completions.create(model="ext", messages=messages, tools=[WEATHER])
    assert final.choices[0].message.content == "tool said: sunny, 21 C"
    history = sent(rag)["messages"]
    assert history[1]["tool_calls"][0]["id"] == call.id and history[2]["tool_call_id"] == call.id
    # streamed: the deltas add up to the same call
    chunks = list(oai.chat.completions.create(model="ext", messages=[{"role": "user", "content": "Oslo"}],
                                              tools=[WEATHER], stream=True))
    parts = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert parts[0].id and parts[0].function.name == "get_weather"
    assert json.loads("".join(p.function.arguments or "" for p in parts)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_the_async_client_streams_and_answers(rag):
    async def run():
        client = openai.AsyncOpenAI(base_url=f"http://{rag.http_address}/v1", api_key=rag.keys["reader"],
                                    max_retries=0)
        async with client:
            out = await client.chat.completions.create(model="ext", messages=[{"role": "user", "content": "hi"}])
            stream = await client.chat.completions.create(model="ext-qa@production", stream=True,
                                                          messages=[{"role": "user", "content": QUESTION}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        return out.choices[0].message.content, text

    answer, streamed = asyncio.run(run())
    assert answer == "echo: hi" and streamed.startswith("echo: ")


# -- the other endpoints --------------------------------------------------------------------------------

def test_legacy_completions_for_routes_and_pipelines(rag, oai):
    out = oai.completions.create(model="ext", prompt="hello there", max_tokens=8)
    assert out.object == "text_completion" and out.choices[0].text == "echo: hello there"
    assert sent(rag)["messages"] == [{"role": "user", "content": "hello there"}]
    streamed = "".join(c.choices[0].text for c in oai.completions.create(model="ext", prompt="hello there",
                                                                          stream=True) if c.choices)
    assert streamed == "echo: hello there"
    raw = oai.completions.create(model="demo", prompt="The production alias", max_tokens=4, logprobs=2)
    lp = raw.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) and all(len(t) <= 2 for t in lp.top_logprobs)
    many = oai.completions.create(model="ext", prompt=["one", "two"], n=2)
    assert [(c.index, c.text) for c in many.choices] == [(0, "echo: one"), (1, "echo: one"), (2, "echo: two"),
                                                         (3, "echo: two")]
    piped = oai.completions.create(model="kb-qa@production", prompt=QUESTION)
    assert piped.choices[0].text and piped.model_extra["llmops"]["citations"]
    err = bad_request(lambda: oai.completions.create(model="ext", prompt="x", echo=True))
    assert err.param == "echo"


def test_embeddings_with_an_index_model_in_both_encodings(rag, oai):
    out = oai.embeddings.create(model="kb", input=["production alias", "trace id"])  # the SDK asks for base64
    assert [d.index for d in out.data] == [0, 1] and len(out.data[0].embedding) == 384
    assert out.usage.prompt_tokens > 0 and out.usage.total_tokens == out.usage.prompt_tokens
    plain = oai.embeddings.create(model="all-MiniLM-L6-v2", input="production alias", encoding_format="float")
    assert np.allclose(plain.data[0].embedding, out.data[0].embedding, atol=1e-5)
    assert np.linalg.norm(plain.data[0].embedding) == pytest.approx(1.0, abs=1e-3)
    err = bad_request(lambda: oai.embeddings.create(model="kb", input="x", dimensions=128))
    assert err.param == "dimensions"
    with pytest.raises(openai.NotFoundError):
        oai.embeddings.create(model="no-such-index", input="x")


def test_model_lookup_and_json_errors_for_every_refusal(rag, oai):
    assert oai.models.retrieve("ext").owned_by == "llmops-route"
    assert oai.models.retrieve("kb-qa@production").id == "kb-qa@production"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("nope")
    base, key = f"http://{rag.http_address}", {"authorization": f"Bearer {rag.keys['reader']}"}
    for method, path, kwargs, status in [
            ("GET", "/v1/nothing-here", {}, 404), ("DELETE", "/v1/models", {}, 405),
            ("POST", "/v1/chat/completions", {"content": b"x" * (9 << 20)}, 413),
            ("POST", "/v1/chat/completions", {"content": b"model=ext", "headers": {
                "content-type": "application/x-www-form-urlencoded"}}, 415)]:
        resp = httpx.request(method, base + path, headers={**key, **kwargs.pop("headers", {})}, timeout=30, **kwargs)
        assert resp.status_code == status, (path, resp.text[:200])
        assert resp.json()["error"]["message"] and resp.json()["error"]["type"]


def test_a_provider_refusing_our_credential_is_a_502(rag, oai):
    admin = rag.client("admin").generation
    from llmops.client.generation import provider_target

    admin.create_route("ext-stale", [provider_target(rag.fake.base_url, "echo-1", "env:LLMOPS_PROVIDER_STALE_KEY")])
    admin.create_route("ext-nokey", [provider_target(rag.fake.base_url, "echo-1", "env:LLMOPS_PROVIDER_UNSET_KEY")])
    for route in ("ext-stale", "ext-nokey"):
        with pytest.raises(openai.APIStatusError) as info:
            oai.chat.completions.create(model=route, messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 502 and "credential" in info.value.message
        assert "sk-stale-revoked" not in info.value.message


# -- LangChain and LlamaIndex ---------------------------------------------------------------------------------

class Weather(BaseModel):
    city: str
    celsius: float


def test_langchain_chat_openai(rag):
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="ext-qa@production", base_url=f"http://{rag.http_address}/v1", api_key=rag.keys["reader"],
                     max_retries=0)
    out = llm.invoke([SystemMessage("You are terse."), HumanMessage(QUESTION)])
    assert out.content.startswith("echo: ") and "You are terse." in sent(rag)["messages"][0]["content"]
    assert "".join(c.content for c in llm.stream(QUESTION)).startswith("echo: ")
    route = ChatOpenAI(model="ext", base_url=f"http://{rag.http_address}/v1", api_key=rag.keys["reader"],
                       max_retries=0)
    structured = route.with_structured_output(Weather).invoke("Lyon")
    assert structured == Weather(city="Lyon", celsius=1.5)
    assert sent(rag)["response_format"]["type"] == "json_schema"
    called = route.with_structured_output(Weather, method="function_calling").invoke("Nice")
    assert called == Weather(city="Nice", celsius=1.5) and sent(rag)["tools"][0]["function"]["name"] == "Weather"


def test_llamaindex_openai_like_and_embeddings(rag):
    from llama_index.core.llms import ChatMessage
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai_like import OpenAILike

    base = f"http://{rag.http_address}/v1"
    completer = OpenAILike(model="ext", api_base=base, api_key=rag.keys["reader"], max_retries=0)
    assert completer.complete("hello there").text == "echo: hello there"  # completion mode: /v1/completions
    chat = OpenAILike(model="ext-qa@production", api_base=base, api_key=rag.keys["reader"], is_chat_model=True,
                      max_retries=0)
    answer = chat.chat([ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content=QUESTION)])
    assert answer.message.content.startswith("echo: ")
    embed = OpenAIEmbedding(model_name="kb", api_base=base, api_key=rag.keys["reader"], max_retries=0)
    vectors = embed.get_text_embedding_batch(["production alias", "trace id"])
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert len(embed.get_query_embedding("who approves?")) == 384
