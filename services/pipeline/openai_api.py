"""The OpenAI-compatible HTTP API, so the clients people already use (the `openai` package,
LangChain's ChatOpenAI, LlamaIndex's OpenAILike and OpenAIEmbedding) work unchanged:

- `POST /v1/chat/completions` and `POST /v1/completions` (server-sent events with `stream`);
  `model` names a pipeline bundle (`name@alias` or `name@version`: the last user message is the
  question, earlier turns are history, system and developer messages the caller's instructions)
  or a generation route (a plain name: the request goes to the route as it is, tools included);
- `POST /v1/embeddings` with an index's embedding model (or the packaged model by name);
- `GET /v1/models` and `GET /v1/models/{id}`.

Every request field is honoured, passed through to a provider, or refused with a 400 naming it
(the parameter policy in docs/pipeline.md). The same API keys and roles as over gRPC, as bearer
tokens; each response carries its trace id in `x-trace-id`, and pipeline answers carry
citations, versions and the sampling used in an extra `llmops` field.
"""

from __future__ import annotations

import array
import asyncio
import base64
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
from google.protobuf import struct_pb2
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse

from llmops.api.common.v1 import chat_pb2
from llmops.api.generation.v1 import generation_pb2 as gpb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.api.retrieval.v1 import retrieval_pb2 as tpb
from llmops.core import auth, channels, http
from llmops.core import openai_format as oa
from llmops.core.errors import DeadlineExceeded, DomainError, InvalidArgument, NotFound, Unavailable
from services.pipeline import openai_schema as schema
from services.pipeline.runner import Deadline, Piece, PipelineRunner, Question, new_request_id

log = logging.getLogger(__name__)
MAX_PROMPTS = 16
MAX_EMBED_INPUTS = 2048
MAX_BODY_BYTES = 8 << 20  # 2048 inputs to embed, long conversations with tool schemas
# The role each HTTP endpoint needs (docs/security.md); `/healthz` is open. The role-matrix test
# checks every row over the wire.
HTTP_POLICY = {("POST", "/v1/chat/completions"): auth.Role.READER, ("POST", "/v1/completions"): auth.Role.READER,
               ("POST", "/v1/embeddings"): auth.Role.READER, ("GET", "/v1/models"): auth.Role.READER,
               ("GET", "/v1/models/{model_id:path}"): auth.Role.READER}


def is_pipeline(model: str) -> bool:
    return "@" in model or model.startswith("models/")


def refuse(param: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"{param}: {why}", field=param)


# -- requests --------------------------------------------------------------------------------------

def sampling_of(body: schema.Sampling, max_tokens: int | None) -> chat_pb2.SamplingParams:
    return oa.sampling_from_json({**body.model_dump(include={"temperature", "top_p", "seed", "stop",
                                                             "presence_penalty", "frequency_penalty"}),
                                  "max_tokens": max_tokens})


def provider_options(body: schema.Body, names) -> struct_pb2.Struct | None:
    given = {n: v for n in names if (v := getattr(body, n, None)) is not None}
    if not given:
        return None
    out = struct_pb2.Struct()
    out.update(given)
    return out


def pipeline_question(body: schema.ChatBody | schema.CompletionBody, max_tokens: int | None) -> Question:
    """A chat request to a pipeline: the fields a pipeline cannot honour are refused by name;
    system and developer messages are the caller's instructions, the last user message the
    question, other user and assistant turns the history."""
    for name in ("tools", "tool_choice", "logit_bias", *schema.PROVIDER_ONLY):
        if getattr(body, name, None) is not None:
            raise refuse(name, f"{body.model} is a pipeline; {name} needs a generation route to a provider")
    if (body.n or 1) > 1:
        raise refuse("n", "a pipeline gives one answer per request")
    if getattr(body, "logprobs", None):
        raise refuse("logprobs", "pipelines do not return log probabilities; ask a route")
    fmt = getattr(body, "response_format", None)
    if fmt is not None and fmt.type != "text":
        raise refuse("response_format", "a pipeline answers in text; structured output needs a route to a provider")
    sampling = sampling_of(body, max_tokens)
    if isinstance(body, schema.CompletionBody):
        return Question(body.model, body.prompt if isinstance(body.prompt, str) else body.prompt[0],
                        sampling=sampling)
    instructions, history = [], []
    for i, m in enumerate(body.messages):
        if m.role == "tool" or m.tool_calls:
            raise refuse(f"messages[{i}]", "pipelines take no tool calls; send user and assistant turns")
        if m.role in ("system", "developer"):
            instructions.append(m.text())
        else:
            history.append((m.role, m.text()))
    if not history or history[-1][0] != "user":
        raise refuse("messages", "the last message must be the user's question")
    question = history.pop()[1]
    return Question(body.model, question, history, {}, "\n\n".join(instructions), sampling)


