"""Tracing: one trace from the Python client into the server, down to the database query.

The client runs in a process of its own (its stubs and the service's register the same proto
files, which one process cannot hold twice) with the OpenTelemetry SDK; the server here records
its spans in memory.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from partition_deps import tracing
from partition_deps.server import Server

from .conftest import serving

REPO = Path(__file__).resolve().parents[2]

CLIENT = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from partition_deps_client import Client, asset, daily

trace.set_tracer_provider(TracerProvider())
address, namespace = sys.argv[1:]
with trace.get_tracer("scheduler").start_as_current_span("tick") as span, Client(address) as pd:
    pd.apply_assets(namespace, [asset("daily", daily("2024-01-01"))])
    context = span.get_span_context()
print(json.dumps({"trace_id": context.trace_id, "span_id": context.span_id}))
"""


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced_server(database_url: str, exporter: InMemorySpanExporter) -> Iterator[Server]:
    with serving(
        database_url, tracing.Tracing.with_processors(SimpleSpanProcessor(exporter)), memo_entries=0
    ) as server:
        yield server


def _children(spans: tuple[ReadableSpan, ...], parent: ReadableSpan) -> list[ReadableSpan]:
    parent_id = parent.context.span_id if parent.context else None
    return [span for span in spans if span.parent and span.parent.span_id == parent_id]


def test_one_trace_from_the_python_client_to_the_database_query(
    traced_server: Server, exporter: InMemorySpanExporter, namespace: str
) -> None:
    run = subprocess.run(
        [sys.executable, "-c", CLIENT, f"127.0.0.1:{traced_server.port}", namespace],
        env={"PYTHONPATH": str(REPO / "clients" / "python" / "src"), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    caller = json.loads(run.stdout)
    traced_server.stop()  # every call has finished: its spans are all recorded
    spans = exporter.get_finished_spans()

    [call] = [
        span
        for span in spans
        if span.kind == SpanKind.SERVER
        and span.name == "/partitiondeps.v1.DefinitionsService/ApplyAssets"
    ]
    assert call.context is not None
    assert call.context.trace_id == caller["trace_id"]  # the client's trace, continued
    assert call.parent is not None
    assert call.parent.span_id == caller["span_id"]
    queries = [
        span
        for span in _children(spans, call)
        if (span.attributes or {}).get("db.system") == "postgresql"
    ]
    assert queries, [span.name for span in spans]
    assert {span.context.trace_id for span in queries if span.context} == {caller["trace_id"]}


def test_tracing_is_off_unless_otel_variables_ask() -> None:
    assert tracing.from_environment({}) is None
    assert tracing.from_environment({"OTEL_SERVICE_NAME": "x"}) is None
    assert tracing.from_environment({"OTEL_TRACES_EXPORTER": "none"}) is None
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}
    assert tracing.exporter_names(endpoint) == ["otlp"]
    assert tracing.exporter_names({**endpoint, "OTEL_SDK_DISABLED": "true"}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "console,otlp"}) == [
        "console",
        "otlp",
    ]
    with pytest.raises(ValueError, match="zipkin"):
        tracing.exporter_names({"OTEL_TRACES_EXPORTER": "zipkin"})
    configured = tracing.from_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert configured is not None
    assert configured.provider.resource.attributes["service.name"] == "partition-deps"
    configured.shutdown()
