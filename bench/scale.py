"""Big namespaces and many tenants, through the gRPC API, against a real Postgres.

    .venv/bin/python bench/scale.py                        # default size, about 10 minutes here
    .venv/bin/python bench/scale.py --events 10000000      # the issue's 10 million events
    .venv/bin/python bench/scale.py --events 200000 --namespaces 100   # a quick look

What it does (an embedded Postgres 16 in a temporary folder and one server process, both
stopped at the end):
- one namespace of 1,000 assets: 150 hourly, 350 daily, 100 weekly, 150 static x daily
  (4 regions), 250 unpartitioned, from 2024-01-01, about 274,000 partitions at as_of. Inside
  each kind asset j reads asset j // 2; daily asset j < 150 also reads hourly asset j (a
  time-window mapping, 24 to 1); each unpartitioned asset also reads a daily one (all of it);
- `--events` materializations in rounds, every partition of every asset once per round in
  dependency order, through ReportEvents in batches of 10,000 with two calls in flight;
- times GetUpstreamPartitions of one partition (random assets), GetStaleness of one asset of
  each kind (after warm-up calls) and of the whole namespace (the first page: the whole answer
  is computed), PlanRuns of the whole namespace; prints p50 / p99 of each, the server's
  resident memory and the database's size; then compacts every namespace with a zero
  retention (store/compaction.py) and prints what was deleted and kept;
- then `--namespaces` namespaces of 10 assets each (4 daily, 2 hourly, 4 unpartitioned) with
  200 events each, ingested four namespaces at a time, and times the same reads on random
  namespaces.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import grpc
import psycopg
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as parts_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as q_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as st_pb
from partition_deps.store.compaction import compact
from partition_deps.store.database import EmbeddedPostgres, PoolSettings, migrate, open_pool

REPO = Path(__file__).resolve().parents[1]
START = "2024-01-01T00:00:00"
# Events are stored at and after this instant, when every partition below exists.
EVENTS_FROM = 1_709_251_200  # 2024-03-01T00:00:00Z
AS_OF = Timestamp(seconds=EVENTS_FROM + 3600)
BATCH = 10_000
MIB = 1024 * 1024
POOL_SIZE = 8
# A pooled connection runs a statement unprepared on its first five executions, prepared from
# the sixth (psycopg's prepare_threshold), and the pool hands its connections out in turn: the
# one-asset lines first call enough times for each connection to have prepared its statements,
# as in a server that has been up a while (hourly_149's candidate query: 2.5 ms unprepared,
# 1.9 ms prepared). Ten calls with no warm-up measure cold connections: their medians
# for one commit ranged 5.5-11.1 ms over 30 runs on one database; runs still vary by a
# quarter, so compare commits over several alternating runs.
WARM_UP_CALLS = POOL_SIZE * 6
ONE_ASSET_CALLS = 100
# PlanRuns of the whole namespace takes about a second each: 3 calls were too few a sample.
PLAN_RUNS_CALLS = 10


def _window(cron: str, fmt: str = "%Y-%m-%d") -> parts_pb.PartitionsDefinition:
    return parts_pb.PartitionsDefinition(
        time_window=parts_pb.TimeWindowPartitions(cron_schedule=cron, start=START, fmt=fmt)
    )


HOURLY = _window("0 * * * *", "%Y-%m-%d-%H:%M")
DAILY, WEEKLY = _window("0 0 * * *"), _window("0 0 * * 1")
REGIONS = parts_pb.PartitionsDefinition(
    static=parts_pb.StaticPartitions(partition_keys=["ap", "eu", "sa", "us"])
)
REGION_BY_DAY = parts_pb.PartitionsDefinition(
    multi=parts_pb.MultiPartitions(
        dimensions=[
            parts_pb.Dimension(name="date", partitions=DAILY),
            parts_pb.Dimension(name="region", partitions=REGIONS),
        ]
    )
)
# Kind name, definition (None: unpartitioned), assets of that kind in the big namespace.
KINDS: list[tuple[str, parts_pb.PartitionsDefinition | None, int]] = [
    ("hourly", HOURLY, 150),
    ("daily", DAILY, 350),
    ("weekly", WEEKLY, 100),
    ("region_daily", REGION_BY_DAY, 150),
    ("plain", None, 250),
]
SMALL_KINDS: list[tuple[str, parts_pb.PartitionsDefinition | None, int]] = [
    ("hourly", HOURLY, 2),
    ("daily", DAILY, 4),
    ("plain", None, 4),
]


def assets_of(
    kinds: list[tuple[str, parts_pb.PartitionsDefinition | None, int]],
) -> list[defs_pb.Asset]:
    """The assets in dependency order (every upstream before its downstreams)."""
    counts = {name: count for name, _, count in kinds}
    assets = []
    for name, definition, count in kinds:
        for j in range(count):
            asset = defs_pb.Asset(asset_key=f"{name}_{j}")
            if definition is not None:
                asset.partitions_definition.CopyFrom(definition)
            if j > 0:
                asset.dependencies.add(upstream_asset_key=f"{name}_{j // 2}")
            if name == "daily" and j < counts.get("hourly", 0):
                asset.dependencies.add(upstream_asset_key=f"hourly_{j}")
            if name == "plain" and counts.get("daily"):
                asset.dependencies.add(upstream_asset_key=f"daily_{j % counts['daily']}")
            assets.append(asset)
    return assets


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Service:
    process: subprocess.Popen[bytes]
    channel: grpc.Channel
    url: str

    def resident_mib(self) -> tuple[float, float]:
        """(resident now, peak resident) of the server process, MiB."""
        fields = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def database_mib(self) -> tuple[float, float]:
        """(database, events table with its indexes) on disk, MiB."""
        with psycopg.connect(self.url) as conn:
            row = conn.execute(
                "SELECT pg_database_size(current_database()), pg_total_relation_size('events')"
            ).fetchone()
        assert row is not None
        return row[0] / MIB, row[1] / MIB


@dataclass
class Stubs:
    definitions: definitions_service_pb2_grpc.DefinitionsServiceStub
    events: events_service_pb2_grpc.EventsServiceStub
    queries: queries_service_pb2_grpc.QueriesServiceStub
    staleness: staleness_service_pb2_grpc.StalenessServiceStub


@contextmanager
def serve(url: str) -> Iterator[Service]:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO / "service")}
    process = subprocess.Popen(
        [
            sys.executable, "-m", "partition_deps.cli", "serve", "--listen", f"127.0.0.1:{port}",
            "--database-url", url, "--pool-size", str(POOL_SIZE), "--log-level", "WARNING",
            "--max-message-bytes", str(64 * MIB),
        ],
        env=env,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    channel = grpc.insecure_channel(
        f"127.0.0.1:{port}",
        options=[
            ("grpc.max_send_message_length", 64 * MIB),
            ("grpc.max_receive_message_length", 64 * MIB),
        ],
    )
    try:
        grpc.channel_ready_future(channel).result(timeout=120)
        yield Service(process, channel, url)
    finally:
        channel.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def stubs_of(channel: grpc.Channel) -> Stubs:
    return Stubs(
        definitions_service_pb2_grpc.DefinitionsServiceStub(channel),
        events_service_pb2_grpc.EventsServiceStub(channel),
        queries_service_pb2_grpc.QueriesServiceStub(channel),
        staleness_service_pb2_grpc.StalenessServiceStub(channel),
    )


def partition_keys(stubs: Stubs, namespace: str, asset: defs_pb.Asset) -> list[str | None]:
    if not asset.HasField("partitions_definition"):
        return [None]
    keys: list[str | None] = []
    token = ""
    while True:
        page = stubs.queries.ListPartitions(
            q_pb.ListPartitionsRequest(
                source=q_pb.DefinitionSource(
                    asset=q_pb.AssetReference(namespace=namespace, asset_key=asset.asset_key)
                ),
                as_of=Timestamp(seconds=EVENTS_FROM),
                page_size=10_000,
                page_token=token,
            )
        )
        keys.extend(page.partition_keys)
        token = page.next_page_token
        if not token:
            return keys


def materializations(
    assets: list[defs_pb.Asset], keys: dict[str, list[str | None]], total: int, prefix: str
) -> Iterator[events_pb.Event]:
    """`total` materializations: rounds over every partition in dependency order."""
    number = 0
    while True:
        for asset in assets:
            for key in keys[asset.asset_key]:
                if number == total:
                    return
                event = events_pb.Event(
                    idempotency_key=f"{prefix}{number}",
                    materialization=events_pb.Materialization(
                        asset_key=asset.asset_key,
                        run_id=f"run-{number // BATCH}",
                        data_version=f"v{number}",
                    ),
                )
                if key is not None:
                    event.materialization.partition_key = key
                event.event_time.FromMicroseconds(EVENTS_FROM * 1_000_000 + number)
                yield event
                number += 1


def _batches(events: Iterator[events_pb.Event], size: int) -> Iterator[list[events_pb.Event]]:
    batch: list[events_pb.Event] = []
    for event in events:
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest(stubs: Stubs, namespace: str, events: Iterator[events_pb.Event]) -> int:
    def send(batch: list[events_pb.Event]) -> int:
        response = stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(namespace=namespace, events=batch), timeout=600
        )
        return int(response.stored_count)

    with ThreadPoolExecutor(2) as pool:
        return sum(pool.map(send, _batches(events, BATCH)))


def timed(call: Callable[[], object], times: int) -> list[float]:
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return seconds


def _p(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def row(name: str, seconds: list[float]) -> None:
    print(
        f"  {name:42} p50 {_p(seconds, 0.5):9.1f} ms   p99 {_p(seconds, 0.99):9.1f} ms"
        f"   ({len(seconds)} calls)"
    )


def upstream_call(
    stubs: Stubs, namespace: str, asset: defs_pb.Asset, key: str | None
) -> Callable[[], object]:
    request = q_pb.GetUpstreamPartitionsRequest(
        namespace=namespace, asset_key=asset.asset_key, as_of=AS_OF
    )
    if key is not None:
        request.selection.keys.partition_keys.append(key)
    return lambda: stubs.queries.GetUpstreamPartitions(request)


def big_namespace(service: Service, events: int, rng: random.Random) -> None:
    stubs = stubs_of(service.channel)
    namespace = "big"
    assets = assets_of(KINDS)
    stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets))
    keys = {asset.asset_key: partition_keys(stubs, namespace, asset) for asset in assets}
    partitions = sum(len(k) for k in keys.values())
    print(f"one namespace: {len(assets)} assets, {partitions} partitions, {events} events")
    began = time.perf_counter()
    stored = ingest(stubs, namespace, materializations(assets, keys, events, "e"))
    seconds = time.perf_counter() - began
    print(f"  ingest: {stored} events in {seconds:.0f} s = {stored / seconds:,.0f} events/s")
    picks = [rng.choice(assets) for _ in range(300)]
    row(
        "GetUpstreamPartitions, one partition",
        [
            timed(upstream_call(stubs, namespace, a, rng.choice(keys[a.asset_key])), 1)[0]
            for a in picks
        ],
    )
    # One asset of each kind (daily_100 also reads hourly_100, 24 hourly partitions a day).
    for key in (
        "hourly_149",
        "daily_300",
        "daily_100",
        "weekly_99",
        "region_daily_149",
        "plain_249",
    ):
        one = partial(
            stubs.staleness.GetStaleness,
            st_pb.GetStalenessRequest(namespace=namespace, asset_keys=[key], as_of=AS_OF),
        )
        timed(one, WARM_UP_CALLS)
        row(f"GetStaleness, one asset ({key})", timed(one, ONE_ASSET_CALLS))
    whole = st_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF)
    row(
        "GetStaleness, whole namespace (first page)",
        timed(lambda: stubs.staleness.GetStaleness(whole, timeout=600), 3),
    )
    plan = st_pb.PlanRunsRequest(namespace=namespace, as_of=AS_OF)
    row(
        "PlanRuns, whole namespace",
        timed(lambda: stubs.staleness.PlanRuns(plan, timeout=600), PLAN_RUNS_CALLS),
    )
    report(service)
    compaction(service)


def compaction(service: Service) -> None:
    """Compaction with a zero retention: what a namespace keeps once its history is old."""
    pool = open_pool(service.url, PoolSettings(min_size=1, max_size=1))
    try:
        began = time.perf_counter()
        done = compact(pool, timedelta(0))
        seconds = time.perf_counter() - began
        with pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM events").fetchone()
    finally:
        pool.close()
    assert row is not None
    print(
        f"  compaction (retention 0): {done.superseded_events:,} superseded events deleted in"
        f" {seconds:.0f} s; {row[0]:,} events kept"
    )


def whole_namespace(name: str) -> st_pb.GetStalenessRequest:
    return st_pb.GetStalenessRequest(namespace=name, as_of=AS_OF)


def plan_of(name: str) -> st_pb.PlanRunsRequest:
    return st_pb.PlanRunsRequest(namespace=name, as_of=AS_OF)


def many_namespaces(service: Service, count: int, rng: random.Random) -> None:
    stubs = stubs_of(service.channel)
    assets = assets_of(SMALL_KINDS)
    names = [f"tenant-{n:05d}" for n in range(count)]
    for name in names:
        stubs.definitions.ApplyAssets(defs_pb.ApplyAssetsRequest(namespace=name, assets=assets))
    keys = {asset.asset_key: partition_keys(stubs, names[0], asset) for asset in assets}
    print(f"{count} namespaces: {len(assets)} assets and 200 events each")
    began = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        stored = sum(
            pool.map(
                lambda name: ingest(stubs, name, materializations(assets, keys, 200, name)),
                names,
            )
        )
    seconds = time.perf_counter() - began
    print(f"  ingest: {stored} events in {seconds:.0f} s = {stored / seconds:,.0f} events/s")
    sample = [rng.choice(names) for _ in range(200)]
    row(
        "GetUpstreamPartitions, one partition",
        [
            timed(upstream_call(stubs, name, assets[6], keys[assets[6].asset_key][-1]), 1)[0]
            for name in sample
        ],
    )
    staleness = [
        timed(partial(stubs.staleness.GetStaleness, whole_namespace(name)), 1)[0] for name in sample
    ]
    row("GetStaleness, whole namespace", staleness)
    plans = [timed(partial(stubs.staleness.PlanRuns, plan_of(name)), 1)[0] for name in sample]
    row("PlanRuns, whole namespace", plans)
    report(service)


def report(service: Service) -> None:
    resident, peak = service.resident_mib()
    database, events = service.database_mib()
    print(f"  server memory {resident:.0f} MiB (peak {peak:.0f} MiB)")
    print(f"  postgres {database:.0f} MiB, of which events and their indexes {events:.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--namespaces", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        postgres = EmbeddedPostgres(Path(folder) / "pg")
        try:
            migrate(postgres.url)
            with serve(postgres.url) as service:
                began = time.perf_counter()
                big_namespace(service, args.events, rng)
                many_namespaces(service, args.namespaces, rng)
                print(f"total {time.perf_counter() - began:.0f} s")
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