def chat_generate_request(body: schema.ChatBody, max_tokens: int | None) -> gpb.StreamGenerateRequest:
    """A chat request to a route: everything goes to generation, which honours it or refuses it
    per target (a registry model takes no tools)."""
    if body.functions is not None or body.function_call is not None:
        name = "functions" if body.functions is not None else "function_call"
        raise refuse(name, "deprecated by OpenAI and not supported; use tools and tool_choice")
    messages = [oa.message_from_json({**m.model_dump(include={"name", "tool_call_id", "tool_calls"}),
                                      "role": "system" if m.role == "developer" else m.role, "content": m.text()})
                for m in body.messages]
    req = gpb.StreamGenerateRequest(route=body.model, messages=messages, sampling=sampling_of(body, max_tokens),
                                    n=body.n or 0, logprobs=bool(body.logprobs), top_logprobs=body.top_logprobs or 0,
                                    user=body.user or "")
    for t in body.tools or ():
        req.tools.append(oa.parse_into(gpb.Tool(), t.model_dump(exclude_none=True)))
    choice = oa.tool_choice_from_json(body.tool_choice.model_dump() if isinstance(body.tool_choice, schema.Body)
                                      else body.tool_choice)
    if choice is not None:
        req.tool_choice.CopyFrom(choice)
    if body.response_format is not None:
        req.response_format.CopyFrom(oa.parse_into(gpb.ResponseFormat(),
                                                   body.response_format.model_dump(exclude_none=True, by_alias=True)))
    options = provider_options(body, ("logit_bias", *schema.PROVIDER_ONLY))
    if options is not None:
        req.provider_options.CopyFrom(options)
    return req


# -- answers -----------------------------------------------------------------------------------------

@dataclass
class Step:
    """One step of an answer from a pipeline or a route: choice `index` grew by `delta`, tool call
    fragments or log probabilities; `finish` when the choice ended; `usage` on the last step;
    `llmops` (citations, versions, sampling) on a pipeline's first."""

    index: int = 0
    delta: str = ""
    tool_calls: list = field(default_factory=list)
    logprobs: list = field(default_factory=list)
    finish: str = ""
    usage: tuple[int, int] | None = None
    llmops: dict | None = None


def _llmops(piece: Piece, request_id: str, trace_id: str) -> dict:
    v = piece.versions
    return {"request_id": request_id, "trace_id": trace_id,
            "citations": [{"document_id": c.document_id, "chunk_id": c.chunk_id, "score": round(c.score, 6),
                           "marker": c.marker, "text": c.text} for c in piece.citations or []],
            "versions": {} if v is None else {"pipeline": v.pipeline, "prompt": v.prompt, "index": v.index,
                                              "model": v.model},
            "sampling": oa.sampling_to_json(piece.sampling) | {"max_tokens": piece.sampling.max_tokens}
            if piece.sampling is not None else {}}


def _base64_floats(values) -> str:
    """Little-endian float32, as OpenAI's clients decode it (no numpy in this service)."""
    floats = array.array("f", values)
    if sys.byteorder == "big":
        floats.byteswap()
    return base64.b64encode(floats.tobytes()).decode()


@dataclass
class ToolCallPiece:
    """A whole tool call in the shape of a streamed fragment (what `Choice.add` reads)."""

    index: int
    id: str
    name: str
    arguments: str


