"""`Client`: one gRPC channel to partition-deps with sensible defaults, and typed helpers.

What it adds to the generated stubs (the same policy the Go and TypeScript clients install):

- a default deadline for every call (`timeout`, seconds); a call's own `timeout=` wins. It is set
  by a client interceptor, not by the service config's `timeout`: grpcio applies that one up to
  about two seconds early (grpc/grpc#34547, #40633; measured here with grpcio 1.85);
- retries of UNAVAILABLE (the server answers it while its database is down, before doing any
  work) with exponential backoff, `max_attempts` attempts in all, through the channel's gRPC
  service config. Event reports are safe to retry: every event carries an idempotency key.

The stubs stay reachable (`client.definitions`, `.events`, `.queries`, `.staleness`,
`.diagnostics`) for anything the helpers do not cover.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple

import grpc

from partition_deps_client.builders import keys
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


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: Any


class _DefaultDeadline(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor):
    """Gives every call without a timeout the client's default one."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        if details.timeout is not None:
            return details
        return _CallDetails(  # type: ignore[return-value]
            details.method,
            self._timeout,
            details.metadata,
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
        credentials: grpc.ChannelCredentials | None = None,
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
            grpc.secure_channel(target, credentials, options=channel_options)
            if credentials is not None
            else grpc.insecure_channel(target, options=channel_options)
        )
        self.channel = grpc.intercept_channel(self._raw_channel, _DefaultDeadline(timeout))
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
                source=queries.DefinitionSource(
                    asset=queries.AssetReference(namespace=namespace, asset_key=asset_key)
                ),
                partition_key=partition_key,
            ),
            timeout=timeout,
        )
        return Window(partition_key, _instant(response.start_time), _instant(response.end_time))

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
        to `partition_keys`). One page; page on with `client.staleness.GetStaleness`."""
        request = staleness.GetStalenessRequest(
            namespace=namespace,
            asset_keys=list(asset_keys),
            include_fresh=include_fresh,
            options=staleness.StalenessOptions(transitive=transitive),
        )
        if partition_keys is not None:
            request.selection.CopyFrom(keys(*partition_keys))
        if as_of is not None:
            request.as_of.FromDatetime(as_of)
        return self.staleness.GetStaleness(request, timeout=timeout)

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
