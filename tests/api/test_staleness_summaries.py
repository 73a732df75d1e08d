"""GetStaleness with summary_only: the summaries of whole answers, from the stored partitions.

A seeded random history over a graph of every kind of definition (time windows whose keys parse
back to their windows and others, static, dynamic with a deleted key, multi, unpartitioned, an
observable source), with runs in progress, runs whose lease expired and a code version change,
is asked at instants before, at and after its events, under each staleness option: the
summary-only answer carries exactly the summaries of the whole answer.
"""

from __future__ import annotations

import itertools
import random

import grpc
import pytest

from partition_deps.api import limits
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import (
    StalenessServiceStub,
)

from .builders import DAILY, asset, keys, time_window, timestamp
from .conftest import Stubs
from .errors import error_info, field_violations

EVENTS_AT = timestamp("2024-01-15T00:30:00+00:00")
AS_OFS = ("2024-01-12T06:30:00+00:00", "2024-01-15T00:45:00+00:00", "2024-01-16T00:00:00+00:00")
OPTIONS = (
    stale_pb.StalenessOptions(),
    stale_pb.StalenessOptions(transitive=True),
    stale_pb.StalenessOptions(dagster_cutoff=True),
    stale_pb.StalenessOptions(semantics=stale_pb.STALENESS_SEMANTICS_DAGSTER),
)
# Keys parse back to their windows (UTC, minutes in the key): positions come from windows.
HOURLY = time_window("0 * * * *", "2023-04-01T00:00:00", fmt="%Y-%m-%d-%H:%M")
# Keys without the hour, in a time zone: positions come from the listed keys.
PARIS_DAILY = time_window("0 0 * * *", "2023-12-01T00:00:00", timezone="Europe/Paris")
WEEKDAYS = time_window("0 0 * * *", "2023-12-01T00:00:00")
WEEKDAYS.time_window.exclusions.add(cron_schedule="0 0 * * 6,0")
REGIONS = pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=["us", "eu", "apac"]))
CUSTOMERS = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
DATE_REGION = pb.PartitionsDefinition(
    multi=pb.MultiPartitions(
        dimensions=[
            pb.Dimension(name="date", partitions=DAILY),
            pb.Dimension(name="region", partitions=REGIONS),
        ]
    )
)
_ids = itertools.count()


@pytest.fixture(scope="module")
def staleness(stubs: Stubs) -> StalenessServiceStub:
    return StalenessServiceStub(stubs.channel)


def _graph() -> list[defs_pb.Asset]:
    feed = asset("feed", HOURLY)
    feed.observable_source = True
    return [
        asset("hourly", HOURLY),
        asset("hourly_clean", HOURLY, "hourly", "config"),
        asset("hourly_report", HOURLY, "hourly_clean", "feed"),
        feed,
        asset("config"),
        asset("daily", DAILY),
        asset("daily_lagged", DAILY, ("daily", _lag())),
        asset("paris", PARIS_DAILY),
        asset("weekdays", WEEKDAYS),
        asset("regions", REGIONS),
        asset("regional", DATE_REGION, "daily", "regions"),
        asset("customers", CUSTOMERS),
        asset("scores", CUSTOMERS, "customers"),
        asset("summary", None, "daily"),
    ]


def _lag() -> pb.PartitionMapping:
    return pb.PartitionMapping(time_window=pb.TimeWindowMapping(start_offset=-1, end_offset=0))


def _listed(stubs: Stubs, namespace: str, asset_key: str) -> list[str | None]:
    found: list[str | None] = []
    token = ""
    while True:
        answer = stubs.queries.ListPartitions(
            queries_pb.ListPartitionsRequest(
                source=queries_pb.DefinitionSource(
                    asset=queries_pb.AssetReference(namespace=namespace, asset_key=asset_key)
                ),
                as_of=EVENTS_AT,
                page_size=10_000,
                page_token=token,
            )
        )
        found.extend(answer.partition_keys)
        token = answer.next_page_token
        if not token:
            return found


def _report(stubs: Stubs, namespace: str, events: list[events_pb.Event]) -> None:
    stubs.events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=events))


def _materialized(asset_key: str, partition_key: str) -> events_pb.Event:
    return events_pb.Event(
        idempotency_key=f"m{next(_ids)}",
        event_time=EVENTS_AT,
        materialization=events_pb.Materialization(asset_key=asset_key, partition_key=partition_key),
    )


