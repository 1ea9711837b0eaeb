"""Pipelines: the bundle parameters (checked the same way by the CLI before registering a bundle
and by the pipeline service before running one) and the client of `llmops.pipeline.v1`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from llmops.api.common.v1.chat_pb2 import ChatMessage, SamplingParams
from llmops.api.pipeline.v1 import pipeline_pb2 as pb
from llmops.api.pipeline.v1 import pipeline_pb2_grpc
from llmops.client.base import CallError, ServiceClient, operation, struct
from llmops.client.base import tracer as client_tracer
from llmops.core.errors import InvalidArgument
from llmops.core.openai_format import SAMPLING_RANGES, sampling_from_json

# What a caller may set, and the widest bounds a bundle may declare for it (OpenAI's ranges).
RANGES = SAMPLING_RANGES
PINNABLE = frozenset({*RANGES, "seed", "stop", "max_tokens"})


@dataclass(frozen=True)
class BundleParameters:
    """The `parameters` of a pipeline bundle: sampling for generation, retrieval and budget
    settings for prompt assembly, and what callers may change: a caller's sampling overrides
    stay within `bounds` (name -> [low, high]) and may not change the `pinned` ones."""

    max_tokens: int = 256  # answer length (the most a caller may ask for); reserved out of the window
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0  # 0: not seeded
    stop: tuple[str, ...] = ()
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int = 0  # 0: the prompt template's own top_k
    context_window_tokens: int = 0  # 0: the route model's window
    question_variable: str = "question"  # the template variable the question fills
    bounds: tuple[tuple[str, float, float], ...] = ()
    pinned: tuple[str, ...] = ()

    def bound(self, name: str) -> tuple[float, float]:
        return next(((lo, hi) for n, lo, hi in self.bounds if n == name), RANGES[name])

    def sampling(self, overrides: SamplingParams | None = None, prefix: str = "") -> SamplingParams:
        """The parameters an answer is generated with: the bundle's, with a caller's overrides
        (INVALID_ARGUMENT, naming the field, for a pinned one changed or a value out of bounds)."""
        used = SamplingParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                              stop=self.stop)
        if self.seed:
            used.seed = self.seed
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name) is not None:
                setattr(used, name, getattr(self, name))
        if overrides is None:
            return used
        given: dict[str, Any] = {n: getattr(overrides, n) for n in (*RANGES, "seed") if overrides.HasField(n)}
        if overrides.stop:
            given["stop"] = tuple(overrides.stop)
        if overrides.max_tokens:
            given["max_tokens"] = overrides.max_tokens
        for name, value in given.items():
            mine = getattr(used, name) if name != "stop" else tuple(used.stop)
            if name in self.pinned and not _same(value, mine):
                raise InvalidArgument(f"{name} is pinned to {mine!r} by this pipeline bundle; leave it out",
                                      field=prefix + name)
            if name in RANGES:
                lo, hi = self.bound(name)
                if not lo <= value <= hi:
                    raise InvalidArgument(f"{name} {value:g} is outside this pipeline's bounds [{lo:g}, {hi:g}]",
                                          field=prefix + name)
            if name == "max_tokens" and value > self.max_tokens:
                raise InvalidArgument(f"max_tokens {value} is above this pipeline's limit of {self.max_tokens}",
                                      field=prefix + name)
            if name == "stop":
                del used.stop[:]
                used.stop.extend(value)
            else:
                setattr(used, name, value)
        return used

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> BundleParameters:
        """INVALID_ARGUMENT names an unknown parameter or a value out of range."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidArgument(f"unknown pipeline parameter {', '.join(map(repr, unknown))}; "
                                  f"known: {', '.join(sorted(known))}")
        values: dict[str, Any] = {}
        for name in ("max_tokens", "seed", "top_k", "context_window_tokens"):
            if name in raw:
                v = raw[name]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or v != int(v) or v < 0:
                    raise InvalidArgument(f"pipeline parameter {name} must be a whole number >= 0, got {v!r}")
                values[name] = int(v)
        for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
            if name in raw:
                v = raw[name]
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise InvalidArgument(f"pipeline parameter {name} must be a number, got {v!r}")
                values[name] = float(v)
        if "stop" in raw:
            stop = raw["stop"]
            if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and 0 < len(s) <= 64
                                                                       for s in stop):
                raise InvalidArgument("pipeline parameter stop must be a list of up to 4 strings of 1-64 characters")
            values["stop"] = tuple(stop)
        if "question_variable" in raw:
            if not isinstance(raw["question_variable"], str) or not raw["question_variable"]:
                raise InvalidArgument("pipeline parameter question_variable must be a variable name")
            values["question_variable"] = raw["question_variable"]
        values.update(_parse_policy(raw))
        out = cls(**values)
        if not 1 <= out.max_tokens <= 32_768:
            raise InvalidArgument(f"pipeline parameter max_tokens must be 1-32768, got {out.max_tokens}")
        if not 0 <= out.temperature <= 2:
            raise InvalidArgument(f"pipeline parameter temperature must be 0-2, got {out.temperature:g}")
        if not 0 < out.top_p <= 1:
            raise InvalidArgument(f"pipeline parameter top_p must be in (0, 1], got {out.top_p:g}")
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(out, name) is not None and not -2 <= getattr(out, name) <= 2:
                raise InvalidArgument(f"pipeline parameter {name} must be between -2 and 2")
        return out


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and abs(float(a) - float(b)) < 1e-6
    return a == b


