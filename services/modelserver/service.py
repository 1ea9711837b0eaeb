"""The BentoML service (HTTP: BentoML's current API serves no gRPC). Endpoints, all POST JSON:

- `/generate`: one completion with its usage and timing;
- `/stream`: newline-delimited JSON events (`{"delta": ...}` then one `{"done": ...}` or
  `{"error": ...}`); a client that disconnects cancels generation at the next token;
- `/generate_batch`: BentoML's adaptive batching over lists of requests;
- `/load`: load a model version ahead of traffic (the generation service calls it when an alias
  moves); `/status`: loaded models and queue depth.

Requests name a registry model version; every request continues the caller's W3C trace and
records a span in the model server's own trace store or OTLP endpoint."""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import hmac
import json
import logging
import os
from collections.abc import AsyncGenerator
from http import HTTPStatus
from typing import Any

import bentoml
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pydantic import BaseModel, Field, ValidationError

from llmops.client import CallError
from llmops.core import sandbox, telemetry, templating
from llmops.core.config import from_env
from llmops.core.errors import DomainError
from llmops.core.http import send_json
from llmops.core.openai_format import SAMPLING_RANGES
from services.modelserver.config import ModelServerConfig
from services.modelserver.engine import Job, RequestError, Result
from services.modelserver.fetch import ModelFetcher
from services.modelserver.pool import ModelPool
from services.modelserver.sampling import Sampling
from services.modelserver.scheduler import Overloaded

log = logging.getLogger("llmops.modelserver")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


class Message(BaseModel):
    role: str
    content: str | None = None


class GenerateItem(BaseModel):
    """A request. Sampling fields left out take the defaults here (greedy decoding)."""

    model: str
    prompt: str = ""
    messages: list[Message] = Field(default_factory=list)
    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = Field(default_factory=list)
    seed: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    n: int = Field(1, ge=1, le=8)  # choices, decoded as rows of one batch
    logprobs: bool = False
    top_logprobs: int = Field(0, ge=0, le=20)
    content_capture: bool = False

    def sampling(self) -> Sampling:
        return Sampling(self.max_tokens, self.temperature, self.top_p, tuple(s for s in self.stop if s), self.seed,
                        self.presence_penalty, self.frequency_penalty, self.top_logprobs if self.logprobs else -1)


class Choices:
    """The n jobs of one request; choice i > 0 with a seed samples with seed + i, so choices
    differ yet stay reproducible.

    Events, (index, kind, payload), cross from the engine thread to the event loop in bunches:
    the engine appends to a deque and wakes the loop only when it is not already awake, so a
    step that makes a token for eight streams costs the loop one wake-up, not eight (each
    wake-up is a GIL hand-over the engine thread then waits for). A unary request
    (`streaming=False`) keeps its text and log probabilities on the engine side: only a row's
    end wakes the loop."""

    def __init__(self, loaded, ids: list[int], sampling: Sampling, n: int, streaming: bool = True):
        self._loop = asyncio.get_running_loop()
        self._pending: collections.deque = collections.deque()
        self._ready = asyncio.Event()
        self._woken = False
        self.streaming = streaming
        self.parts: list[list[str]] = [[] for _ in range(n)]  # unary only
        self.probs: list[list[dict]] = [[] for _ in range(n)]
        self.jobs = []
        for i in range(n):
            params = dataclasses.replace(sampling, seed=sampling.seed + i) if sampling.seed and i else sampling
            self.jobs.append(Job(ids, params, functools.partial(self._emit, i)))
        loaded.scheduler.submit(self.jobs)

    def _emit(self, index: int, kind: str, payload) -> None:  # on the engine thread
        if not self.streaming and kind in ("delta", "logprob"):
            (self.parts if kind == "delta" else self.probs)[index].append(payload)
            return
        self._pending.append((index, kind, payload))
        if not self._woken:
            self._woken = True
            self._loop.call_soon_threadsafe(self._ready.set)

    async def events(self) -> list[tuple[int, str, object]]:
        """The events that arrived since the last call (waits for at least one)."""
        await self._ready.wait()
        self._ready.clear()
        self._woken = False  # before draining: an event appended from now on wakes the loop again
        out = []
        while self._pending:
            out.append(self._pending.popleft())
        return out

    def cancel(self) -> bool:
        """Stop every row still running; whether any was."""
        running = [j for j in self.jobs if not j.cancelled.is_set()]
        for job in running:
            job.cancel()
        return bool(running)


