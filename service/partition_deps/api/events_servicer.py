"""EventsService: batches and streams of events, validated against the namespace's assets;
the runs in progress."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import grpc

from partition_deps.api import convert, limits, paging, validate
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as pb
from partition_deps.api.handlers import Method, StreamMethod
from partition_deps.domain import events
from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.errors import InvalidPartitionKey
from partition_deps.domain.partitions import first_unrecordable_key
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound
from partition_deps.store.events import EventsRepository, IngestResult
from partition_deps.store.read_routing import ReadRouter

SERVICE_NAME = "partitiondeps.v1.EventsService"


# Partition keys of a batch to check, by (asset, event time): (event order, key, field).
_Pending = dict[tuple[str, datetime], list[tuple[tuple[int, int], str, str]]]


def _check_target(
    snapshot: NamespaceSnapshot,
    asset_key: str,
    partition_key: str | None,
    field: str,
    event_time: datetime,
    order: tuple[int, int],
    pending: _Pending,
) -> None:
    """Refuse an event for an unknown asset, or a key where the asset has none (or none where
    it has); its partition key is checked with the others of its asset and time."""
    asset = snapshot.assets.get(asset_key)
    if asset is None:
        # The same reason as a query's unknown asset: one reason per situation.
        raise AssetNotFound(
            f"asset {asset_key!r} does not exist in {snapshot.namespace!r}", f"{field}.asset_key"
        )
    if (asset.partitions is None) != (partition_key is None):
        expectation = "has no partitions" if asset.partitions is None else "is partitioned"
        raise ApiError(
            f"asset {asset_key!r} {expectation}",
            f"{field}.partition_key",
            reason="PARTITION_KEY_MISMATCH",
        )
    if partition_key is not None:
        pending.setdefault((asset_key, event_time), []).append(
            (order, partition_key, f"{field}.partition_key")
        )


def _check_partitions(snapshot: NamespaceSnapshot, pending: _Pending) -> None:
    """Refuse the batch if an event names a key that is not a partition and never will be
    (malformed, off the cron, excluded, outside start and end, a dynamic key not added or
    deleted): queries refuse such keys, so storing them would keep state nothing can read. A
    time window that had not ended at the event's time is accepted, as Dagster records it (a
    run writing today's partition): its key is a partition once the window ends. The first
    refused event of the batch is the one named."""
    refusals: list[tuple[tuple[int, int], str, str]] = []
    for (asset_key, event_time), items in pending.items():
        definition = snapshot.assets[asset_key].partitions
        assert definition is not None  # keys are pending for partitioned assets only
        keys = [key for _, key, _ in items]
        bad = first_unrecordable_key(
            definition, keys, Evaluation(event_time, snapshot.dynamic_keys)
        )
        if bad is not None:
            order, _, field = items[bad[0]]
            message = f"not a partition of asset {asset_key!r} at the event's time: {bad[1]}"
            refusals.append((order, field, message))
    if refusals:
        _, field, message = min(refusals)
        raise InvalidPartitionKey(message, field)


def events_from_proto(
    snapshot: NamespaceSnapshot, messages: Sequence[pb.Event], field: str = "events"
) -> list[events.Event]:
    converted: list[events.Event] = []
    pending: _Pending = {}
    for index, message in enumerate(messages):
        at = f"{field}[{index}]"
        event = convert.event_from_proto(message, at)
        match event:
            case events.Materialization() | events.Observation():
                _check_target(
                    snapshot,
                    event.asset_key,
                    event.partition_key,
                    f"{at}.{message.WhichOneof('kind')}",
                    event.event_time,
                    (index, 0),
                    pending,
                )
            case events.RunStarted():
                for position, target in enumerate(event.targets):
                    _check_target(
                        snapshot,
                        target.asset_key,
                        target.partition_key,
                        f"{at}.run_started.targets[{position}]",
                        event.event_time,
                        (index, position),
                        pending,
                    )
            case (
                events.RunHeartbeat()
                | events.RunFailed()
                | events.RunSucceeded()
                | events.RunCanceled()
            ):
                pass
        converted.append(event)
    _check_partitions(snapshot, pending)
    return converted


# A ListRuns page token: (the as_of of the first page, ISO text; the last run id listed).
_RUNS_TOKEN_KINDS = (str, str)


class EventsServicer:
    def __init__(
        self,
        repository: EventsRepository,
        reads: ReadRouter,
        cache: DefinitionsCache,
        tokens: paging.PageTokens,
    ) -> None:
        """`repository` writes on the primary; `reads` routes the listing of runs."""
        self._repository = repository
        self._reads = reads
        self._cache = cache
        self._tokens = tokens

    def methods(self) -> list[Method | StreamMethod]:
        return [
            Method("ReportEvents", pb.ReportEventsRequest, self.report_events),
            StreamMethod("StreamEvents", pb.StreamEventsRequest, self.stream_events),
            Method("ListRuns", pb.ListRunsRequest, self.list_runs),
        ]

    def _ingest(self, namespace: str, messages: Sequence[pb.Event]) -> IngestResult:
        limits.check_count(
            len(messages), limits.MAX_EVENTS_PER_REQUEST, "events", "events", "TOO_MANY_EVENTS"
        )
        snapshot = self._cache.snapshot(validate.required_name(namespace, "namespace"))
        return self._repository.ingest(snapshot.namespace_id, events_from_proto(snapshot, messages))

    def report_events(
        self, request: pb.ReportEventsRequest, context: grpc.ServicerContext
    ) -> pb.ReportEventsResponse:
        result = self._ingest(request.namespace, request.events)
        return pb.ReportEventsResponse(
            stored_count=result.stored,
            duplicate_count=result.duplicates,
            event_position=result.event_position,
        )

    def stream_events(
        self, requests: Iterator[pb.StreamEventsRequest], context: grpc.ServicerContext
    ) -> pb.StreamEventsResponse:
        stored = duplicates = position = 0
        for request in requests:
            result = self._ingest(request.namespace, request.events)
            stored += result.stored
            duplicates += result.duplicates
            position = result.event_position
        return pb.StreamEventsResponse(
            stored_count=stored, duplicate_count=duplicates, event_position=position
        )

    def list_runs(
        self, request: pb.ListRunsRequest, context: grpc.ServicerContext
    ) -> pb.ListRunsResponse:
        snapshot = self._cache.snapshot(validate.required_name(request.namespace, "namespace"))
        requested = paging.requested_page(request)
        token = self._tokens.continued(requested, _RUNS_TOKEN_KINDS)
        if token is None:
            as_of, after = convert.as_of_from_request(request), ""
        else:  # signed by this service: an instant it wrote itself
            as_of, after = datetime.fromisoformat(str(token[0])), str(token[1])
        # One more than a page: whether another page follows.
        runs = self._reads.events(
            snapshot.namespace_id,
            convert.read_floor(request),
            lambda events: events.runs_in_progress(
                snapshot.namespace_id, as_of, after, requested.size + 1
            ),
        )
        response = pb.ListRunsResponse()
        convert.set_instant(response.as_of, as_of)
        for run in runs[: requested.size]:
            listed = response.runs.add(run_id=run.run_id)
            for target in run.targets:
                listed.targets.add(asset_key=target.asset_key, partition_key=target.partition_key)
            if run.started_at is not None:
                convert.set_instant(listed.started_time, run.started_at)
            convert.set_instant(listed.lease_expiry_time, run.lease_expires_at)
            if run.last_heartbeat_at is not None:
                convert.set_instant(listed.last_heartbeat_time, run.last_heartbeat_at)
        if len(runs) > requested.size:
            response.next_page_token = self._tokens.encode(
                [as_of.isoformat(), runs[requested.size - 1].run_id], requested.binding
            )
        return response