def _parse_policy(raw: dict[str, Any]) -> dict[str, Any]:
    """`bounds` ({name: [low, high]} within RANGES) and `pinned` (names) of a bundle."""
    out: dict[str, Any] = {}
    bounds = raw.get("bounds", {})
    if not isinstance(bounds, dict):
        raise InvalidArgument("pipeline parameter bounds must map parameter names to [low, high]")
    parsed = []
    for name, pair in bounds.items():
        if name not in RANGES:
            raise InvalidArgument(f"pipeline parameter bounds: {name!r} has no bounds; known: {', '.join(RANGES)}")
        lo_max, hi_max = RANGES[name]
        if (not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(v, (int, float)) for v in pair)
                or not lo_max <= pair[0] <= pair[1] <= hi_max):
            raise InvalidArgument(f"pipeline parameter bounds.{name} must be [low, high] within "
                                  f"[{lo_max:g}, {hi_max:g}]")
        parsed.append((name, float(pair[0]), float(pair[1])))
    if parsed:
        out["bounds"] = tuple(parsed)
    pinned = raw.get("pinned", [])
    if not isinstance(pinned, list) or not all(p in PINNABLE for p in pinned):
        raise InvalidArgument(f"pipeline parameter pinned must list names among {', '.join(sorted(PINNABLE))}")
    if pinned:
        out["pinned"] = tuple(pinned)
    return out


class PipelineClient(ServiceClient):
    service = "pipeline"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = pipeline_pb2_grpc.PipelineServiceStub(channel)

    @staticmethod
    def request(pipeline: str, question: str, *, history: list[tuple[str, str]] | None = None,
                variables: dict | None = None, max_tokens: int = 0, instructions: str = "",
                sampling: dict | None = None, stream: bool = False) -> pb.RunPipelineRequest | pb.StreamRunPipelineRequest:
        """`history`: earlier (role, text) turns, role `user` or `assistant`; `instructions`: the
        caller's, added to the template's system message; `sampling`: overrides of the bundle's
        (temperature, top_p, seed, stop, presence_penalty, frequency_penalty); `stream`: the
        StreamRunPipeline request (the same fields)."""
        params = sampling_from_json({**(sampling or {}), "max_tokens": max_tokens})
        kind = pb.StreamRunPipelineRequest if stream else pb.RunPipelineRequest
        return kind(pipeline=pipeline, question=question, variables=struct(variables), instructions=instructions,
                    history=[ChatMessage(role=r, content=c) for r, c in history or ()], sampling=params)

    @operation("run")
    def run(self, pipeline: str, question: str, *, timeout: float | None = None, **kwargs) -> pb.RunPipelineResponse:
        return self._unary(self.stub.RunPipeline, self.request(pipeline, question, **kwargs), timeout=timeout)

    def stream(self, pipeline: str, question: str, *, timeout: float | None = None,
               **kwargs) -> Iterator[pb.StreamRunPipelineResponse]:
        """Deltas as they come: the first message carries citations and versions, the last usage.
        Closing the iterator cancels the call (and everything it started downstream)."""
        span = client_tracer().start_span(f"{self.service}.stream", kind=SpanKind.CLIENT)
        token = otel_context.attach(trace.set_span_in_context(span))  # the call carries this span's context
        try:
            call = self.stub.StreamRunPipeline(self.request(pipeline, question, stream=True, **kwargs),
                                               timeout=timeout)
        finally:
            otel_context.detach(token)
        try:
            yield from call
        except grpc.RpcError as err:
            error = CallError.from_rpc(err)
            span.set_attribute("rpc.grpc.status_code", error.code.value[0])
            raise error from None
        finally:
            call.cancel()
            span.end()
