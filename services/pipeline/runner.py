"""One question through one pipeline bundle: resolve the bundle in the registry, assemble the
prompt (the prompt service retrieves from the bundle's index and counts with the route's
tokenizer, keeping the answer's tokens free), then stream the answer from the bundle's route.

Both the gRPC API and the OpenAI-compatible HTTP API run questions through here. Generation is
always streamed downstream, so a caller that goes away (or whose deadline passes) cancels the
model's work at the next token, for unary callers too.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from opentelemetry import trace

from llmops.api.common.v1.chat_pb2 import ChatMessage, SamplingParams
from llmops.api.feedback.v1 import feedback_pb2 as fpb
from llmops.api.generation.v1 import generation_pb2 as gpb
from llmops.api.prompt.v1 import prompt_pb2 as ppb
from llmops.api.registry.v1 import registry_pb2 as rpb
from llmops.client.pipeline import BundleParameters
from llmops.core import auth, channels, names, telemetry
from llmops.core.errors import DeadlineExceeded, DomainError, FailedPrecondition, InvalidArgument, Unavailable
from llmops.core.model_files import ModelFiles
from llmops.core.openai_format import finish_name
from llmops.core.timeutil import now_us, timestamp
from services.pipeline.outbox import InferenceOutbox

log = logging.getLogger(__name__)
MAX_QUESTION_CHARS = 32_000
MAX_INSTRUCTIONS_CHARS = 16_000
MAX_HISTORY = 64
ROLES = {"user": ppb.ROLE_USER, "assistant": ppb.ROLE_ASSISTANT}


@dataclass(frozen=True)
class Bundle:
    version: str  # models/{pipeline}/versions/{n}
    prompt_template: str
    index: str
    route: str
    params: BundleParameters


@dataclass
class Question:
    pipeline: str
    text: str
    history: list[tuple[str, str]] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    instructions: str = ""  # the caller's system message
    sampling: SamplingParams | None = None  # overrides of the bundle's
    prefix: str = ""  # where the sampling fields sit in the caller's request (`sampling.` over gRPC)


@dataclass
class Citation:
    document_id: str
    chunk_id: str
    score: float
    marker: str
    text: str


@dataclass
class Versions:
    pipeline: str = ""
    prompt: str = ""
    index: str = ""
    model: str = ""


@dataclass
class Piece:
    """One step of an answer: the first carries citations and versions, the last usage."""

    delta: str = ""
    citations: list[Citation] | None = None
    versions: Versions | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str = ""
    last: bool = False
    sampling: SamplingParams | None = None  # first piece: the parameters used


def new_request_id() -> str:
    """Time-ordered (ms prefix) and unique: sorts by arrival in logs and the feedback store."""
    return f"{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


class Deadline:
    """The time the caller gave us; each downstream call gets what is left of it."""

    def __init__(self, seconds: float | None):
        self._at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        return None if self._at is None else max(0.001, self._at - time.monotonic())

    def passed(self) -> bool:
        return self._at is not None and time.monotonic() >= self._at


class PipelineRunner:
    def __init__(self, bundles: ModelFiles, prompt_stub, generation_stub, outbox: InferenceOutbox | None = None):
        self._bundles = bundles  # resolves `name@alias` for bundle_ttl_s, versions for good
        self._prompt = prompt_stub
        self._generation = generation_stub
        self._outbox = outbox  # None: answers are not logged
        self._parsed: dict[str, Bundle] = {}

    # -- bundles -------------------------------------------------------------------------------

    async def bundle(self, ref: str, deadline: Deadline) -> Bundle:
        if not ref.strip():
            raise InvalidArgument("pipeline is required: name a bundle as `name@alias` or `name@version`")
        parsed = names.parse_version_ref("pipeline", "models", ref)  # INVALID_ARGUMENT for a malformed reference
        try:
            if parsed.alias:
                ref = await self._canary(parsed.id, parsed.alias, ref)
            version = await self._bundles.resolve(ref)
        except grpc.aio.AioRpcError as exc:
            raise self._downstream(exc, "registry", deadline) from None
        parsed = self._parsed.get(version.name)
        if parsed is None:
            parsed = self._parsed[version.name] = self._parse(version)
        return parsed

    async def _canary(self, name: str, alias: str, ref: str) -> str:
        """`ref`, or the alias's canary version for the share of requests the canary takes (a
        progressive release moves the share; each request draws on its own)."""
        model = await self._bundles.model(name)
        canary = model.canaries.get(alias)
        if canary is None or canary.version < 1 or random.random() * 100 >= canary.percent:
            return ref
        trace.get_current_span().set_attribute("llmops.canary_percent", canary.percent)
        return f"{name}@{canary.version}"

    @staticmethod
    def _parse(version: rpb.ModelVersion) -> Bundle:
        if not version.HasField("pipeline_spec"):
            raise FailedPrecondition(f"{version.name} is a model, not a pipeline bundle; name a pipeline "
                                     "(`llmops pipelines list`)")
        spec = version.pipeline_spec
        try:
            params = BundleParameters.parse(json_format.MessageToDict(spec.parameters))
        except InvalidArgument as exc:
            raise FailedPrecondition(f"{version.name} has bad parameters ({exc.message}); register a fixed "
                                     "version") from None
        return Bundle(version.name, spec.prompt_template, spec.index, spec.route, params)

    # -- a question ----------------------------------------------------------------------------

    @staticmethod
    def check(q: Question) -> None:
        if not q.text.strip():
            raise InvalidArgument("question is empty; ask something")
        if len(q.text) > MAX_QUESTION_CHARS:
            raise InvalidArgument(f"question is {len(q.text)} characters; the limit is {MAX_QUESTION_CHARS}")
        if len(q.history) > MAX_HISTORY:
            raise InvalidArgument(f"history has {len(q.history)} turns; send at most {MAX_HISTORY}")
        for i, (role, _) in enumerate(q.history):
            if role not in ROLES:
                raise InvalidArgument(f"history[{i}].role {role[:20]!r} must be user or assistant")
        if len(q.instructions) > MAX_INSTRUCTIONS_CHARS:
            raise InvalidArgument(f"instructions are {len(q.instructions)} characters; the limit is "
                                  f"{MAX_INSTRUCTIONS_CHARS}", field="instructions")
        if q.sampling is not None and q.sampling.max_tokens < 0:
            raise InvalidArgument("max_tokens must be >= 1 (0: the bundle's)", field=f"{q.prefix}max_tokens")

    @staticmethod
    def _downstream(exc: grpc.aio.AioRpcError, service: str, deadline: Deadline) -> DomainError:
        if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED and deadline.passed():
            return DeadlineExceeded(f"the deadline passed while the {service} service was working; the call was "
                                    "cancelled")
        return channels.downstream_error(exc, service)

    async def _assemble(self, b: Bundle, q: Question, max_tokens: int, deadline: Deadline) -> ppb.AssemblePromptResponse:
        variables = struct_pb2.Struct()
        variables.update({**q.variables, b.params.question_variable: q.text})
        request = ppb.AssemblePromptRequest(
            template=b.prompt_template, variables=variables, index=b.index, top_k=b.params.top_k, route=b.route,
            context_window_tokens=b.params.context_window_tokens, reserve_output_tokens=max_tokens,
            history=[ppb.Message(role=ROLES[r], content=c) for r, c in q.history], instructions=q.instructions)
        try:
            return await self._prompt.AssemblePrompt(request, timeout=deadline.remaining())
        except grpc.aio.AioRpcError as exc:
            raise self._downstream(exc, "prompt", deadline) from None

    async def _log(self, request_id: str, q: Question, b: Bundle, versions: Versions, citations: list[Citation],
                   prompt: list[ChatMessage], answer: str, last: Piece, started: float) -> None:
        """Queue the inference record; a failure here is logged, never the caller's problem."""
        if self._outbox is None:
            return
        record = fpb.InferenceRecord(
            request_id=request_id, trace_id=telemetry.current_trace_id(), pipeline_version=b.version,
            prompt_version=versions.prompt, index_version=versions.index, model_version=versions.model,
            question=q.text, chunk_ids=[c.chunk_id for c in citations], answer=answer,
            latency_ms=(time.monotonic() - started) * 1e3, input_tokens=last.input_tokens,
            output_tokens=last.output_tokens, caller=auth.caller().name, create_time=timestamp(now_us()),
            pipeline=b.version.split("/")[1],
            sources=[fpb.Source(document_id=c.document_id, chunk_id=c.chunk_id, score=c.score, text=c.text)
                     for c in citations],
            prompt_messages=[ChatMessage(role=m.role, content=m.content) for m in prompt])
        try:
            await self._outbox.add(record)
        except Exception:  # the answer was given: a lost log line must not fail it
            log.exception("could not queue the inference record of %s", request_id)

    async def answer(self, q: Question, deadline: Deadline, request_id: str = "") -> AsyncIterator[Piece]:
        """The answer as pieces; raises DomainError (a downstream failure names its service). The
        inference record is queued for the feedback service before the last piece is given."""
        started = time.monotonic()
        self.check(q)
        b = await self.bundle(q.pipeline, deadline)
        try:
            async with contextlib.aclosing(self._answer(b, q, deadline, request_id, started)) as pieces:
                async for piece in pieces:  # closing ours closes it at once (the generation call is cancelled)
                    yield piece
        except DomainError as exc:
            await self._log_failure(request_id, q, b, exc, started)
            raise

    async def _log_failure(self, request_id: str, q: Question, b: Bundle, exc: DomainError, started: float) -> None:
        """A request the bundle failed (not the caller's bad input) is logged as an error, so
        monitoring and progressive releases see each version's error rate."""
        if self._outbox is None or not request_id or isinstance(exc, InvalidArgument):
            return
        record = fpb.InferenceRecord(
            request_id=request_id, trace_id=telemetry.current_trace_id(), pipeline_version=b.version,
            pipeline=b.version.split("/")[1], question=q.text, latency_ms=(time.monotonic() - started) * 1e3,
            caller=auth.caller().name, create_time=timestamp(now_us()), error=f"{exc.code}: {exc.message}"[:200])
        try:
            await self._outbox.add(record)
        except Exception:  # the caller gets the error either way
            log.exception("could not queue the failure record of %s", request_id)

    async def _answer(self, b: Bundle, q: Question, deadline: Deadline, request_id: str,
                      started: float) -> AsyncIterator[Piece]:
        sampling = b.params.sampling(q.sampling, q.prefix)
        max_tokens = sampling.max_tokens
        span = trace.get_current_span()
        span.set_attribute("llmops.pipeline", b.version)
        assembled = await self._assemble(b, q, max_tokens, deadline)
        versions = Versions(b.version, assembled.template_version, f"{assembled.index}@{assembled.index_version}")
        citations = [Citation(c.document_id, c.chunk_id, c.score, c.citation, c.text) for c in assembled.chunks]
        telemetry.annotate(prompt=versions.prompt, index=assembled.index, index_version=assembled.index_version,
                           prompt_tokens=assembled.prompt_tokens, route=b.route)
        request = gpb.StreamGenerateRequest(
            route=b.route, messages=[ChatMessage(role=ppb.Role.Name(m.role).removeprefix("ROLE_").lower(),
                                                     content=m.content) for m in assembled.messages],
            sampling=sampling)
        call = self._generation.StreamGenerate(request, timeout=deadline.remaining())
        first = True
        parts: list[str] = []
        try:
            async for msg in call:
                if first and msg.served_by:
                    versions.model = msg.served_by.removeprefix("registry:")
                    span.set_attribute("llmops.model", versions.model)
                parts.append(msg.delta)
                if msg.HasField("usage"):
                    last = Piece(msg.delta, citations if first else None, versions if first else None,
                                 msg.usage.input_tokens, msg.usage.output_tokens,
                                 finish_name(msg.finish_reason), last=True, sampling=sampling if first else None)
                    await self._log(request_id, q, b, versions, citations, request.messages, "".join(parts), last,
                                    started)
                    yield last
                    return
                yield Piece(msg.delta, citations if first else None, versions if first else None,
                            sampling=sampling if first else None)
                first = False
        except grpc.aio.AioRpcError as exc:
            raise self._downstream(exc, "generation", deadline) from None
        finally:
            call.cancel()  # also when our caller went away: generation stops at the next token
        raise Unavailable("the generation service ended the answer without its usage; retry", service="generation")
