"""OpenTelemetry setup shared by every process.

`service.name` identifies the process in traces. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans
go over OTLP (gRPC by default, HTTP when `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`) to any
collector; otherwise to the local span store that `llmops trace` reads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from llmops.core import localenv
from llmops.core.spanstore import SqliteSpanExporter

log = logging.getLogger(__name__)


def trace_store_path() -> Path:
    return Path(os.environ.get("LLMOPS_TRACE_DB") or localenv.home() / "traces.db")


def _exporter() -> tuple[SpanExporter, str]:
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        if protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(), f"OTLP ({protocol})"
    path = trace_store_path()
    return SqliteSpanExporter(path), f"local span store {path}"


def create_tracer_provider(service_name: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """A provider for `service_name` exporting in batches (never on the request path)."""
    resource = Resource.create({"service.name": service_name, "service.namespace": "llmops"})
    provider = TracerProvider(resource=resource)
    if exporter is None:
        exporter, where = _exporter()
        log.info("traces of %s go to %s", service_name, where)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    return provider


def setup_tracing(service_name: str) -> TracerProvider:
    """Create the provider and make it the process-wide one (call once, in main)."""
    provider = create_tracer_provider(service_name)
    trace.set_tracer_provider(provider)
    return provider


def flush(timeout_ms: int = 2000) -> None:
    """Export this process's finished spans now (before reading a trace back)."""
    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush(timeout_ms)


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def annotate(**attrs) -> None:
    """Set `llmops.<name>` attributes on the current span (the servicers' typed span attributes)."""
    span = trace.get_current_span()
    for k, v in attrs.items():
        span.set_attribute(f"llmops.{k}", v)
