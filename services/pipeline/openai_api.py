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
from typing import Any

import grpc
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from llmops.core import auth, channels, http
from llmops.core.errors import DeadlineExceeded, DomainError, InvalidArgument, Unavailable
from llmops.generation.v1 import generation_pb2 as gpb
from llmops.registry.v1 import registry_pb2 as rpb
from services.pipeline.runner import FINISH, Deadline, Piece, PipelineRunner, Question, new_request_id

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 429: "rate_limit_error"}


def error_body(error: DomainError) -> dict:
    status = http.http_status(error)
    return {"error": {"message": error.message, "type": ERROR_TYPES.get(status, "api_error"), "param": None,
                      "code": error.code.lower()}}


def error_response(error: DomainError, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = dict(headers or {})
    if error.retry_after_s is not None:
        headers["retry-after"] = str(max(1, round(error.retry_after_s)))
        headers["retry-after-ms"] = str(int(error.retry_after_s * 1000))
    return JSONResponse(error_body(error), status_code=http.http_status(error), headers=headers)


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: text only
        out = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidArgument(f"{where}.content[{i}] must be a text part; only text is supported")
            out.append(part["text"])
        return "".join(out)
    raise InvalidArgument(f"{where}.content must be a string or a list of text parts")


class ChatRequest:
    """A checked chat completion request."""

    def __init__(self, body: Any):
        if not isinstance(body, dict):
            raise InvalidArgument("the body must be a JSON object")
        self.model = body.get("model")
        if not isinstance(self.model, str) or not self.model:
            raise InvalidArgument("model is required: a pipeline `name@alias` or a generation route name")
        raw = body.get("messages")
        if not isinstance(raw, list) or not raw:
            raise InvalidArgument("messages must be a non-empty list")
        self.messages: list[tuple[str, str]] = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant", "developer"):
                raise InvalidArgument(f"messages[{i}].role must be system, user or assistant")
            role = "system" if m["role"] == "developer" else m["role"]
            self.messages.append((role, _text(m.get("content"), f"messages[{i}]")))
        self.stream = body.get("stream") is True
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.max_tokens = self._int(body, "max_completion_tokens", self._int(body, "max_tokens", 0))
        self.temperature = self._number(body, "temperature", 0.0)
        self.top_p = self._number(body, "top_p", 1.0)
        self.seed = self._int(body, "seed", 0)
        stop = body.get("stop")
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])
        if body.get("n") not in (None, 1):
            raise InvalidArgument("n must be 1: one answer per request")

    @staticmethod
    def _int(body: dict, name: str, default: int) -> int:
        v = body.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise InvalidArgument(f"{name} must be a whole number >= 0")
        return v

    @staticmethod
    def _number(body: dict, name: str, default: float) -> float:
        v = body.get(name)
        if v is None:
            return default
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise InvalidArgument(f"{name} must be a number")
        return float(v)

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

    def generate_request(self) -> gpb.GenerateRequest:
        return gpb.GenerateRequest(route=self.model, messages=[gpb.ChatMessage(role=r, content=c)
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
        self._keys = keys
        self._spans = spans
        self._timeout = timeout_s
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
        ])

    async def healthz(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    def _begin(self, request: Request, route: str) -> tuple[http.RequestContext | None, Any, DomainError | None]:
        span, ctx = self._spans.start(request.method, route, request.headers)
        try:
            principal, key = http.authenticate(request.headers, self._keys, HTTP_POLICY[request.method, route], route)
        except DomainError as exc:
            return None, span, exc
        span.set_attribute("enduser.id", principal.name)
        return http.RequestContext(principal, key, ctx, span), span, None

    def _fail(self, span, error: DomainError) -> JSONResponse:
        status = http.http_status(error)
        http.ServerSpans.finish(span, status, error.message)
        return error_response(error, http.trace_headers(span))

    async def models(self, request: Request) -> Response:
        rc, span, error = self._begin(request, "/v1/models")
        if error is not None:
            return self._fail(span, error)
        created = int(time.time())
        try:
            with rc.active():
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
        except DomainError as exc:
            return self._fail(span, exc)
        http.ServerSpans.finish(span, 200)
        return JSONResponse({"object": "list", "data": data}, headers=http.trace_headers(span))

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

    async def chat_completions(self, request: Request) -> Response:
        rc, span, error = self._begin(request, "/v1/chat/completions")
        if error is not None:
            return self._fail(span, error)
        try:
            raw = await request.body()
            if len(raw) > MAX_BODY_BYTES:
                raise InvalidArgument(f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}")
            try:
                body = json.loads(raw)
            except ValueError:
                raise InvalidArgument("the body is not valid JSON") from None
            chat = ChatRequest(body)
            span.set_attribute("llmops.model", chat.model)
            if chat.is_pipeline:
                q = chat.question()
                self._runner.check(q)
        except DomainError as exc:
            return self._fail(span, exc)
        request_id = new_request_id()
        span.set_attribute("llmops.request_id", request_id)
        headers = {**http.trace_headers(span), "x-request-id": request_id}
        pieces = self._pieces(chat, request_id)
        if chat.stream:
            return await self._stream(chat, rc, pieces, request_id, headers)
        try:
            with rc.active():
                async with asyncio.timeout(self._timeout):
                    result = [p async for p in pieces]
        except TimeoutError:
            return self._fail(span, DeadlineExceeded(f"the answer took longer than {self._timeout:g} s"))
        except DomainError as exc:
            return self._fail(span, exc)
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
        http.ServerSpans.finish(span, 200)
        return JSONResponse(body, headers=headers)

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

    async def _stream(self, chat: ChatRequest, rc: http.RequestContext, pieces: AsyncIterator[Piece],
                      request_id: str, headers: dict[str, str]) -> Response:
        """Server-sent events. The first piece is awaited before answering, so a bad pipeline or a
        service that is down still gets its HTTP status rather than an error inside a 200 stream."""
        created = int(time.time())
        base = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": created,
                "model": chat.model}
        span = rc.span
        try:
            with rc.active():
                first = await asyncio.wait_for(anext(pieces), self._timeout)
        except TimeoutError:
            return self._fail(span, DeadlineExceeded(f"no answer within {self._timeout:g} s"))
        except StopAsyncIteration:
            return self._fail(span, Unavailable("the answer ended before it began; retry", service="generation"))
        except DomainError as exc:
            return self._fail(span, exc)

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
                    yield f"data: {json.dumps(error_body(DeadlineExceeded(message)))}\n\n".encode()
                except DomainError as exc:  # headers are sent: the error goes in the stream
                    status, message = http.http_status(exc), exc.message
                    yield f"data: {json.dumps(error_body(exc))}\n\n".encode()
                finally:
                    await pieces.aclose()  # a client that went away cancels generation
                    http.ServerSpans.finish(span, status, message)

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={**headers, "cache-control": "no-cache"})