def merged_usage(results: list[Result]) -> dict:
    """One usage for n choices: the prompt once, the outputs summed, choice 0's finish reason
    and the slowest row's timings."""
    out = results[0].as_dict()
    out["output_tokens"] = sum(r.output_tokens for r in results)
    out["total_ms"] = max(r.total_s for r in results) * 1e3
    out["ttft_ms"] = max(r.ttft_s for r in results) * 1e3
    return out


def _item(args: dict) -> GenerateItem:
    """The request of an API method's arguments (a bad one is the caller's 400)."""
    fields = {k: v for k, v in args.items() if k in GenerateItem.model_fields and v is not None}
    try:
        return GenerateItem(**fields)
    except ValidationError as exc:
        raise _error(HTTPStatus.BAD_REQUEST, str(exc.errors(include_url=False)[0]["msg"])) from None


def _error(status: HTTPStatus, message: str) -> bentoml.exceptions.BentoMLException:
    return bentoml.exceptions.BentoMLException(message, error_code=status)


def _busy(exc: Overloaded) -> dict:
    """A refusal at capacity: 429 with the delay after which a row should be free."""
    return {"error": str(exc), "status": 429, "retry_after_s": round(exc.retry_after_s, 3)}


def _ssl() -> dict:
    """BentoML's HTTPS settings from the model server's TLS settings (read as BentoML imports us)."""
    tls = from_env(ModelServerConfig, "LLMOPS_MODELSERVER").tls()
    return {"ssl": {"enabled": True, "certfile": tls.cert_file, "keyfile": tls.key_file}} if tls else {}


class TokenCheck:
    """Every endpoint but the probes and /metrics needs `Authorization: Bearer <token>` when the
    server has a token (ASGI middleware: one check for all of them, the batch endpoint included),
    compared in constant time."""

    OPEN = ("/readyz", "/livez", "/healthz", "/metrics")

    def __init__(self, app, token: str = ""):
        self.app = app
        self._expected = f"Bearer {token}".encode() if token else b""

    async def __call__(self, scope, receive, send):
        if self._expected and scope["type"] == "http" and scope["path"] not in self.OPEN:
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if not hmac.compare_digest(given, self._expected):
                await send_json(send, 401, {"error": "missing or wrong bearer token for the model server"})
                return
        await self.app(scope, receive, send)


