"""Multi-page GetStaleness and PlanRuns while events arrive, over a real channel and Postgres.

Every page after the first comes from the answer the first page kept in the database, so a
writer that keeps reporting events neither refuses nor changes the pages that follow, and
another server on the same database serves them as well.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import (
    StalenessServiceStub,
)

from .builders import asset, time_window, timestamp
from .conftest import Stubs, serving
from .errors import error_info
from .test_staleness import apply

DAYS = 500
START = datetime(2023, 1, 1, tzinfo=UTC)
KEYS = [(START + timedelta(days=n)).strftime("%Y-%m-%d") for n in range(DAYS)]
AS_OF = timestamp((START + timedelta(days=DAYS)).isoformat())
PAGE_SIZE = DAYS // 10
WRITER_BATCH = 100
# A safety net only (the writer commits a batch in milliseconds): never reached unless broken.
HANDSHAKE_SECONDS = 300


@pytest.fixture(scope="module")
def staleness(stubs: Stubs) -> StalenessServiceStub:
    return StalenessServiceStub(stubs.channel)


@pytest.fixture(scope="module")
def other_replica(database_url: str) -> Iterator[StalenessServiceStub]:
    """A second server on the same database, as another replica behind a load balancer."""
    with (
        serving(database_url, workers=2, health_interval_seconds=0.2) as server,
        grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        yield StalenessServiceStub(channel)


def _materializations(asset_key: str, keys: list[str], version: str) -> list[events_pb.Event]:
    return [
        events_pb.Event(
            idempotency_key=f"{asset_key}-{key}-{version}",
            event_time=AS_OF,
            materialization=events_pb.Materialization(
                asset_key=asset_key, partition_key=key, run_id="seed", data_version=version
            ),
        )
        for key in keys
    ]


def _seed(stubs: Stubs, namespace: str) -> None:
    daily = time_window("0 0 * * *", start=START.strftime("%Y-%m-%dT%H:%M:%S"))
    apply(stubs, namespace, asset("up", daily), asset("down", daily, "up"))
    report = stubs.events.ReportEvents
    report(
        events_pb.ReportEventsRequest(
            namespace=namespace, events=_materializations("up", KEYS, "v0")
        )
    )
    report(
        events_pb.ReportEventsRequest(
            namespace=namespace, events=_materializations("down", KEYS[::2], "v0")
        )
    )


class Writer:
    """Reports batches of materializations of both assets, as fast as the server takes them,
    until stopped; counts the batches committed so a reader can wait for the next one."""

    def __init__(self, stubs: Stubs, namespace: str) -> None:
        self._stubs = stubs
        self._namespace = namespace
        self._stop = threading.Event()
        self._committed = threading.Condition()
        # Guarded by self._committed.
        self.batches = 0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(HANDSHAKE_SECONDS)
        assert not self._thread.is_alive()
        if self.failure is not None:
            raise self.failure

    def _run(self) -> None:
        try:
            for round_number in range(1, 1_000_000):
                if self._stop.is_set():
                    return
                offset = (round_number * WRITER_BATCH) % DAYS
                keys = (KEYS + KEYS)[offset : offset + WRITER_BATCH // 2]
                events = [
                    *_materializations("up", keys, f"v{round_number}"),
                    *_materializations("down", keys[::3], f"v{round_number}"),
                ]
                self._stubs.events.ReportEvents(
                    events_pb.ReportEventsRequest(namespace=self._namespace, events=events)
                )
                with self._committed:
                    self.batches += 1
                    self._committed.notify_all()
        except BaseException as error:  # handed to the reading thread by __exit__
            self.failure = error
            with self._committed:
                self._committed.notify_all()

    def wait_for_batch_after(self, seen: int) -> int:
        with self._committed:
            arrived = self._committed.wait_for(
                lambda: self.batches > seen or self.failure is not None, HANDSHAKE_SECONDS
            )
            assert self.failure is None, self.failure
            assert arrived
            return self.batches


def test_ten_pages_of_staleness_read_to_the_end_while_events_arrive(
    stubs: Stubs,
    staleness: StalenessServiceStub,
    other_replica: StalenessServiceStub,
    namespace: str,
) -> None:
    _seed(stubs, namespace)
    request = stale_pb.GetStalenessRequest(
        namespace=namespace,
        asset_keys=["down"],
        as_of=AS_OF,
        include_fresh=True,
        page_size=PAGE_SIZE,
    )
    with Writer(stubs, namespace) as writer:
        seen = writer.wait_for_batch_after(0)
        first = staleness.GetStaleness(request)
        pages = [first]
        while pages[-1].next_page_token:
            # At least one more batch is committed before each page: the answer moved on.
            seen = writer.wait_for_batch_after(seen)
            request.page_token = pages[-1].next_page_token
            # Pages alternate between the two replicas.
            server = other_replica if len(pages) % 2 else staleness
            pages.append(server.GetStaleness(request))
    assert len(pages) == 10
    assert writer.batches >= 10
    for page in pages:
        assert (page.as_of, page.event_position, page.generation) == (
            first.as_of,
            first.event_position,
            first.generation,
        )
        assert list(page.assets) == list(first.assets)
    listed = [p for page in pages for p in page.partitions]
    assert [p.partition_key for p in listed] == KEYS
    [summary] = first.assets
    counts = {
        status: sum(1 for p in listed if p.status == status)
        for status in (
            stale_pb.STALE_STATUS_FRESH,
            stale_pb.STALE_STATUS_STALE,
            stale_pb.STALE_STATUS_MISSING,
        )
    }
    assert counts == {
        stale_pb.STALE_STATUS_FRESH: summary.fresh_count,
        stale_pb.STALE_STATUS_STALE: summary.stale_count,
        stale_pb.STALE_STATUS_MISSING: summary.missing_count,
    }
    # The writes were real: a new first page sees them.
    request.ClearField("page_token")
    assert staleness.GetStaleness(request).event_position > first.event_position


def test_plan_pages_come_from_the_plan_the_first_page_saw(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str
) -> None:
    _seed(stubs, namespace)
    request = stale_pb.PlanRunsRequest(
        namespace=namespace, as_of=AS_OF, catch_up=True, include_keys=True, page_size=7
    )
    first = staleness.PlanRuns(request)
    assert first.next_page_token
    # Materializing every missing downstream partition empties the plan...
    stubs.events.ReportEvents(
        events_pb.ReportEventsRequest(
            namespace=namespace, events=_materializations("down", KEYS[1::2], "v1")
        )
    )
    request.page_token = first.next_page_token
    # ...but the pages of the first answer still list it to the end.
    runs = list(first.runs)
    while request.page_token:
        page = staleness.PlanRuns(request)
        assert (page.event_position, page.total_runs) == (first.event_position, first.total_runs)
        runs.extend(page.runs)
        request.page_token = page.next_page_token
    assert len(runs) == first.total_runs
    assert sum(len(run.partition_keys) for run in runs) == first.total_partitions == DAYS // 2
    request.ClearField("page_token")
    assert staleness.PlanRuns(request).total_runs == 0


def test_an_expired_answer_is_refused_with_its_own_reason(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str, database_url: str
) -> None:
    _seed(stubs, namespace)
    request = stale_pb.GetStalenessRequest(
        namespace=namespace, as_of=AS_OF, include_fresh=True, page_size=100
    )
    first = staleness.GetStaleness(request)
    request.page_token = first.next_page_token
    assert staleness.GetStaleness(request).partitions
    with psycopg.connect(database_url) as conn:  # what expiry (or eviction for room) does
        conn.execute(
            "DELETE FROM answer_snapshots WHERE namespace_id ="
            " (SELECT namespace_id FROM namespaces WHERE name = %s)",
            (namespace,),
        )
    with pytest.raises(grpc.RpcError) as refused:
        staleness.GetStaleness(request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(refused.value)
    assert (info.reason, info.metadata["field"]) == ("PAGE_SNAPSHOT_EXPIRED", "page_token")
    # Asking again from the first page works.
    request.ClearField("page_token")
    assert staleness.GetStaleness(request).next_page_token


def test_a_single_page_answer_keeps_nothing(
    stubs: Stubs, staleness: StalenessServiceStub, namespace: str, database_url: str
) -> None:
    _seed(stubs, namespace)
    answer = staleness.GetStaleness(
        stale_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF, page_size=10_000)
    )
    assert not answer.next_page_token
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM answer_snapshots WHERE namespace_id ="
            " (SELECT namespace_id FROM namespaces WHERE name = %s)",
            (namespace,),
        ).fetchone()
    assert row == (0,)
