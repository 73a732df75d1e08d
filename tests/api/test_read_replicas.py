"""Read RPCs on a real streaming replica (pg_basebackup of an embedded primary): served there,
min_event_position honoured while replay is paused (the primary answers), the replica's
failure skipped with its own health status, and its return. The schema is migrated with the
standby already streaming."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from partition_deps import cli
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as st_pb
from partition_deps.server import Config, Server
from partition_deps.store.database import EmbeddedPostgres, PoolSettings, migrate
from tests.api.builders import DAILY, asset, materialization, timestamp
from tests.live import eventually
from tests.replicas import StreamingReplica

REPLICA = "read-replica-1"
AS_OF = timestamp("2024-01-05T00:00:00+00:00")


@dataclass
class Setup:
    primary: EmbeddedPostgres
    replica: StreamingReplica
    server: Server
    channel: grpc.Channel

    def reads(self, database: str, reason: str) -> float:
        assert self.server.metrics is not None
        value = self.server.metrics.registry.get_sample_value(
            "partition_deps_reads_total", {"database": database, "reason": reason}
        )
        return value or 0.0

    def health(self, name: str) -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        request = health_pb2.HealthCheckRequest(service=name)
        return int(stub.Check(request, timeout=5).status)  # type: ignore[attr-defined]  # no method stubs


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    folder = tmp_path_factory.mktemp("replication")
    primary = EmbeddedPostgres(folder / "primary")
    replica: StreamingReplica | None = None
    server: Server | None = None
    try:
        replica = StreamingReplica(primary, folder / "replica")
        replica.start()
        # Migrations run on the primary with the standby streaming: it replays them.
        migrate(primary.url)
        replica.catch_up()
        server = Server(
            Config(
                listen="127.0.0.1:0",
                database_url=primary.url,
                read_database_urls=(replica.url,),
                # Short: a read behind the floor goes to the primary soon (never a timing
                # condition of the tests: paused replay never catches up by itself).
                replica_wait_seconds=0.05,
                pool=PoolSettings(min_size=1, max_size=4),
                grace_seconds=1,
                health_interval_seconds=0.2,
                metrics_listen="127.0.0.1:0",
            )
        )
        server.start()
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        yield Setup(primary, replica, server, channel)
        channel.close()
    finally:
        if server is not None:
            server.stop()
        if replica is not None:
            replica.stop()
        primary.stop()


def _namespace(setup: Setup) -> tuple[str, int]:
    """A namespace with a daily asset and its downstream; returns it and its generation."""
    name = f"replica-{uuid.uuid4().hex[:10]}"
    applied = definitions_service_pb2_grpc.DefinitionsServiceStub(setup.channel).ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=name, assets=[asset("a", DAILY), asset("b", DAILY, "a")]
        )
    )
    return name, applied.generation


def _report(setup: Setup, namespace: str, *events: events_pb.Event) -> int:
    response = events_service_pb2_grpc.EventsServiceStub(setup.channel).ReportEvents(
        events_pb.ReportEventsRequest(namespace=namespace, events=events)
    )
    assert response.event_position > 0
    return int(response.event_position)


def _staleness(setup: Setup, namespace: str, **floor: int) -> st_pb.GetStalenessResponse:
    return staleness_service_pb2_grpc.StalenessServiceStub(setup.channel).GetStaleness(
        st_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF, **floor)  # type: ignore[arg-type]
    )


def _stale_count(response: st_pb.GetStalenessResponse, asset_key: str) -> int:
    return next(a.stale_count for a in response.assets if a.asset_key == asset_key)


def test_reads_are_served_by_the_replica_once_it_has_the_write(setup: Setup) -> None:
    namespace, generation = _namespace(setup)
    position = _report(setup, namespace, materialization("m1", "a", "2024-01-01"))
    setup.replica.catch_up()
    served, primary = setup.reads(REPLICA, "replica"), setup.reads("primary", "replica_behind")

    answer = _staleness(setup, namespace, min_event_position=position, min_generation=generation)

    assert answer.event_position == position
    assert answer.generation == generation
    assert setup.reads(REPLICA, "replica") == served + 1
    assert setup.reads("primary", "replica_behind") == primary


def test_min_event_position_is_honoured_while_replay_is_paused(setup: Setup) -> None:
    namespace, _ = _namespace(setup)
    first = _report(setup, namespace, materialization("m1", "a", "2024-01-01"))
    _report(setup, namespace, materialization("m2", "b", "2024-01-01"))
    setup.replica.catch_up()
    setup.replica.pause_replay()
    try:
        # a is written again after b: b's partition becomes stale, on the primary only.
        position = _report(
            setup, namespace, materialization("m3", "a", "2024-01-01", at="2024-01-03T00:00:00")
        )
        behind = setup.reads("primary", "replica_behind")

        lagging = _staleness(setup, namespace)
        assert lagging.event_position < position
        assert _stale_count(lagging, "b") == 0

        mine = _staleness(setup, namespace, min_event_position=position)
        assert mine.event_position == position
        assert _stale_count(mine, "b") == 1
        assert setup.reads("primary", "replica_behind") == behind + 1

        plan = staleness_service_pb2_grpc.StalenessServiceStub(setup.channel).PlanRuns(
            st_pb.PlanRunsRequest(namespace=namespace, as_of=AS_OF, min_event_position=position)
        )
        assert plan.event_position == position
        assert setup.reads("primary", "replica_behind") == behind + 2
        assert first < position
    finally:
        setup.replica.resume_replay()
    setup.replica.catch_up()
    served = setup.reads(REPLICA, "replica")
    assert _staleness(setup, namespace, min_event_position=position).event_position == position
    assert setup.reads(REPLICA, "replica") == served + 1


def test_list_runs_with_min_event_position_sees_the_run_started(setup: Setup) -> None:
    namespace, _ = _namespace(setup)
    setup.replica.pause_replay()
    try:
        started = events_pb.Event(
            idempotency_key="s1",
            # Within the default one-hour lease at AS_OF.
            event_time=timestamp("2024-01-04T23:30:00+00:00"),
            run_started=events_pb.RunStarted(
                run_id="run-9",
                targets=[events_pb.PartitionTarget(asset_key="a", partition_key="2024-01-02")],
            ),
        )
        position = _report(setup, namespace, started)
        behind = setup.reads("primary", "replica_behind")
        runs = events_service_pb2_grpc.EventsServiceStub(setup.channel).ListRuns(
            events_pb.ListRunsRequest(namespace=namespace, as_of=AS_OF, min_event_position=position)
        )
        assert [run.run_id for run in runs.runs] == ["run-9"]
        assert setup.reads("primary", "replica_behind") == behind + 1
    finally:
        setup.replica.resume_replay()


def test_a_negative_floor_is_refused_naming_the_field(setup: Setup) -> None:
    namespace, _ = _namespace(setup)
    with pytest.raises(grpc.RpcError) as raised:
        _staleness(setup, namespace, min_event_position=-1)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "min_event_position" in str(raised.value.details())


def test_a_replica_that_is_down_is_skipped_and_health_says_so(setup: Setup) -> None:
    namespace, _ = _namespace(setup)
    position = _report(setup, namespace, materialization("m1", "a", "2024-01-01"))
    serving, not_serving = (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )
    assert setup.health(REPLICA) == serving
    setup.replica.stop()
    try:
        # Whether the health thread or this read notices first, the primary answers.
        answer = _staleness(setup, namespace, min_event_position=position)
        assert answer.event_position == position
        eventually(lambda: setup.health(REPLICA) == not_serving)
        assert setup.health("") == serving
        on_replica = setup.reads(REPLICA, "replica")
        assert _staleness(setup, namespace).event_position == position
        assert setup.reads(REPLICA, "replica") == on_replica
    finally:
        setup.replica.start()
    eventually(lambda: setup.health(REPLICA) == serving)
    setup.replica.catch_up()
    on_replica = setup.reads(REPLICA, "replica")
    assert _staleness(setup, namespace, min_event_position=position).event_position == position
    assert setup.reads(REPLICA, "replica") == on_replica + 1


def test_read_replicas_need_the_primary_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="needs --database-url"):
        cli.main(["serve", "--read-database-url", "postgresql://replica/pd"])
