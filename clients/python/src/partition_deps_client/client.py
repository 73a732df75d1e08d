"""`Client`: one gRPC channel to partition-deps with sensible defaults, and typed helpers.

What it adds to the generated stubs (the same policy the Go and TypeScript clients install):

- a default deadline for every call (`timeout`, seconds); a call's own `timeout=` wins. It is set
  by a client interceptor, not by the service config's `timeout`: grpcio applies that one up to
  about two seconds early (grpc/grpc#34547, #40633; measured here with grpcio 1.85);
- retries of UNAVAILABLE (the server answers it while its database is down, before doing any
  work) with exponential backoff, `max_attempts` attempts in all, through the channel's gRPC
  service config. Event reports are safe to retry: every event carries an idempotency key.
  No other code is retried (`errors.error_details` tells which are);
- a bearer token (`token=`) sent as `authorization: Bearer ...` on every call, and TLS or mutual
  TLS (`tls=Tls(...)`); default: plaintext, for loopback and sidecars;
- the current OpenTelemetry trace context on every call (`traceparent`, through the global
  propagator) when `opentelemetry-api` is installed (extra `tracing`);
- typed helpers for every RPC, and `iter_*` helpers that follow page tokens.

Defaults: timeout 10 s, max_attempts 4, backoff from 0.1 s doubling up to 2 s.

The stubs stay reachable (`client.definitions`, `.events`, `.queries`, `.staleness`,
`.diagnostics`) for anything the helpers do not cover.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

import grpc

from partition_deps_client.builders import keys
from partition_deps_client.paging import pages
from partition_deps_client.pb import (
    definitions,
    definitions_grpc,
    diagnostics,
    diagnostics_grpc,
    events,
    events_grpc,
    partitions,
    queries,
    queries_grpc,
    staleness,
    staleness_grpc,
)
from partition_deps_client.tracing import trace_metadata

SERVICES = (
    "partitiondeps.v1.DefinitionsService",
    "partitiondeps.v1.EventsService",
    "partitiondeps.v1.QueriesService",
    "partitiondeps.v1.DiagnosticsService",
    "partitiondeps.v1.StalenessService",
)


def service_config(*, max_attempts: int, initial_backoff: float, max_backoff: float) -> str:
    """The gRPC service config (JSON) of a `Client` with these settings: the retry policy."""
    method: dict[str, Any] = {"name": [{"service": service} for service in SERVICES]}
    if max_attempts > 1:
        method["retryPolicy"] = {
            "maxAttempts": max_attempts,
            "initialBackoff": f"{initial_backoff:.9g}s",
            "maxBackoff": f"{max_backoff:.9g}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method]})


@dataclass(frozen=True)
class Tls:
    """TLS settings (PEM bytes). `root_certificates` None: the system's trust store. With
    `certificate_chain` and `private_key`: mutual TLS, the client presents that certificate."""

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None

    @classmethod
    def files(
        cls,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
    ) -> Tls:
        """TLS settings from PEM files (any may be None)."""
        return cls(*(Path(path).read_bytes() if path else None for path in (ca, cert, key)))

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            self.root_certificates, self.private_key, self.certificate_chain
        )


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class _CallDefaults(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Gives every call without a timeout the client's default one, and the client's metadata
    (the bearer token)."""

    def __init__(self, timeout: float, metadata: Sequence[tuple[str, str]]) -> None:
        self._timeout = timeout
        self._metadata = tuple(metadata)

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return _CallDetails(  # type: ignore[return-value]
            details.method,
            self._timeout if details.timeout is None else details.timeout,
            (*(details.metadata or ()), *self._metadata, *trace_metadata()),
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(self._details(details), requests)


@dataclass(frozen=True)
class Window:
    """A time partition's key and its [start, end) instants."""

    partition_key: str
    start: datetime
    end: datetime


def _instant(timestamp: Any) -> datetime:
    return datetime.fromtimestamp(timestamp.seconds + timestamp.nanos / 1e9, tz=UTC)


class Client:
    """A client for one partition-deps server (`"host:port"` or any gRPC target)."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 10.0,
        max_attempts: int = 4,
        initial_backoff: float = 0.1,
        max_backoff: float = 2.0,
        token: str | None = None,
        tls: Tls | None = None,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        config = service_config(
            max_attempts=max_attempts,
            initial_backoff=initial_backoff,
            max_backoff=max_backoff,
        )
        channel_options = [
            ("grpc.service_config", config),
            ("grpc.enable_retries", 1),
            *options,
        ]
        self._raw_channel: grpc.Channel = (
            grpc.secure_channel(target, tls.credentials(), options=channel_options)
            if tls is not None
            else grpc.insecure_channel(target, options=channel_options)
        )
        metadata = [("authorization", f"Bearer {token}")] if token else []
        self.channel = grpc.intercept_channel(self._raw_channel, _CallDefaults(timeout, metadata))
        self.definitions = definitions_grpc.DefinitionsServiceStub(self.channel)
        self.events = events_grpc.EventsServiceStub(self.channel)
        self.queries = queries_grpc.QueriesServiceStub(self.channel)
        self.diagnostics = diagnostics_grpc.DiagnosticsServiceStub(self.channel)
        self.staleness = staleness_grpc.StalenessServiceStub(self.channel)

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def ping(self, *, timeout: float | None = None) -> None:
        self.diagnostics.Ping(diagnostics.PingRequest(), timeout=timeout)

    def apply_assets(
        self,
        namespace: str,
        assets: Iterable[definitions.Asset],
        *,
        replace_all: bool = False,
        expected_generation: int | None = None,
        timeout: float | None = None,
    ) -> definitions.ApplyAssetsResponse:
        request = definitions.ApplyAssetsRequest(
            namespace=namespace, assets=list(assets), replace_all=replace_all
        )
        if expected_generation is not None:
            request.expected_generation = expected_generation
        return self.definitions.ApplyAssets(request, timeout=timeout)

    def report_events(
        self, namespace: str, batch: Iterable[events.Event], *, timeout: float | None = None
    ) -> events.ReportEventsResponse:
        return self.events.ReportEvents(
            events.ReportEventsRequest(namespace=namespace, events=list(batch)), timeout=timeout
        )

    def upstream_partitions(
        self,
        namespace: str,
        asset_key: str,
        partition_keys: Sequence[str],
        *,
        upstream_asset_keys: Sequence[str] = (),
        as_of: datetime | None = None,
        include_keys: bool = True,
        timeout: float | None = None,
    ) -> queries.GetUpstreamPartitionsResponse:
        """Which partitions of each upstream asset these partitions of `asset_key` need."""
        request = queries.GetUpstreamPartitionsRequest(
            namespace=namespace,
            asset_key=asset_key,
            selection=keys(*partition_keys),
            upstream_asset_keys=list(upstream_asset_keys),
            key_paging=queries.KeyPaging(include_keys=include_keys),
        )
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.queries.GetUpstreamPartitions(request, timeout=timeout)

    def downstream_partitions(
        self,
        namespace: str,
        asset_key: str,
        partition_keys: Sequence[str],
        *,
        downstream_asset_keys: Sequence[str] = (),
        as_of: datetime | None = None,
        include_keys: bool = True,
        timeout: float | None = None,
    ) -> queries.GetDownstreamPartitionsResponse:
        """Which partitions of each downstream asset use these partitions of `asset_key`."""
        request = queries.GetDownstreamPartitionsRequest(
            namespace=namespace,
            asset_key=asset_key,
            selection=keys(*partition_keys),
            downstream_asset_keys=list(downstream_asset_keys),
            key_paging=queries.KeyPaging(include_keys=include_keys),
        )
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.queries.GetDownstreamPartitions(request, timeout=timeout)

    def time_window(
        self, namespace: str, asset_key: str, partition_key: str, *, timeout: float | None = None
    ) -> Window:
        """The [start, end) instants of a partition of a stored time-partitioned asset."""
        response = self.queries.GetTimeWindow(
            queries.GetTimeWindowRequest(
                source=_stored(namespace, asset_key), partition_key=partition_key
            ),
            timeout=timeout,
        )
        return Window(partition_key, _instant(response.start_time), _instant(response.end_time))

    def _staleness_request(
        self,
        namespace: str,
        asset_keys: Sequence[str],
        partition_keys: Sequence[str] | None,
        as_of: datetime | None,
        include_fresh: bool,
        transitive: bool,
        page_size: int,
    ) -> staleness.GetStalenessRequest:
        request = staleness.GetStalenessRequest(
            namespace=namespace,
            asset_keys=list(asset_keys),
            include_fresh=include_fresh,
            options=staleness.StalenessOptions(transitive=transitive),
            page_size=page_size,
        )
        if partition_keys is not None:
            request.selection.CopyFrom(keys(*partition_keys))
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return request

    def stale_partitions(
        self,
        namespace: str,
        asset_keys: Sequence[str] = (),
        partition_keys: Sequence[str] | None = None,
        *,
        as_of: datetime | None = None,
        include_fresh: bool = False,
        transitive: bool = False,
        timeout: float | None = None,
    ) -> staleness.GetStalenessResponse:
        """FRESH/STALE/MISSING with causes: every asset, or `asset_keys` (one asset may narrow
        to `partition_keys`). The first page; `iter_stale_partitions` follows the pages."""
        request = self._staleness_request(
            namespace, asset_keys, partition_keys, as_of, include_fresh, transitive, 0
        )
        return self.staleness.GetStaleness(request, timeout=timeout)

    def iter_stale_partitions(
        self,
        namespace: str,
        asset_keys: Sequence[str] = (),
        partition_keys: Sequence[str] | None = None,
        *,
        as_of: datetime | None = None,
        include_fresh: bool = False,
        transitive: bool = False,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[staleness.PartitionStaleness]:
        """The partitions of `stale_partitions`, page after page (all at one `as_of`: the
        server refuses a next page with EVENTS_CHANGED if events arrived in between)."""
        request = self._staleness_request(
            namespace, asset_keys, partition_keys, as_of, include_fresh, transitive, page_size
        )
        for page in pages(self.staleness.GetStaleness, request, timeout=timeout):
            yield from page.partitions

    def plan_runs(
        self,
        namespace: str,
        asset_keys: Sequence[str] = (),
        *,
        as_of: datetime | None = None,
        catch_up: bool = False,
        limit: int = 0,
        transitive: bool = False,
        include_keys: bool = False,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[staleness.PlannedRun]:
        """The runs that should start now, in dependency order, page after page."""
        request = staleness.PlanRunsRequest(
            namespace=namespace,
            asset_keys=list(asset_keys),
            catch_up=catch_up,
            limit=limit,
            options=staleness.StalenessOptions(transitive=transitive),
            include_keys=include_keys,
            page_size=page_size,
        )
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        for page in pages(self.staleness.PlanRuns, request, timeout=timeout):
            yield from page.runs

    def compute_upstream_partitions(
        self,
        upstream: partitions.PartitionsDefinition | None,
        downstream: partitions.PartitionsDefinition | None,
        partition_keys: Sequence[str],
        *,
        mapping: partitions.PartitionMapping | None = None,
        as_of: datetime | None = None,
        timeout: float | None = None,
    ) -> queries.UpstreamPartitions:
        """The inline form: definitions and mapping travel in the request, nothing is stored."""
        request = queries.ComputeUpstreamPartitionsRequest(
            selection=keys(*partition_keys), key_paging=queries.KeyPaging(include_keys=True)
        )
        if upstream is not None:
            request.upstream.CopyFrom(upstream)
        if downstream is not None:
            request.downstream.CopyFrom(downstream)
        if mapping is not None:
            request.partition_mapping.CopyFrom(mapping)
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.queries.ComputeUpstreamPartitions(request, timeout=timeout).result

    def compute_downstream_partitions(
        self,
        upstream: partitions.PartitionsDefinition | None,
        downstream: partitions.PartitionsDefinition | None,
        partition_keys: Sequence[str],
        *,
        mapping: partitions.PartitionMapping | None = None,
        as_of: datetime | None = None,
        timeout: float | None = None,
    ) -> queries.DownstreamPartitions:
        """The inline form of `downstream_partitions`: nothing is stored."""
        request = queries.ComputeDownstreamPartitionsRequest(
            selection=keys(*partition_keys), key_paging=queries.KeyPaging(include_keys=True)
        )
        if upstream is not None:
            request.upstream.CopyFrom(upstream)
        if downstream is not None:
            request.downstream.CopyFrom(downstream)
        if mapping is not None:
            request.partition_mapping.CopyFrom(mapping)
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.queries.ComputeDownstreamPartitions(request, timeout=timeout).result

    def iter_partition_keys(
        self,
        namespace: str,
        asset_key: str,
        *,
        as_of: datetime | None = None,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[str]:
        """Every partition key of a stored asset at `as_of`, page after page."""
        request = queries.ListPartitionsRequest(
            source=_stored(namespace, asset_key), page_size=page_size
        )
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        for page in pages(self.queries.ListPartitions, request, timeout=timeout):
            yield from page.partition_keys

    def partition_key_for_timestamp(
        self,
        namespace: str,
        asset_key: str,
        at: datetime,
        *,
        end_closed: bool = False,
        as_of: datetime | None = None,
        timeout: float | None = None,
    ) -> str:
        """The key of the partition of a stored time-partitioned asset whose window holds `at`."""
        request = queries.GetPartitionKeyForTimestampRequest(
            source=_stored(namespace, asset_key), end_closed=end_closed
        )
        request.timestamp.FromDatetime(at)
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.queries.GetPartitionKeyForTimestamp(request, timeout=timeout).partition_key

    def get_asset(
        self, namespace: str, asset_key: str, *, timeout: float | None = None
    ) -> definitions.Asset:
        return self.definitions.GetAsset(
            definitions.GetAssetRequest(namespace=namespace, asset_key=asset_key), timeout=timeout
        ).asset

    def iter_assets(
        self, namespace: str, *, page_size: int = 0, timeout: float | None = None
    ) -> Iterator[definitions.Asset]:
        """Every asset of the namespace, page after page."""
        request = definitions.ListAssetsRequest(namespace=namespace, page_size=page_size)
        for page in pages(self.definitions.ListAssets, request, timeout=timeout):
            yield from page.assets

    def delete_asset(
        self, namespace: str, asset_key: str, *, timeout: float | None = None
    ) -> definitions.DeleteAssetResponse:
        return self.definitions.DeleteAsset(
            definitions.DeleteAssetRequest(namespace=namespace, asset_key=asset_key),
            timeout=timeout,
        )

    def add_dynamic_partitions(
        self,
        namespace: str,
        definition_name: str,
        partition_keys: Sequence[str],
        *,
        timeout: float | None = None,
    ) -> definitions.AddDynamicPartitionsResponse:
        return self.definitions.AddDynamicPartitions(
            definitions.AddDynamicPartitionsRequest(
                namespace=namespace,
                definition_name=definition_name,
                partition_keys=list(partition_keys),
            ),
            timeout=timeout,
        )

    def delete_dynamic_partitions(
        self,
        namespace: str,
        definition_name: str,
        partition_keys: Sequence[str],
        *,
        timeout: float | None = None,
    ) -> definitions.DeleteDynamicPartitionsResponse:
        return self.definitions.DeleteDynamicPartitions(
            definitions.DeleteDynamicPartitionsRequest(
                namespace=namespace,
                definition_name=definition_name,
                partition_keys=list(partition_keys),
            ),
            timeout=timeout,
        )

    def iter_dynamic_partitions(
        self,
        namespace: str,
        definition_name: str,
        *,
        show_deleted: bool = False,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[definitions.DynamicPartition]:
        """Every key of a dynamic partitions definition, page after page."""
        request = definitions.ListDynamicPartitionsRequest(
            namespace=namespace,
            definition_name=definition_name,
            show_deleted=show_deleted,
            page_size=page_size,
        )
        for page in pages(self.definitions.ListDynamicPartitions, request, timeout=timeout):
            yield from page.partitions

    def stream_events(
        self,
        namespace: str,
        batches: Iterable[Iterable[events.Event]],
        *,
        timeout: float | None = None,
    ) -> events.StreamEventsResponse:
        """Many batches on one call (a client stream); the counts are for all of them."""
        return self.events.StreamEvents(
            (
                events.StreamEventsRequest(namespace=namespace, events=list(batch))
                for batch in batches
            ),
            timeout=timeout,
        )


def _stored(namespace: str, asset_key: str) -> queries.DefinitionSource:
    return queries.DefinitionSource(
        asset=queries.AssetReference(namespace=namespace, asset_key=asset_key)
    )