@bentoml.service(workers=1, traffic={"timeout": 600, "concurrency": 256}, **_ssl())
class ModelServer:
    def __init__(self) -> None:
        self.config = from_env(ModelServerConfig, "LLMOPS_MODELSERVER")
        fetcher = ModelFetcher(self.config.resolved_registry_address(), self.config.api_key,
                               self.config.resolved_cache_dir())
        self.pool = ModelPool(fetcher, max_loaded=self.config.max_loaded, max_batch=self.config.max_batch,
                              max_waiting=self.config.max_waiting)
        self.provider = telemetry.create_tracer_provider("llmops-modelserver")
        self.tracer = trace.get_tracer("llmops.modelserver", tracer_provider=self.provider)
        self._preloaded = False
        self._renderer = sandbox.RenderPool(2)  # chat templates come with uploaded models: never rendered here

    def _render_chat(self, source: str, variables: dict) -> str:
        return self._renderer.render(source, variables, "the model's chat template", templating.CHAT)

    # -- plumbing ------------------------------------------------------------------------------

    def _span(self, name: str, ctx: bentoml.Context, item: GenerateItem | None = None, current: bool = True):
        """A SERVER span continuing the caller's trace. A streamed response's span is not made
        current: its generator may be closed from another context when the client goes away."""
        parent = propagate.extract(dict(ctx.request.headers))
        attrs = {}
        if item is not None:
            attrs = {"gen_ai.operation.name": "chat" if item.messages else "text_completion",
                     "gen_ai.request.model": item.model, "gen_ai.request.max_tokens": item.max_tokens,
                     "gen_ai.request.temperature": item.temperature, "gen_ai.request.top_p": item.top_p}
        if current:
            return self.tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER, attributes=attrs)
        return self.tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attrs)

    async def _prepare(self, item: GenerateItem, admit: bool = True):
        try:
            loaded = await self.pool.get(item.model)
        except FileNotFoundError as exc:
            raise _error(HTTPStatus.NOT_FOUND, str(exc)) from None
        except CallError as exc:
            if exc.code.name in ("NOT_FOUND", "INVALID_ARGUMENT", "PERMISSION_DENIED"):
                raise _error(HTTPStatus.NOT_FOUND, f"model {item.model!r}: {exc.message}") from None
            log.warning("cannot load %s: %s", item.model, exc)
            raise _error(HTTPStatus.SERVICE_UNAVAILABLE, f"model {item.model!r} cannot be loaded now; retry") from None
        except (OSError, ValueError) as exc:  # a folder transformers cannot load
            log.warning("cannot load %s: %s", item.model, exc)
            raise _error(HTTPStatus.SERVICE_UNAVAILABLE, f"model {item.model!r} cannot be loaded now; retry") from None
        if admit:  # refused before tokenising when the queue is full
            loaded.scheduler.check(item.n)
        for name, (low, high) in SAMPLING_RANGES.items():
            if not low <= getattr(item, name) <= high:
                raise _error(HTTPStatus.BAD_REQUEST, f"{name} must be between {low:g} and {high:g}")
        sampling = item.sampling()
        try:
            messages = [{"role": m.role, "content": m.content or ""} for m in item.messages]
            ids = await asyncio.to_thread(loaded.engine.encode, item.prompt, messages, self._render_chat)
            loaded.engine.check(ids, sampling)
        except (RequestError, DomainError) as exc:  # a chat template the sandbox refused is the request's
            raise _error(HTTPStatus.BAD_REQUEST, getattr(exc, "message", str(exc))) from None
        return loaded, ids, sampling


    @staticmethod
    def _record(span, item: GenerateItem, loaded, result: Result, text: str) -> None:
        span.set_attribute("gen_ai.response.model", loaded.version)
        span.set_attribute("gen_ai.usage.input_tokens", result.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", result.output_tokens)
        span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason])
        span.set_attribute("llmops.time_to_first_token_ms", result.ttft_s * 1e3)
        span.set_attribute("llmops.queue_ms", result.queue_s * 1e3)
        span.set_attribute("llmops.engine", loaded.engine.backend)
        if item.content_capture:
            span.set_attribute("gen_ai.completion", text)

    async def _complete(self, item: GenerateItem) -> dict[str, Any]:
        loaded, ids, sampling = await self._prepare(item)
        run = Choices(loaded, ids, sampling, item.n, streaming=False)
        results: list[Result | None] = [None] * item.n
        try:
            while any(r is None for r in results):
                for index, kind, payload in await run.events():
                    if kind == "error":
                        raise _error(HTTPStatus.INTERNAL_SERVER_ERROR, payload)
                    results[index] = payload
        finally:
            run.cancel()  # a caller that went away stops its rows at the next token
        texts, probs = ["".join(p) for p in run.parts], run.probs
        self._record(trace.get_current_span(), item, loaded, results[0], texts[0])
        choices = [{"index": i, "text": texts[i], "finish_reason": r.finish_reason,
                    **({"logprobs": probs[i]} if item.logprobs else {})} for i, r in enumerate(results)]
        return {"text": texts[0], "model": loaded.version, "backend": loaded.engine.backend,
                "usage": merged_usage(results), "choices": choices}

    # -- API -----------------------------------------------------------------------------------

    @bentoml.api
    async def generate(self, ctx: bentoml.Context, model: str, prompt: str = "", messages: list[Message] | None = None,
                       max_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
                       stop: list[str] | None = None, seed: int = 0, presence_penalty: float = 0.0,
                       frequency_penalty: float = 0.0, n: int = 1, logprobs: bool = False, top_logprobs: int = 0,
                       content_capture: bool = False) -> dict[str, Any]:
        item = _item(locals())
        with self._span("modelserver.generate", ctx, item) as span:
            try:
                return await self._complete(item)
            except Overloaded as exc:
                span.set_attribute("llmops.refused", "capacity")
                body = _busy(exc)
                ctx.response.status_code = HTTPStatus.TOO_MANY_REQUESTS
                ctx.response.metadata["retry-after-ms"] = str(int(body["retry_after_s"] * 1000))
                return body

    @bentoml.api
    async def stream(self, ctx: bentoml.Context, model: str, prompt: str = "", messages: list[Message] | None = None,
                     max_tokens: int = 64, temperature: float = 0.0, top_p: float = 1.0,
                     stop: list[str] | None = None, seed: int = 0, presence_penalty: float = 0.0,
                     frequency_penalty: float = 0.0, n: int = 1, logprobs: bool = False, top_logprobs: int = 0,
                     content_capture: bool = False) -> AsyncGenerator[str, None]:
        item = _item(locals())
        # The body of a streamed response starts before this generator runs, so failures travel
        # in-band as an `error` event with the HTTP status they would have had.
        # Events of choice i carry `index` i; a choice other than 0 that ends says so with `finish`,
        # and `done` (usage, choice 0's finish reason) comes once every choice has ended.
        span = self._span("modelserver.stream", ctx, item, current=False)
        run = None
        try:
            loaded, ids, sampling = await self._prepare(item)
            run = Choices(loaded, ids, sampling, item.n)
            yield json.dumps({"model": loaded.version, "backend": loaded.engine.backend}) + "\n"
            parts: list[str] = []
            results: list[Result | None] = [None] * item.n
            while any(r is None for r in results):
                lines = []
                for index, kind, payload in await run.events():
                    if kind == "delta":
                        if index == 0:
                            parts.append(payload)
                        lines.append(json.dumps({"delta": payload, "index": index}))
                    elif kind == "logprob":
                        lines.append(json.dumps({"logprobs": [payload], "index": index}))
                    elif kind == "error":
                        lines.append(json.dumps({"error": payload, "status": 500}))
                        yield "\n".join(lines) + "\n"
                        return
                    else:
                        results[index] = payload
                        if index:
                            lines.append(json.dumps({"finish": payload.finish_reason, "index": index}))
                if lines:  # what arrived together goes out together
                    yield "\n".join(lines) + "\n"
            self._record(span, item, loaded, results[0], "".join(parts))
            yield json.dumps({"done": merged_usage(results)}) + "\n"
        except bentoml.exceptions.BentoMLException as exc:
            span.set_status(Status(StatusCode.ERROR, exc.message))
            yield json.dumps({"error": exc.message, "status": int(exc.error_code)}) + "\n"
        except Overloaded as exc:
            span.set_attribute("llmops.refused", "capacity")
            yield json.dumps(_busy(exc)) + "\n"
        finally:
            if run is not None and run.cancel():
                span.set_attribute("llmops.cancelled", True)
            span.end()

    @bentoml.api(batchable=True, max_batch_size=8, max_latency_ms=60_000)
    async def generate_batch(self, items: list[GenerateItem]) -> list[dict[str, Any]]:
        async def one(item: GenerateItem) -> dict[str, Any]:
            try:
                return await self._complete(item)
            except bentoml.exceptions.BentoMLException as exc:
                return {"error": exc.message, "status": int(exc.error_code)}
            except Overloaded as exc:
                return _busy(exc)

        return list(await asyncio.gather(*(one(i) for i in items)))

    @bentoml.api
    async def load(self, ctx: bentoml.Context, model: str) -> dict[str, Any]:
        with self._span("modelserver.load", ctx):
            loaded, _, _ = await self._prepare(GenerateItem(model=model, prompt="x", max_tokens=1), admit=False)
            return {**loaded.engine.info(), "version": loaded.version}

    @bentoml.api
    async def status(self, ctx: bentoml.Context) -> dict[str, Any]:
        if not self._preloaded and self.config.preload:
            self._preloaded = True
            for ref in filter(None, (r.strip() for r in self.config.preload.split(","))):
                await self.pool.get(ref)
        return {"models": self.pool.describe(), "busy": self.pool.busy}

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self._renderer.close()
        self.pool.close()
        self.provider.shutdown()


ModelServer.add_asgi_middleware(TokenCheck, token=from_env(ModelServerConfig, "LLMOPS_MODELSERVER").token)
