"""Prometheus metrics: a server with --metrics-listen, a few calls, one scrape."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health
from prometheus_client.parser import text_string_to_metric_families

from partition_deps.api.auth import TokenTable
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    diagnostics_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import diagnostics_service_pb2 as diag_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.metrics import Metrics, MetricsInterceptor, parse_listen
from partition_deps.server import Server
from partition_deps.store.database import PoolSettings

from .builders import DAILY, WEEKLY, asset, keys, materialization, time_window, timestamp
from .conftest import serving

HOURLY = time_window("0 * * * *", fmt="%Y-%m-%d-%H:%M")
AS_OF = timestamp("2026-05-01T00:00:00+00:00")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metered(database_url: str) -> Iterator[Server]:
    with serving(
        database_url,
        pool=PoolSettings(min_size=1, max_size=3),
        workers=4,
        health_interval_seconds=0.2,
        metrics_listen="127.0.0.1:0",
    ) as server:
        yield server


def _scrape(server: Server) -> tuple[str, Samples]:
    assert server.metrics is not None
    url = f"http://127.0.0.1:{server.metrics.port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return text, samples


def _labels(service: str, method: str, code: str) -> frozenset[tuple[str, str]]:
    return frozenset(
        {
            ("grpc_service", f"partitiondeps.v1.{service}"),
            ("grpc_method", method),
            ("grpc_code", code),
        }
    )


def test_calls_latencies_pool_and_events_are_scraped(metered: Server, namespace: str) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{metered.port}") as channel:
        diagnostics = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)
        definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        events = events_service_pb2_grpc.EventsServiceStub(channel)
        queries = queries_service_pb2_grpc.QueriesServiceStub(channel)
        for _ in range(3):
            diagnostics.Ping(diag_pb.PingRequest())
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as raised:
                queries.GetUpstreamPartitions(
                    queries_pb.GetUpstreamPartitionsRequest(
                        namespace=f"{namespace}-missing", asset_key="x", selection=keys("a")
                    )
                )
            assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=namespace,
                assets=[asset("daily", DAILY), asset("weekly", WEEKLY, "daily")],
            )
        )
        batch = [materialization(f"m-{day}", "daily", f"2024-01-0{day}") for day in (1, 2)]
        events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=batch))
        events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=batch[:1]))
        # A large ask (about 20,000 hourly partitions) reads the in-memory copies: 2 rows.
        definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=f"{namespace}-hourly",
                assets=[asset("raw", HOURLY), asset("clean", HOURLY, "raw")],
            )
        )
        hourly = [materialization(f"h-{hour}", "raw", f"2024-01-01-0{hour}:00") for hour in (1, 2)]
        events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=f"{namespace}-hourly", events=hourly)
        )
        staleness_service_pb2_grpc.StalenessServiceStub(channel).GetStaleness(
            stale_pb.GetStalenessRequest(
                namespace=f"{namespace}-hourly", asset_keys=["clean"], as_of=AS_OF
            )
        )

    text, samples = _scrape(metered)
    handled = "grpc_server_handled_total"
    assert samples[handled, _labels("DiagnosticsService", "Ping", "OK")] == 3
    not_found = _labels("QueriesService", "GetUpstreamPartitions", "NOT_FOUND")
    assert samples[handled, not_found] == 2
    assert samples[handled, _labels("EventsService", "ReportEvents", "OK")] == 3
    assert samples[handled, _labels("DefinitionsService", "ApplyAssets", "OK")] == 2

    # Histograms by method and code: counts match, buckets are cumulative up to +Inf.
    assert samples["grpc_server_handling_seconds_count", not_found] == 2
    ping = _labels("DiagnosticsService", "Ping", "OK")
    assert samples["grpc_server_handling_seconds_count", ping] == 3
    assert samples["grpc_server_handling_seconds_bucket", ping | {("le", "+Inf")}] == 3
    assert samples["grpc_server_handling_seconds_sum", ping] > 0

    assert samples["partition_deps_events_ingested_total", frozenset({("result", "stored")})] == 4
    duplicate = frozenset({("result", "duplicate")})
    assert samples["partition_deps_events_ingested_total", duplicate] == 1

    assert samples["partition_deps_db_pool_connections", frozenset({("state", "max")})] == 3
    assert samples["partition_deps_db_pool_connections", frozenset({("state", "open")})] >= 1
    assert ("partition_deps_db_pool_requests_waiting", frozenset()) in samples
    assert samples["partition_deps_state_cache_rows_read_total", frozenset()] == 2
    assert "# TYPE grpc_server_handling_seconds histogram" in text


def test_metrics_addresses() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    assert parse_listen(":9464") == ("0.0.0.0", 9464)
    with pytest.raises(ValueError, match="host:port"):
        parse_listen("9464")


def test_no_metrics_endpoint_by_default(server: Server) -> None:
    assert server.metrics is None


def test_calls_refused_by_auth_are_counted_too(database_url: str, namespace: str) -> None:
    tokens = TokenTable({"secret": [namespace]})
    with serving(database_url, workers=4, metrics_listen="127.0.0.1:0", tokens=tokens) as server:
        granted = (("authorization", "Bearer secret"),)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            diagnostics = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)
            queries = queries_service_pb2_grpc.QueriesServiceStub(channel)
            with pytest.raises(grpc.RpcError) as raised:
                diagnostics.Ping(diag_pb.PingRequest())
            assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
            for _ in range(2):  # auth builds a handler per call: each is wrapped and counted
                diagnostics.Ping(diag_pb.PingRequest(), metadata=granted)
            with pytest.raises(grpc.RpcError) as raised:
                queries.GetUpstreamPartitions(
                    queries_pb.GetUpstreamPartitionsRequest(
                        namespace=f"{namespace}-other", asset_key="x", selection=keys("a")
                    ),
                    metadata=granted,
                )
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
        _, samples = _scrape(server)
    handled = "grpc_server_handled_total"
    assert samples[handled, _labels("DiagnosticsService", "Ping", "UNAUTHENTICATED")] == 1
    assert samples[handled, _labels("DiagnosticsService", "Ping", "OK")] == 2
    denied = _labels("QueriesService", "GetUpstreamPartitions", "PERMISSION_DENIED")
    assert samples[handled, denied] == 1


def test_non_blocking_health_watches_are_left_unwrapped() -> None:
    health_servicer = health.HealthServicer()
    watch: grpc.RpcMethodHandler[Any, Any] = grpc.unary_stream_rpc_method_handler(
        health_servicer.Watch
    )
    check: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(
        health_servicer.Check
    )
    interceptor = MetricsInterceptor(Metrics())

    def intercepted(handler: Any, method: str) -> Any:
        return interceptor.intercept_service(lambda _: handler, _Details(method))

    # grpc serves Watch without holding a thread only if it still sees the attribute.
    assert intercepted(watch, "/grpc.health.v1.Health/Watch").unary_stream == health_servicer.Watch
    assert intercepted(check, "/grpc.health.v1.Health/Check").unary_unary != health_servicer.Check


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()