@dataclass
class Choice:
    """A choice put together from steps (for an answer that is not streamed)."""

    index: int
    text: list[str] = field(default_factory=list)
    calls: dict[int, dict] = field(default_factory=dict)
    logprobs: list = field(default_factory=list)
    finish: str = "stop"

    def add(self, step: Step) -> None:
        self.text.append(step.delta)
        self.logprobs.extend(step.logprobs)
        for c in step.tool_calls:
            call = self.calls.setdefault(c.index, {"id": "", "type": "function", "function": {"name": "",
                                                                                             "arguments": ""}})
            call["id"] = call["id"] or c.id
            call["function"]["name"] = call["function"]["name"] or c.name
            call["function"]["arguments"] += c.arguments
        if step.finish:
            self.finish = step.finish

    def message(self) -> dict:
        text = "".join(self.text)
        out: dict = {"role": "assistant", "content": text or (None if self.calls else ""), "refusal": None}
        if self.calls:
            out["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return out


def usage_json(usage: tuple[int, int] | None) -> dict:
    inp, out = usage or (0, 0)
    return {"prompt_tokens": inp, "completion_tokens": out, "total_tokens": inp + out}


def legacy_logprobs(items) -> dict:
    """Log probabilities in the legacy completions shape."""
    tokens, offsets, at = [], [], 0
    for t in items:
        tokens.append(t.token)
        offsets.append(at)
        at += len(t.token)
    return {"tokens": tokens, "token_logprobs": [t.logprob for t in items],
            "top_logprobs": [{a.token: a.logprob for a in t.top_logprobs} for t in items], "text_offset": offsets}


class OpenAIApi:
    def __init__(self, runner: PipelineRunner, generation_stub, registry_stub, retrieval_stub, keys: auth.KeyStore,
                 spans: http.ServerSpans, timeout_s: float):
        self._runner = runner
        self._generation = generation_stub
        self._registry = registry_stub
        self._retrieval = retrieval_stub
        self._timeout = timeout_s
        edge = http.HttpEdge(keys, spans, HTTP_POLICY)
        self.app = Starlette(routes=[
            edge.route("POST", "/v1/chat/completions", self.chat_completions, body=schema.ChatBody, max_body=MAX_BODY_BYTES),
            edge.route("POST", "/v1/completions", self.completions, body=schema.CompletionBody, max_body=MAX_BODY_BYTES),
            edge.route("POST", "/v1/embeddings", self.embeddings, body=schema.EmbeddingBody, max_body=MAX_BODY_BYTES),
            edge.route("GET", "/v1/models", self.models),
            edge.route("GET", "/v1/models/{model_id:path}", self.model),
            edge.healthz(),
        ], exception_handlers=edge.exception_handlers())

    # -- models --------------------------------------------------------------------------------

    async def _models(self) -> list[dict]:
        created = int(time.time())
        data = [{"id": f"{m.name.removeprefix('models/')}@{alias}", "object": "model",
                 "created": m.create_time.seconds or created, "owned_by": "llmops-pipeline"}
                for m in await self._all(self._registry.ListModels, "registry", "models",
                                         lambda t: rpb.ListModelsRequest(page_size=1000, page_token=t,
                                                                         kind=rpb.MODEL_KIND_PIPELINE))
                for alias in sorted(m.aliases)]
        data += [{"id": r.name.removeprefix("routes/"), "object": "model",
                  "created": r.create_time.seconds or created, "owned_by": "llmops-route"}
                 for r in await self._all(self._generation.ListRoutes, "generation", "routes",
                                          lambda t: gpb.ListRoutesRequest(page_size=1000, page_token=t))]
        return data

    async def models(self, call: http.HttpCall) -> dict:
        return {"object": "list", "data": await self._models()}

    async def model(self, call: http.HttpCall) -> dict:
        wanted = call.request.path_params["model_id"]
        for m in await self._models():
            if m["id"] == wanted:
                return m
        raise NotFound(f"no model {wanted[:200]!r}: name a pipeline `name@alias` or a route (GET /v1/models lists "
                       "them)", reason="MODEL_NOT_FOUND")

    @staticmethod
    async def _all(method, service: str, field_name: str, make_request) -> list:
        out, token = [], ""
        while True:
            try:
                resp = await method(make_request(token))
            except grpc.aio.AioRpcError as exc:
                raise channels.downstream_error(exc, service) from None
            out.extend(getattr(resp, field_name))
            token = resp.next_page_token
            if not token:
                return out

    # -- chat and completions ----------------------------------------------------------------------

    @staticmethod
    def _begin(call: http.HttpCall) -> None:
        request_id = call.request.state.request_id = new_request_id()
        call.rc.span.set_attribute("llmops.request_id", request_id)

    async def chat_completions(self, call: http.HttpCall) -> Response:
        self._begin(call)
        body: schema.ChatBody = call.body
        max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        if is_pipeline(body.model):
            steps = self._pipeline_steps(pipeline_question(body, max_tokens), call)
        else:
            steps = self._route_steps(chat_generate_request(body, max_tokens), body.stream)
        return await self._respond(call, body, steps, "chat.completion", "chatcmpl")

    async def completions(self, call: http.HttpCall) -> Response:
        self._begin(call)
        body: schema.CompletionBody = call.body
        if body.echo:
            raise refuse("echo", "echoing the prompt is not supported")
        if body.suffix:
            raise refuse("suffix", "insertion (suffix) is not supported")
        if body.best_of not in (None, 1, body.n or 1):
            raise refuse("best_of", "best_of must equal n (no server-side ranking)")
        prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
        if len(prompts) > MAX_PROMPTS or (len(prompts) > 1 and body.stream):
            raise refuse("prompt", f"send up to {MAX_PROMPTS} prompts, and stream one at a time")
        if is_pipeline(body.model):
            if len(prompts) > 1:
                raise refuse("prompt", "a pipeline answers one question per request")
            steps = self._pipeline_steps(pipeline_question(body, body.max_tokens), call)
        else:
            n = body.n or 1
            requests = [gpb.StreamGenerateRequest(route=body.model, prompt=p, sampling=sampling_of(body, body.max_tokens),
                                                  n=body.n or 0, logprobs=body.logprobs is not None,
                                                  top_logprobs=body.logprobs or 0, user=body.user or "")
                        for p in prompts]
            options = provider_options(body, ("logit_bias",))
            for r in requests:
                if options is not None:
                    r.provider_options.CopyFrom(options)
            steps = self._merged([self._route_steps(r, body.stream) for r in requests], n)
        return await self._respond(call, body, steps, "text_completion", "cmpl")

    async def _pipeline_steps(self, q: Question, call: http.HttpCall) -> AsyncIterator[Step]:
        request_id = call.request.state.request_id
        self._runner.check(q)
        async for piece in self._runner.answer(q, Deadline(self._timeout), request_id):
            yield Step(delta=piece.delta, finish=piece.finish_reason if piece.last else "",
                       usage=(piece.input_tokens, piece.output_tokens) if piece.last else None,
                       llmops=_llmops(piece, request_id, call.rc.trace_id) if piece.versions is not None else None)

    async def _route_steps(self, request: gpb.StreamGenerateRequest, stream: bool) -> AsyncIterator[Step]:
        """A route: the caller's request goes to generation as it is. An answer the caller does
        not stream is asked for in one piece (unary `Generate`: one provider reply and one gRPC
        message, where streaming would parse and relay every chunk)."""
        if not stream:
            async for step in self._route_unary(request):
                yield step
            return
        call = self._generation.StreamGenerate(request, timeout=self._timeout)
        try:
            async for msg in call:
                yield Step(msg.index, msg.delta, list(msg.tool_calls), list(msg.logprobs),
                           oa.finish_name(msg.finish_reason) if msg.finish_reason else "",
                           (msg.usage.input_tokens, msg.usage.output_tokens) if msg.HasField("usage") else None)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "generation") from None
        finally:
            call.cancel()

    async def _route_unary(self, request: gpb.StreamGenerateRequest) -> AsyncIterator[Step]:
        # the two request messages have the same fields under the same numbers (a contract test holds it)
        unary = gpb.GenerateRequest.FromString(request.SerializeToString())
        try:
            reply = await self._generation.Generate(unary, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "generation") from None
        for c in reply.choices:
            calls = [ToolCallPiece(k, t.id, t.function.name, t.function.arguments) for k, t in enumerate(c.tool_calls)]
            yield Step(c.index, c.text, calls, list(c.logprobs), oa.finish_name(c.finish_reason))
        yield Step(usage=(reply.usage.input_tokens, reply.usage.output_tokens))

    @staticmethod
    async def _merged(streams: list[AsyncIterator[Step]], n: int) -> AsyncIterator[Step]:
        """Several prompts' steps as one answer: prompt p's choice j becomes choice p*n + j, and one
        usage totals them (only the non-streamed legacy API sends several prompts)."""
        if len(streams) == 1:
            async for step in streams[0]:
                yield step
            return
        async def collect(stream: AsyncIterator[Step]) -> list[Step]:
            return [s async for s in stream]

        results = await asyncio.gather(*(collect(s) for s in streams))
        inp = out = 0
        for p, steps in enumerate(results):
            for step in steps:
                if step.usage:
                    inp, out = inp + step.usage[0], out + step.usage[1]
                    step.usage = None
                step.index += p * n
                yield step
        yield Step(usage=(inp, out))

    async def _respond(self, call: http.HttpCall, body, steps: AsyncIterator[Step], kind: str,
                       prefix: str) -> Response:
        rc = call.rc
        rc.span.set_attribute("llmops.model", body.model)
        if body.user:
            rc.span.set_attribute("enduser.pseudo.id", body.user)
        request_id = call.request.state.request_id
        if body.stream:
            return await self._stream(call, body, steps, kind, prefix)
        choices: dict[int, Choice] = {}
        usage, extra = None, None
        try:
            async with asyncio.timeout(self._timeout):
                async for step in steps:
                    choices.setdefault(step.index, Choice(step.index)).add(step)
                    usage = step.usage or usage
                    extra = extra or step.llmops
        except TimeoutError:
            raise DeadlineExceeded(f"the answer took longer than {self._timeout:g} s") from None
        out = {"id": f"{prefix}-{request_id}", "object": kind, "created": int(time.time()), "model": body.model,
               "choices": [self._choice(kind, c) for _, c in sorted(choices.items())], "usage": usage_json(usage)}
        if extra:
            out["llmops"] = extra
        return JSONResponse(out, headers={"x-request-id": request_id})

    @staticmethod
    def _choice(kind: str, c: Choice) -> dict:
        if kind == "text_completion":
            return {"index": c.index, "text": "".join(c.text), "finish_reason": c.finish,
                    "logprobs": legacy_logprobs(c.logprobs) if c.logprobs else None}
        return {"index": c.index, "message": c.message(), "finish_reason": c.finish,
                "logprobs": {"content": oa.logprobs_to_json(c.logprobs), "refusal": None} if c.logprobs else None}

    async def _stream(self, call: http.HttpCall, body, steps: AsyncIterator[Step], kind: str,
                      prefix: str) -> Response:
        """Server-sent events. The first step is awaited before answering, so a bad request or a
        service that is down still gets its HTTP status rather than an error inside a 200 stream."""
        rc = call.rc
        request_id = call.request.state.request_id
        base = {"id": f"{prefix}-{request_id}", "object": f"{kind}.chunk" if kind == "chat.completion" else kind,
                "created": int(time.time()), "model": body.model}
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        try:
            first = await asyncio.wait_for(anext(steps), self._timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {self._timeout:g} s") from None
        except StopAsyncIteration:
            raise Unavailable("the answer ended before it began; retry", service="generation") from None
        started: set[int] = set()

        def chunk(step: Step) -> bytes | None:
            if kind == "text_completion":
                if not (step.delta or step.finish or step.logprobs or step.llmops):
                    return None
                choice = {"index": step.index, "text": step.delta, "finish_reason": step.finish or None,
                          "logprobs": legacy_logprobs(step.logprobs) if step.logprobs else None}
            else:
                delta: dict = {}
                if step.index not in started:
                    started.add(step.index)
                    delta["role"] = "assistant"
                if step.delta or "role" in delta:
                    delta["content"] = step.delta
                if step.tool_calls:
                    delta["tool_calls"] = [_call_delta(c) for c in step.tool_calls]
                if not delta and not step.finish and not step.logprobs:
                    return None
                choice = {"index": step.index, "delta": delta, "finish_reason": step.finish or None,
                          "logprobs": {"content": oa.logprobs_to_json(step.logprobs)} if step.logprobs else None}
            out = {**base, "choices": [choice]}
            if step.llmops:
                out["llmops"] = step.llmops
            return f"data: {json.dumps(out, separators=(',', ':'))}\n\n".encode()

        async def events() -> AsyncIterator[bytes]:
            status, message = 200, ""
            with rc.active():
                try:
                    step, usage = first, None
                    while True:
                        finish, step.finish = step.finish, ""  # the finish goes in a chunk of its own
                        if (data := chunk(step)) is not None:
                            yield data
                        if finish:
                            yield chunk(Step(index=step.index, finish=finish))
                        usage = step.usage or usage
                        if usage is not None:
                            break
                        async with asyncio.timeout(self._timeout):
                            step = await anext(steps)
                    if include_usage:
                        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage_json(usage)})}\n\n".encode()
                    yield b"data: [DONE]\n\n"
                except (TimeoutError, StopAsyncIteration):
                    status, message = 504, "the answer ended without its usage or took too long"
                    yield f"data: {json.dumps(http.error_body(DeadlineExceeded(message)))}\n\n".encode()
                except DomainError as exc:  # headers are sent: the error goes in the stream
                    status, message = exc.http_status, exc.message
                    yield f"data: {json.dumps(http.error_body(exc))}\n\n".encode()
                finally:
                    await steps.aclose()  # a client that went away cancels generation
                    http.ServerSpans.finish(rc.span, status, message)

        call.detach()
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"x-request-id": request_id, "cache-control": "no-cache"})

    # -- embeddings ----------------------------------------------------------------------------------

    async def embeddings(self, call: http.HttpCall) -> dict:
        body: schema.EmbeddingBody = call.body
        texts = [body.input] if isinstance(body.input, str) else body.input
        if len(texts) > MAX_EMBED_INPUTS:
            raise refuse("input", f"send at most {MAX_EMBED_INPUTS} inputs per request")
        for i, t in enumerate(texts):
            if not t:
                raise refuse(f"input[{i}]" if isinstance(body.input, list) else "input", "an input is empty")
        try:
            resp = await self._retrieval.EmbedTexts(tpb.EmbedTextsRequest(model=body.model, texts=texts),
                                                    timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "retrieval") from None
        dim = len(resp.embeddings[0].values) if resp.embeddings else 0
        if body.dimensions is not None and body.dimensions != dim:
            raise refuse("dimensions", f"{resp.embedding_model} makes {dim}-dimensional vectors; it cannot shorten "
                                       "them")
        if body.user:
            call.rc.span.set_attribute("enduser.pseudo.id", body.user)
        b64 = body.encoding_format == "base64"
        data = []
        for i, e in enumerate(resp.embeddings):
            value = _base64_floats(e.values) if b64 else list(e.values)
            data.append({"object": "embedding", "index": i, "embedding": value})
        return {"object": "list", "data": data, "model": body.model,
                "usage": {"prompt_tokens": resp.input_tokens, "total_tokens": resp.input_tokens}}


def _call_delta(c: gpb.ToolCallDelta) -> dict:
    out: dict = {"index": c.index}
    if c.id:
        out["id"] = c.id
        out["type"] = c.type or "function"
    fn = {}
    if c.name:
        fn["name"] = c.name
    fn["arguments"] = c.arguments
    out["function"] = fn
    return out
