"""The OpenAI-compatible HTTP API: `POST /v1/chat/completions` (with `stream: true` as server-sent
events) and `GET /v1/models`, so the official `openai` package works unchanged.

`model` names a pipeline bundle (`name@alias` or `name@version`: retrieval-grounded answers, the
last user message is the question, earlier turns are history) or a generation route (a plain
name: the messages go to the route as they are). The same API keys and roles as over gRPC, as
bearer tokens; each response carries its trace id in `x-trace-id`, and pipeline answers carry
citations and versions in an extra `llmops` field.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Literal

import grpc
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse

from llmops.api.common.v1 import chat_pb2
from llmops.api.generation.v1 import generation_pb2 as gpb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.core import auth, channels, http
from llmops.core.errors import DeadlineExceeded, DomainError, InvalidArgument, Unavailable
from services.pipeline.runner import FINISH, Deadline, Piece, PipelineRunner, Question, new_request_id

log = logging.getLogger(__name__)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message; content is a string or text parts (only text is supported)."""

    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[TextPart]

    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatBody(BaseModel):
    """The body of `POST /v1/chat/completions`: the fields this API acts on, checked by type.
    Other OpenAI parameters are accepted and ignored."""

    model_config = ConfigDict(strict=True, extra="allow")
    model: str = Field(min_length=1, description="a pipeline `name@alias` or a generation route name")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=0)
    max_completion_tokens: int | None = Field(None, ge=0)
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    n: Literal[1] | None = Field(None, description="one answer per request")


class ChatRequest:
    """A checked chat completion request."""

    def __init__(self, body: ChatBody):
        self.model = body.model
        self.messages = [("system" if m.role == "developer" else m.role, m.text()) for m in body.messages]
        self.stream = bool(body.stream)
        self.include_usage = bool(body.stream_options and body.stream_options.include_usage)
        self.max_tokens = body.max_completion_tokens if body.max_completion_tokens is not None else (body.max_tokens or 0)
        self.temperature = 0.0 if body.temperature is None else body.temperature
        self.top_p = 1.0 if body.top_p is None else body.top_p
        self.seed = body.seed or 0
        self.stop = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])

    @property
    def is_pipeline(self) -> bool:
        return "@" in self.model or self.model.startswith("models/")

    def question(self) -> Question:
        """The last user message is the question; earlier turns are history. The bundle's prompt
        template owns the system message, so a caller's is refused rather than dropped."""
        if any(role == "system" for role, _ in self.messages):
            raise InvalidArgument(f"{self.model} is a pipeline: its prompt template sets the system message; "
                                  "send only user and assistant turns")
        if self.messages[-1][0] != "user":
            raise InvalidArgument("the last message must be the user's question")
        return Question(self.model, self.messages[-1][1], self.messages[:-1], {}, self.max_tokens)

    def generate_request(self) -> gpb.StreamGenerateRequest:
        return gpb.StreamGenerateRequest(route=self.model, messages=[chat_pb2.ChatMessage(role=r, content=c)
                                                               for r, c in self.messages],
                                   sampling=gpb.SamplingParams(max_tokens=self.max_tokens, temperature=self.temperature,
                                                               top_p=self.top_p, stop=self.stop, seed=self.seed))


def _citations(piece: Piece) -> list[dict]:
    return [{"document_id": c.document_id, "chunk_id": c.chunk_id, "score": round(c.score, 6), "marker": c.marker,
             "text": c.text} for c in piece.citations or []]


def _versions(piece: Piece) -> dict:
    v = piece.versions
    return {} if v is None else {"pipeline": v.pipeline, "prompt": v.prompt, "index": v.index, "model": v.model}


# The role each HTTP endpoint needs (docs/security.md); `/healthz` is open. The role-matrix test
# checks every row over the wire.
HTTP_POLICY = {("POST", "/v1/chat/completions"): auth.Role.READER, ("GET", "/v1/models"): auth.Role.READER}


