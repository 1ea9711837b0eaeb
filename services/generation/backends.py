"""The two kinds of target a route sends requests to, behind one interface: a model server
(our BentoML service, newline-delimited JSON stream) and an external OpenAI-compatible provider
(chat completions, server-sent events). Failures become domain errors: UNAVAILABLE (the next
target may be tried), RESOURCE_EXHAUSTED (a provider's 429, with its retry delay),
INVALID_ARGUMENT, FAILED_PRECONDITION (a target misconfigured by an admin)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
from opentelemetry import propagate

from llmops.core.errors import DomainError, FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable


@dataclass(frozen=True)
class GenRequest:
    messages: list[dict]
    prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int
    capture_content: bool = False


@dataclass
class Outcome:
    """What a finished generation reports (text only for unary calls)."""

    served_by: str
    text: str = ""
    finish_reason: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    queue_s: float = 0.0
    ttft_s: float = 0.0
    total_s: float = 0.0
    extra: dict = field(default_factory=dict)


@dataclass
class Event:
    """A streamed event: a text `delta`, or the final `outcome`."""

    delta: str = ""
    outcome: Outcome | None = None


def _headers(token: str = "") -> dict[str, str]:
    headers: dict[str, str] = {}
    propagate.inject(headers)  # the caller's trace continues in the target
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def _transport_error(target: str, exc: httpx.HTTPError, service: str) -> DomainError:
    return Unavailable(f"{target} is unreachable ({type(exc).__name__}); retry shortly", service=service)


class ModelServerTarget:
    def __init__(self, http: httpx.AsyncClient, base_url: str, version: str, token: str = ""):
        self._http = http
        self._url = base_url.rstrip("/")
        self.version = version
        self._token = token
        self.served_by = f"registry:{version}"

    def _body(self, req: GenRequest) -> dict:
        return {"model": self.version, "prompt": req.prompt, "messages": req.messages, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "top_p": req.top_p, "stop": req.stop, "seed": req.seed,
                "content_capture": req.capture_content}

    def _error(self, status: int, message: str) -> DomainError:
        where = f"model server for {self.version}"
        if status == 400:
            return InvalidArgument(message)
        if status == 404:
            return FailedPrecondition(f"{where}: {message}")
        if status in (401, 403):
            return FailedPrecondition(f"{where} refused the generation service's token; an admin must fix "
                                      "LLMOPS_GENERATION_MODEL_SERVER_TOKEN")
        return Unavailable(f"{where} failed ({status}); retry shortly", service="modelserver")

    @staticmethod
    def _outcome(served_by: str, usage: dict, text: str = "") -> Outcome:
        return Outcome(served_by, text, usage.get("finish_reason", "stop"), usage.get("input_tokens", 0),
                       usage.get("output_tokens", 0), usage.get("queue_ms", 0) / 1e3, usage.get("ttft_ms", 0) / 1e3,
                       usage.get("total_ms", 0) / 1e3, {"per_token_ms": usage.get("per_token_ms", 0.0)})

    async def generate(self, req: GenRequest) -> Outcome:
        try:
            resp = await self._http.post(f"{self._url}/generate", json=self._body(req), headers=_headers(self._token))
        except httpx.HTTPError as exc:
            raise _transport_error(f"the model server for {self.version}", exc, "modelserver") from None
        if resp.status_code != 200:
            raise self._error(resp.status_code, _message(resp))
        data = resp.json()
        return self._outcome(self.served_by, data.get("usage", {}), data.get("text", ""))

    async def stream(self, req: GenRequest) -> AsyncIterator[Event]:
        try:
            async with self._http.stream("POST", f"{self._url}/stream", json=self._body(req),
                                         headers=_headers(self._token)) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise self._error(resp.status_code, _message(resp))
                async for line in resp.aiter_lines():
                    if not line:
                        continue
                    msg = json.loads(line)
                    if "delta" in msg:
                        yield Event(delta=msg["delta"])
                    elif "done" in msg:
                        yield Event(outcome=self._outcome(self.served_by, msg["done"]))
                        return
                    elif "error" in msg:
                        raise self._error(int(msg.get("status", 500)), msg["error"])
        except httpx.HTTPError as exc:
            raise _transport_error(f"the model server for {self.version}", exc, "modelserver") from None
        raise Unavailable(f"the model server for {self.version} ended the stream early; retry", service="modelserver")


async def preload(http: httpx.AsyncClient, base_url: str, version: str, token: str = "",
                  timeout_s: float = 300.0) -> bool:
    """Ask a model server to load `version` ahead of traffic; False (logged by the caller) when
    it could not."""
    try:
        resp = await http.post(f"{base_url.rstrip('/')}/load", json={"model": version}, headers=_headers(token),
                               timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return resp.status_code == 200


class ProviderTarget:
    """OpenAI-compatible `POST {base_url}/chat/completions`; the key travels only in the
    Authorization header and is scrubbed from anything the provider sends back."""

    def __init__(self, http: httpx.AsyncClient, base_url: str, model: str, key: str, redact: Callable[[str], str]):
        self._http = http
        self._url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._key = key
        self._redact = redact
        self.served_by = f"provider:{model}"

    def _body(self, req: GenRequest, stream: bool) -> dict:
        messages = req.messages or [{"role": "user", "content": req.prompt}]
        body = {"model": self.model, "messages": messages, "max_tokens": req.max_tokens,
                "temperature": req.temperature, "top_p": req.top_p, "stream": stream}
        if req.stop:
            body["stop"] = req.stop
        if req.seed:
            body["seed"] = req.seed
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _error(self, resp: httpx.Response) -> DomainError:
        status, detail = resp.status_code, self._redact(_message(resp))[:500]
        where = f"provider model {self.model!r}"
        if status == 429:
            retry = resp.headers.get("retry-after")
            try:
                delay = float(retry) if retry else 1.0
            except ValueError:
                delay = 1.0
            return ResourceExhausted(f"{where} is rate limiting requests: {detail}", retry_after_s=delay)
        if status in (400, 422):
            return InvalidArgument(f"{where} refused the request: {detail}")
        if status in (401, 403):
            return FailedPrecondition(f"{where} refused the route's credential ({status}); an admin must update it")
        if status == 404:
            return FailedPrecondition(f"{where} was not found at the provider: {detail}")
        return Unavailable(f"{where} failed ({status}); retry shortly", service="provider")

    async def generate(self, req: GenRequest) -> Outcome:
        started = time.monotonic()
        try:
            resp = await self._http.post(self._url, json=self._body(req, False), headers=_headers(self._key))
        except httpx.HTTPError as exc:
            raise _transport_error(f"provider model {self.model!r}", exc, "provider") from None
        if resp.status_code != 200:
            raise self._error(resp)
        data = resp.json()
        choice = (data.get("choices") or [{}])[0]
        usage = data.get("usage") or {}
        elapsed = time.monotonic() - started
        return Outcome(self.served_by, (choice.get("message") or {}).get("content") or "",
                       "length" if choice.get("finish_reason") == "length" else "stop",
                       usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), 0.0, elapsed, elapsed)

    async def stream(self, req: GenRequest) -> AsyncIterator[Event]:
        started = time.monotonic()
        first = 0.0
        finish, usage = "stop", {}
        try:
            async with self._http.stream("POST", self._url, json=self._body(req, True),
                                         headers=_headers(self._key)) as resp:
                if resp.status_code != 200:
                    await resp.aread()
                    raise self._error(resp)
                async for line in resp.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content") or ""
                        if choice.get("finish_reason"):
                            finish = "length" if choice["finish_reason"] == "length" else "stop"
                        if text:
                            first = first or time.monotonic()
                            yield Event(delta=text)
        except httpx.HTTPError as exc:
            raise _transport_error(f"provider model {self.model!r}", exc, "provider") from None
        total = time.monotonic() - started
        yield Event(outcome=Outcome(self.served_by, "", finish, usage.get("prompt_tokens", 0),
                                    usage.get("completion_tokens", 0), 0.0, (first - started) if first else total, total))


def _message(resp: httpx.Response) -> str:
    """The error text of a JSON error body (`{"error": "..."}` or OpenAI's `{"error": {"message"}}`)."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(err, dict):
        err = err.get("message", json.dumps(err))
    return str(err)
