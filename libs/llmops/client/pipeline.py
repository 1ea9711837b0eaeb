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

from llmops.api.common.v1.chat_pb2 import ChatMessage
from llmops.api.pipeline.v1 import pipeline_pb2 as pb
from llmops.api.pipeline.v1 import pipeline_pb2_grpc
from llmops.client.base import CallError, ServiceClient, operation, struct
from llmops.client.base import tracer as client_tracer
from llmops.core.errors import InvalidArgument


@dataclass(frozen=True)
class BundleParameters:
    """The `parameters` of a pipeline bundle: sampling for generation, retrieval and budget
    settings for prompt assembly."""

    max_tokens: int = 256  # answer length; also reserved out of the context window
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    top_k: int = 0  # 0: the prompt template's own top_k
    context_window_tokens: int = 0  # 0: the route model's window
    question_variable: str = "question"  # the template variable the question fills

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
        for name in ("temperature", "top_p"):
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
        out = cls(**values)
        if not 1 <= out.max_tokens <= 32_768:
            raise InvalidArgument(f"pipeline parameter max_tokens must be 1-32768, got {out.max_tokens}")
        if not 0 <= out.temperature <= 2:
            raise InvalidArgument(f"pipeline parameter temperature must be 0-2, got {out.temperature:g}")
        if not 0 < out.top_p <= 1:
            raise InvalidArgument(f"pipeline parameter top_p must be in (0, 1], got {out.top_p:g}")
        return out


class PipelineClient(ServiceClient):
    service = "pipeline"

    def __init__(self, channel):
        super().__init__(channel)
        self.stub = pipeline_pb2_grpc.PipelineServiceStub(channel)

    @staticmethod
    def request(pipeline: str, question: str, *, history: list[tuple[str, str]] | None = None,
                variables: dict | None = None, max_tokens: int = 0,
                stream: bool = False) -> pb.RunPipelineRequest | pb.StreamRunPipelineRequest:
        """`history`: earlier (role, text) turns, role `user` or `assistant`; `stream`: the
        StreamRunPipeline request (the same fields)."""
        return (pb.StreamRunPipelineRequest if stream else pb.RunPipelineRequest)(pipeline=pipeline, question=question, variables=struct(variables),
                                     history=[ChatMessage(role=r, content=c) for r, c in history or ()],
                                     max_tokens=max_tokens)

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