class OpenAIApi:
    def __init__(self, runner: PipelineRunner, generation_stub, registry_stub, keys: auth.KeyStore,
                 spans: http.ServerSpans, timeout_s: float):
        self._runner = runner
        self._generation = generation_stub
        self._registry = registry_stub
        self._timeout = timeout_s
        edge = http.HttpEdge(keys, spans, HTTP_POLICY)
        self.app = Starlette(routes=[
            edge.route("POST", "/v1/chat/completions", self.chat_completions, body=ChatBody),
            edge.route("GET", "/v1/models", self.models),
            edge.healthz(),
        ])

    async def models(self, call: http.HttpCall) -> dict:
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
        return {"object": "list", "data": data}

    @staticmethod
    async def _all(method, service: str, field: str, make_request) -> list:
        out, token = [], ""
        while True:
            try:
                resp = await method(make_request(token))
            except grpc.aio.AioRpcError as exc:
                raise channels.downstream_error(exc, service) from None
            out.extend(getattr(resp, field))
            token = resp.next_page_token
            if not token:
                return out

    async def chat_completions(self, call: http.HttpCall) -> Response:
        chat = ChatRequest(call.body)
        rc = call.rc
        rc.span.set_attribute("llmops.model", chat.model)
        if chat.is_pipeline:
            self._runner.check(chat.question())
        request_id = new_request_id()
        rc.span.set_attribute("llmops.request_id", request_id)
        pieces = self._pieces(chat, request_id)
        if chat.stream:
            return await self._stream(chat, call, pieces, request_id)
        try:
            async with asyncio.timeout(self._timeout):
                result = [p async for p in pieces]
        except TimeoutError:
            raise DeadlineExceeded(f"the answer took longer than {self._timeout:g} s") from None
        last = result[-1]
        body = {
            "id": f"chatcmpl-{request_id}", "object": "chat.completion", "created": int(time.time()),
            "model": chat.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(p.delta for p in result)},
                         "finish_reason": last.finish_reason or "stop", "logprobs": None}],
            "usage": {"prompt_tokens": last.input_tokens, "completion_tokens": last.output_tokens,
                      "total_tokens": last.input_tokens + last.output_tokens},
        }
        if chat.is_pipeline:
            body["llmops"] = {"request_id": request_id, "trace_id": rc.trace_id, "citations": _citations(result[0]),
                              "versions": _versions(result[0])}
        return JSONResponse(body, headers={"x-request-id": request_id})

    def _pieces(self, chat: ChatRequest, request_id: str) -> AsyncIterator[Piece]:
        if chat.is_pipeline:
            return self._runner.answer(chat.question(), Deadline(self._timeout), request_id)
        return self._route_pieces(chat)

    async def _route_pieces(self, chat: ChatRequest) -> AsyncIterator[Piece]:
        """A plain route: the caller's messages go to generation as they are."""
        call = self._generation.StreamGenerate(chat.generate_request(), timeout=self._timeout)
        try:
            async for msg in call:
                if msg.HasField("usage"):
                    yield Piece(msg.delta, input_tokens=msg.usage.input_tokens, output_tokens=msg.usage.output_tokens,
                                finish_reason=FINISH.get(msg.finish_reason, "stop"), last=True)
                    return
                yield Piece(msg.delta)
        except grpc.aio.AioRpcError as exc:
            raise channels.downstream_error(exc, "generation") from None
        finally:
            call.cancel()

    async def _stream(self, chat: ChatRequest, call: http.HttpCall, pieces: AsyncIterator[Piece],
                      request_id: str) -> Response:
        """Server-sent events. The first piece is awaited before answering, so a bad pipeline or a
        service that is down still gets its HTTP status rather than an error inside a 200 stream."""
        created = int(time.time())
        base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                "model": chat.model}
        rc = call.rc
        try:
            first = await asyncio.wait_for(anext(pieces), self._timeout)
        except TimeoutError:
            raise DeadlineExceeded(f"no answer within {self._timeout:g} s") from None
        except StopAsyncIteration:
            raise Unavailable("the answer ended before it began; retry", service="generation") from None

        def event(delta: dict, finish: str | None = None, extra: dict | None = None) -> bytes:
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                     **(extra or {})}
            return f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n".encode()

        async def body() -> AsyncIterator[bytes]:
            status, message = 200, ""
            with rc.active():
                try:
                    extra = None
                    if chat.is_pipeline:
                        extra = {"llmops": {"request_id": request_id, "trace_id": rc.trace_id,
                                            "citations": _citations(first), "versions": _versions(first)}}
                    yield event({"role": "assistant", "content": first.delta}, None, extra)
                    last = first
                    if not first.last:
                        async with asyncio.timeout(self._timeout):
                            async for last in pieces:
                                if last.delta:
                                    yield event({"content": last.delta})
                    yield event({}, last.finish_reason or "stop")
                    if chat.include_usage:
                        usage = {"prompt_tokens": last.input_tokens, "completion_tokens": last.output_tokens,
                                 "total_tokens": last.input_tokens + last.output_tokens}
                        yield f"data: {json.dumps({**base, 'choices': [], 'usage': usage})}\n\n".encode()
                    yield b"data: [DONE]\n\n"
                except TimeoutError:
                    status, message = 504, "deadline exceeded"
                    yield f"data: {json.dumps(http.error_body(DeadlineExceeded(message)))}\n\n".encode()
                except DomainError as exc:  # headers are sent: the error goes in the stream
                    status, message = exc.http_status, exc.message
                    yield f"data: {json.dumps(http.error_body(exc))}\n\n".encode()
                finally:
                    await pieces.aclose()  # a client that went away cancels generation
                    http.ServerSpans.finish(rc.span, status, message)

        call.detach()
        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"x-request-id": request_id, "cache-control": "no-cache"})
