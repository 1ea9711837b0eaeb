"""The two kinds of target a route sends requests to, behind one interface: a model server
(our BentoML service, newline-delimited JSON stream) and an external OpenAI-compatible provider
(chat completions, server-sent events). Failures become domain errors: UNAVAILABLE (the next
target may be tried), RESOURCE_EXHAUSTED (a provider's 429, with its retry delay),
INVALID_ARGUMENT (the target refused the request), BAD_GATEWAY-class INTERNAL (the target
refused our credential or does not know the model: an admin's to fix, HTTP 502) and
FAILED_PRECONDITION (a model version the server cannot serve)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from opentelemetry import propagate

from llmops.api.generation.v1 import generation_pb2 as pb
from llmops.core.errors import (
    BadGateway,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from llmops.core.openai_format import finish_code, finish_name, logprobs_from_json, tool_call_from_json
from services.generation.upstream import Reply, TransportError, Upstream, error_message


@dataclass(frozen=True)
class GenRequest:
    """A checked request. Messages and the provider-only options are OpenAI JSON already;
    `sampling` holds only the fields the caller set."""

    messages: list[dict]
    prompt: str
    max_tokens: int  # what accounting reserved per choice
    sampling: dict  # temperature, top_p, seed, stop, penalties: only those set
    send_max_tokens: bool = True  # False: the caller left it to the target's default
    n: int = 1
    logprobs: bool = False
    top_logprobs: int = 0
    tools: list[dict] = field(default_factory=list)
    tool_choice: str | dict | None = None
    response_format: dict | None = None
    user: str = ""
    provider_options: dict = field(default_factory=dict)
    capture_content: bool = False

    def provider_only(self) -> str:
        """The first request field only a provider target can honour ('' when none)."""
        if self.tools or self.tool_choice is not None:
            return "tools"
        if self.response_format and self.response_format.get("type") != "text":
            return "response_format"
        if self.provider_options:
            return sorted(self.provider_options)[0]
        for i, m in enumerate(self.messages):
            if m["role"] == "tool" or m.get("tool_calls"):
                return f"messages[{i}]"  # a tool call round trip
        return ""


@dataclass
class Outcome:
    """What a finished generation reports: usage and timing, and for unary calls the choices
    (`text`/`finish_reason` are the first choice's)."""

    served_by: str
    text: str = ""
    finish_reason: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    queue_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    extra: dict = field(default_factory=dict)
    choices: list = field(default_factory=list)  # generation_pb2.Choice


@dataclass
class Event:
    """A streamed event of choice `index`: a text `delta`, tool call fragments or log
    probabilities; `finish` when that choice ended (not for choice 0: its finish comes with the
    `outcome`, the last event)."""

    delta: str = ""
    index: int = 0
    tool_calls: list = field(default_factory=list)  # generation_pb2.ToolCallDelta
    logprobs: list = field(default_factory=list)  # generation_pb2.TokenLogprob
    finish: str = ""
    outcome: Outcome | None = None


def _headers(token: str = "") -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers)  # the caller's trace continues in the target
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _transport_error(target: str, exc: Exception, service: str) -> DomainError:
    return Unavailable(f"{target} is unreachable ({type(exc).__name__}); retry shortly", service=service)