def _history(
    rng: random.Random, partitions: dict[str, list[str | None]], count: int
) -> list[events_pb.Event]:
    """Sparse materializations (clustered, so runs of stored partitions form), observations of
    the source, runs started (one hour leases) and some failed."""
    events: list[events_pb.Event] = []
    runs: list[str] = []
    for _ in range(count):
        asset_key = rng.choice(sorted(partitions))
        listed = partitions[asset_key]
        at = rng.randrange(len(listed))
        chosen = listed[at : at + rng.choice([1, 1, 3, 20])]
        roll = rng.random()
        event_id = f"s{next(_ids)}"
        if roll < 0.1:
            run_id = f"run-{event_id}"
            runs.append(run_id)
            targets = [events_pb.PartitionTarget(asset_key=asset_key) for _ in chosen]
            for target, key in zip(targets, chosen, strict=True):
                if key is not None:
                    target.partition_key = key
            body = {"run_started": events_pb.RunStarted(run_id=run_id, targets=targets)}
            events.append(events_pb.Event(idempotency_key=event_id, event_time=EVENTS_AT, **body))  # type: ignore[arg-type]
            continue
        if roll < 0.13 and runs:
            failed = events_pb.RunFailed(run_id=rng.choice(runs))
            events.append(
                events_pb.Event(idempotency_key=event_id, event_time=EVENTS_AT, run_failed=failed)
            )
            continue
        for key in chosen:
            version = rng.choice(["", "a", "b"])
            event = events_pb.Event(idempotency_key=f"{event_id}-{key}", event_time=EVENTS_AT)
            if asset_key == "feed":
                event.observation.asset_key = asset_key
                event.observation.data_version = version
                if key is not None:
                    event.observation.partition_key = key
            else:
                event.materialization.asset_key = asset_key
                event.materialization.data_version = version
                event.materialization.code_version = rng.choice(["", "1"])
                if key is not None:
                    event.materialization.partition_key = key
            events.append(event)
    return events


def test_summaries_alone_equal_the_summaries_of_whole_answers(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    graph = _graph()
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=graph, replace_all=True)
    )
    stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["a", "b", "c", "d"]
        )
    )
    partitions: dict[str, list[str | None]] = {
        item.asset_key: list(_listed(stubs, namespace, item.asset_key))
        if item.HasField("partitions_definition")
        else [None]
        for item in graph
    }
    # Partitions on either side of the last one existing at the first as_of.
    edges = [f"2024-01-12-{hour:02d}:00" for hour in range(3, 9)]
    _report(stubs, namespace, [_materialized("hourly", key) for key in edges])
    _report(stubs, namespace, [_materialized("daily", f"2024-01-{day}") for day in (11, 12, 13)])
    rng = random.Random(7)
    for _ in range(3):
        _report(stubs, namespace, _history(rng, partitions, 60))
    # Later: a new code version (its stored partitions turn stale) and a customer removed (its
    # stored partitions are no longer listed).
    changed = asset("hourly_clean", HOURLY, "hourly", "config")
    changed.code_version = "2"
    stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[changed]))
    stubs.definitions.DeleteDynamicPartitions(
        defs_pb.DeleteDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["b"]
        )
    )
    for dynamic in ("customers", "scores"):
        partitions[dynamic].remove("b")
    _report(stubs, namespace, _history(rng, partitions, 40))

    seen = {"stale": 0, "missing": 0, "in_progress": 0}
    for as_of, options in itertools.product(AS_OFS, OPTIONS):
        asked = stale_pb.GetStalenessRequest(
            namespace=namespace, as_of=timestamp(as_of), options=options
        )
        whole = staleness.GetStaleness(asked)
        asked.summary_only = True
        alone = staleness.GetStaleness(asked)
        assert list(alone.assets) == list(whole.assets), (as_of, options)
        assert (alone.generation, alone.event_position) == (whole.generation, whole.event_position)
        assert (list(alone.partitions), alone.next_page_token) == ([], "")
        for summary in alone.assets:
            seen["stale"] += len(summary.stale_ranges)
            seen["missing"] += len(summary.missing_ranges)
            seen["in_progress"] += len(summary.in_progress_ranges)
    assert min(seen.values()) > 10, seen


def test_a_summary_only_request_refuses_what_only_lists_need(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
    )
    for extra, field in (
        ({"selection": keys("2024-01-01"), "asset_keys": ["daily"]}, "selection"),
        ({"include_fresh": True}, "include_fresh"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            staleness.GetStaleness(
                stale_pb.GetStalenessRequest(namespace=namespace, summary_only=True, **extra)
            )
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(refused.value) == [field]


def test_the_partition_bound_holds_per_asset_for_summaries(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    # Two assets of about 600,000 hourly partitions: too many for one whole answer, fine for
    # summaries; one of 1.09 million is too many either way.
    long_ago = time_window("0 * * * *", "1956-01-01T00:00:00", fmt="%Y-%m-%d-%H:%M")
    longer_ago = time_window("0 * * * *", "1900-01-01T00:00:00", fmt="%Y-%m-%d-%H:%M")
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=[asset("a", long_ago), asset("b", long_ago, "a"), asset("c", longer_ago)],
        )
    )
    as_of = timestamp("2024-01-01T00:00:00+00:00")
    assert 596_088 < limits.MAX_STALENESS_PARTITIONS < 2 * 596_088
    for asset_keys, summary_only, refused in (
        (["a", "b"], False, True),
        (["a", "b"], True, False),
        (["c"], True, True),
    ):
        request = stale_pb.GetStalenessRequest(
            namespace=namespace, asset_keys=asset_keys, as_of=as_of, summary_only=summary_only
        )
        if not refused:
            answer = staleness.GetStaleness(request)
            assert [summary.missing_count for summary in answer.assets] == [596_088, 596_088]
            continue
        with pytest.raises(grpc.RpcError) as too_many:
            staleness.GetStaleness(request)
        assert too_many.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error_info(too_many.value).reason == "SELECTION_TOO_LARGE"
