"""OpenTelemetry tracing: off unless the standard OTEL_* variables ask for it.

On when OTEL_TRACES_EXPORTER names an exporter ("otlp", "console"; "none" is off) or an OTLP
endpoint is set (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), unless
OTEL_SDK_DISABLED=true. The SDK reads the rest itself: OTEL_SERVICE_NAME (default here:
partition-deps), OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER, the OTLP endpoint, headers and
certificates, OTEL_PROPAGATORS (default W3C trace context and baggage).

What is traced: every gRPC call (a server span that continues the caller's trace from its
metadata: `traceparent`), and every query on a pooled database connection (a child span of the
call that runs it; work of background threads, such as cache refreshes, starts traces of its
own). The health probe's own connection is not traced.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import psycopg
from opentelemetry.instrumentation.grpc import server_interceptor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

DEFAULT_SERVICE_NAME = "partition-deps"
_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


@dataclass(frozen=True)
class Tracing:
    """A tracer provider and what the server hooks into it."""

    provider: TracerProvider

    @classmethod
    def with_processors(cls, *processors: SpanProcessor, service_name: str = "") -> Tracing:
        """A provider feeding these processors (a test's in-memory exporter, ...)."""
        attributes = {"service.name": service_name} if service_name else {}
        provider = TracerProvider(resource=Resource.create(attributes))
        for processor in processors:
            provider.add_span_processor(processor)
        return cls(provider)

    def interceptor(self) -> grpc.ServerInterceptor:
        """A server span per call, continuing the trace in the caller's metadata."""
        interceptor: grpc.ServerInterceptor = server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider
        )
        return interceptor

    def trace_connection(self, connection: psycopg.Connection[Any]) -> None:
        """Trace this connection's queries (the pool's `configure` hook)."""
        PsycopgInstrumentor.instrument_connection(connection, tracer_provider=self.provider)

    def shutdown(self) -> None:
        """Export what is still buffered and stop."""
        self.provider.shutdown()


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The span exporters the OTEL_* variables ask for; [] when tracing is off. ValueError
    for one this server does not have."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    if not names:
        return ["otlp"] if any(environ.get(v) for v in _ENDPOINT_VARIABLES) else []
    if names == ["none"]:
        return []
    unknown = sorted(set(names) - {"otlp", "console"})
    if unknown:
        raise ValueError(f"OTEL_TRACES_EXPORTER: {unknown} not among otlp, console, none")
    return names


def from_environment(environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The tracing the OTEL_* variables configure, or None when they configure none."""
    names = exporter_names(environ)
    if not names:
        return None
    named_service = environ.get("OTEL_SERVICE_NAME") or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return Tracing.with_processors(
        *(BatchSpanProcessor(_exporter(name)) for name in names),
        service_name="" if named_service else DEFAULT_SERVICE_NAME,
    )


def _exporter(name: str) -> SpanExporter:
    if name == "otlp":
        # Imported only when asked for: it loads the OTLP protobuf modules.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    return ConsoleSpanExporter()