def _retry_after(raw: bytes) -> float | None:
    """The model server's retry delay in an error body (`retry_after_s`), if any."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data.get("retry_after_s") if isinstance(data, dict) else None


class ModelServerTarget:
    def __init__(self, http: Upstream, base_url: str, version: str, token: str = ""):
        self._http = http
        self._url = base_url.rstrip("/")
        self.version = version
        self._token = token
        self.served_by = f"registry:{version}"

    def _body(self, req: GenRequest) -> dict:
        return {"model": self.version, "prompt": req.prompt, "messages": req.messages, "max_tokens": req.max_tokens,
                **req.sampling, "n": req.n, "logprobs": req.logprobs, "top_logprobs": req.top_logprobs,
                "content_capture": req.capture_content}

    def _error(self, status: int, message: str, retry_after_s: float | None = None) -> DomainError:
        where = f"model server for {self.version}"
        if status == 429:  # its queue is full: the next target may have room, else the caller retries
            return ResourceExhausted(f"{where}: {message}", retry_after_s=retry_after_s or 1.0, reason="MODEL_BUSY")
        if status == 400:
            return InvalidArgument(message)
        if status == 404:
            return FailedPrecondition(f"{where}: {message}")
        if status in (401, 403):
            return BadGateway(f"{where} refused the generation service's token; an admin must fix "
                              "LLMOPS_GENERATION_MODEL_SERVER_TOKEN", reason="UPSTREAM_CREDENTIAL_REJECTED")
        return Unavailable(f"{where} failed ({status}); retry shortly", service="modelserver")

    @staticmethod
    def _outcome(served_by: str, usage: dict, text: str = "") -> Outcome:
        return Outcome(served_by, text, usage.get("finish_reason", "stop"), usage.get("input_tokens", 0),
                       usage.get("output_tokens", 0), usage.get("queue_ms", 0) / 1e3, usage.get("ttft_ms", 0) / 1e3,
                       usage.get("total_ms", 0) / 1e3, {"per_token_ms": usage.get("per_token_ms", 0.0)})

    async def generate(self, req: GenRequest) -> Outcome:
        try:
            async with self._http.post(f"{self._url}/generate", self._body(req), _headers(self._token)) as reply:
                if reply.status != 200:
                    raw = await reply.body()
                    raise self._error(reply.status, error_message(raw), _retry_after(raw))
                data = await reply.json()
        except TransportError as exc:
            raise _transport_error(f"the model server for {self.version}", exc, "modelserver") from None
        outcome = self._outcome(self.served_by, data.get("usage", {}), data.get("text", ""))
        outcome.choices = [pb.Choice(index=c.get("index", 0), text=c.get("text", ""),
                                     finish_reason=finish_code(c.get("finish_reason")),
                                     logprobs=logprobs_from_json(c.get("logprobs")))
                           for c in data.get("choices") or [{"text": outcome.text,
                                                            "finish_reason": outcome.finish_reason}]]
        return outcome

    async def stream(self, req: GenRequest) -> AsyncIterator[Event]:
        try:
            async with self._http.post(f"{self._url}/stream", self._body(req), _headers(self._token)) as reply:
                if reply.status != 200:
                    raw = await reply.body()
                    raise self._error(reply.status, error_message(raw), _retry_after(raw))
                async for line in reply.lines():
                    if not line:
                        continue
                    msg = json.loads(line)
                    if "delta" in msg or "logprobs" in msg:
                        yield Event(delta=msg.get("delta", ""), index=msg.get("index", 0),
                                    logprobs=logprobs_from_json(msg.get("logprobs")))
                    elif "finish" in msg:
                        yield Event(index=msg["index"], finish=msg["finish"])
                    elif "done" in msg:
                        yield Event(outcome=self._outcome(self.served_by, msg["done"]))
                        return
                    elif "error" in msg:
                        raise self._error(int(msg.get("status", 500)), msg["error"], msg.get("retry_after_s"))
        except TransportError as exc:
            raise _transport_error(f"the model server for {self.version}", exc, "modelserver") from None
        raise Unavailable(f"the model server for {self.version} ended the stream early; retry", service="modelserver")


async def preload(http: Upstream, base_url: str, version: str, token: str = "", timeout_s: float = 300.0) -> bool:
    """Ask a model server to load `version` ahead of traffic; False (logged by the caller) when
    it could not."""
    try:
        async with http.post(f"{base_url.rstrip('/')}/load", {"model": version}, _headers(token), timeout_s) as reply:
            await reply.body()
            return reply.status == 200
    except TransportError:
        return False


class ProviderTarget:
    """OpenAI-compatible `POST {base_url}/chat/completions`; the key travels only in the
    Authorization header and is scrubbed from anything the provider sends back."""

    def __init__(self, http: Upstream, base_url: str, model: str, key: str, redact: Callable[[str], str]):
        self._http = http
        self._url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._key = key
        self._redact = redact
        self.served_by = f"provider:{model}"

    def _body(self, req: GenRequest, stream: bool) -> dict:
        """The request as the caller made it: only the fields that are set go to the provider."""
        body: dict = {"model": self.model, "messages": req.messages or [{"role": "user", "content": req.prompt}],
                      **req.sampling, **req.provider_options}
        if req.send_max_tokens:
            body["max_tokens"] = req.max_tokens
        if req.n > 1:
            body["n"] = req.n
        if req.logprobs:
            body["logprobs"] = True
            if req.top_logprobs:
                body["top_logprobs"] = req.top_logprobs
        if req.tools:
            body["tools"] = req.tools
        if req.tool_choice is not None:
            body["tool_choice"] = req.tool_choice
        if req.response_format:
            body["response_format"] = req.response_format
        if req.user:
            body["user"] = req.user
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}  # usage is accounted for every caller
        return body

    async def _error(self, reply: Reply) -> DomainError:
        status, detail = reply.status, self._redact(error_message(await reply.body()))[:500]
        where = f"provider model {self.model!r}"
        if status == 429:
            retry = reply.headers.get("retry-after")
            try:
                delay = float(retry) if retry else 1.0
            except ValueError:
                delay = 1.0
            return ResourceExhausted(f"{where} is rate limiting requests: {detail}", retry_after_s=delay)
        if status in (400, 422):
            return InvalidArgument(f"{where} refused the request: {detail}")
        if status in (401, 403):  # our credential, not the caller's request: a gateway fault
            return BadGateway(f"{where} refused the route's credential ({status}); an admin must update it",
                              reason="UPSTREAM_CREDENTIAL_REJECTED")
        if status == 404:
            return BadGateway(f"{where} was not found at the provider: {detail}", reason="UPSTREAM_NOT_FOUND")
        return Unavailable(f"{where} failed ({status}); retry shortly", service="provider")

    async def generate(self, req: GenRequest) -> Outcome:
        started = time.monotonic()
        try:
            async with self._http.post(self._url, self._body(req, False), _headers(self._key)) as reply:
                if reply.status != 200:
                    raise await self._error(reply)
                data = await reply.json()
        except TransportError as exc:
            raise _transport_error(f"provider model {self.model!r}", exc, "provider") from None
        choices = [_choice(c) for c in data.get("choices") or [{}]]
        usage = data.get("usage") or {}
        elapsed = time.monotonic() - started
        first = choices[0]
        return Outcome(self.served_by, first.text, finish_name(first.finish_reason), usage.get("prompt_tokens", 0),
                       usage.get("completion_tokens", 0), 0.0, elapsed, elapsed, choices=choices)

    async def stream(self, req: GenRequest) -> AsyncIterator[Event]:
        started = time.monotonic()
        first = 0.0
        finish, usage = "stop", {}
        try:
            async with self._http.post(self._url, self._body(req, True), _headers(self._key)) as reply:
                if reply.status != 200:
                    raise await self._error(reply)
                async for line in reply.lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        continue  # read on to the end of the body, so the connection is kept for reuse
                    chunk = json.loads(payload)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        event = _stream_event(choice)
                        if event.delta or event.tool_calls or event.logprobs:
                            first = first or time.monotonic()
                            yield event
                        reason = choice.get("finish_reason")
                        if reason:
                            name = finish_name(finish_code(reason))
                            if event.index == 0:
                                finish = name
                            else:
                                yield Event(index=event.index, finish=name)
        except TransportError as exc:
            raise _transport_error(f"provider model {self.model!r}", exc, "provider") from None
        total = time.monotonic() - started
        yield Event(outcome=Outcome(self.served_by, "", finish, usage.get("prompt_tokens", 0),
                                    usage.get("completion_tokens", 0), 0.0, (first - started) if first else total, total))


def _choice(c: dict) -> pb.Choice:
    message = c.get("message") or {}
    return pb.Choice(index=c.get("index", 0), text=message.get("content") or "",
                     finish_reason=finish_code(c.get("finish_reason")),
                     tool_calls=[tool_call_from_json(t) for t in message.get("tool_calls") or ()],
                     logprobs=logprobs_from_json((c.get("logprobs") or {}).get("content")))


def _stream_event(choice: dict) -> Event:
    delta = choice.get("delta") or {}
    calls = [pb.ToolCallDelta(index=t.get("index", 0), id=t.get("id") or "", type=t.get("type") or "",
                              name=(t.get("function") or {}).get("name") or "",
                              arguments=(t.get("function") or {}).get("arguments") or "")
             for t in delta.get("tool_calls") or ()]
    return Event(delta=delta.get("content") or "", index=choice.get("index", 0), tool_calls=calls,
                 logprobs=logprobs_from_json((choice.get("logprobs") or {}).get("content")))
