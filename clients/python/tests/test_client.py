"""The Python client against the live server: the seed scenario, errors, the example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from partition_deps_client import (
    Client,
    asset,
    daily,
    materialization,
    pb,
    run_canceled,
    run_heartbeat,
    run_started,
    run_succeeded,
    service_config,
    weekly,
)
from partition_deps_client.pb import partitions

DAYS = [f"2024-01-{day:02d}" for day in range(7, 14)]
WEEKLY = "weekly_sales_summary"
AS_OF = datetime(2024, 2, 1, tzinfo=UTC)


def test_weekly_needs_its_seven_days(client: Client, namespace: str) -> None:
    client.apply_assets(
        namespace,
        [
            asset("daily_sales_data", daily("2024-01-01")),
            asset("weekly_sales_summary", weekly("2024-01-01"), depends_on=["daily_sales_data"]),
        ],
    )
    events = [
        materialization(
            f"m-{key}",
            datetime.fromisoformat(key).replace(tzinfo=UTC) + timedelta(days=1),
            "daily_sales_data",
            key,
            run_id="r1",
            data_version="v1",
        )
        for key in DAYS
    ]
    assert client.report_events(namespace, events).stored_count == 7
    assert client.report_events(namespace, events).duplicate_count == 7

    answer = client.upstream_partitions(
        namespace, "weekly_sales_summary", ["2024-01-07"], as_of=AS_OF
    )
    [dependency] = answer.dependencies
    assert dependency.upstream_asset_key == "daily_sales_data"
    assert dependency.partition_mapping.WhichOneof("kind") == "time_window"
    assert list(dependency.partitions.partition_keys) == DAYS
    [whole] = dependency.partitions.ranges
    assert whole.start_time.ToDatetime(UTC) == datetime(2024, 1, 7, tzinfo=UTC)
    assert whole.end_time.ToDatetime(UTC) == datetime(2024, 1, 14, tzinfo=UTC)
    assert dependency.required_but_nonexistent.count == 0

    window = client.time_window(namespace, "daily_sales_data", "2024-01-09")
    assert (window.start, window.end) == (
        datetime(2024, 1, 9, tzinfo=UTC),
        datetime(2024, 1, 10, tzinfo=UTC),
    )
    downstream = client.downstream_partitions(
        namespace, "daily_sales_data", ["2024-01-09"], as_of=AS_OF
    )
    assert [
        (d.downstream_asset_key, list(d.partitions.partition_keys)) for d in downstream.dependents
    ] == [("weekly_sales_summary", ["2024-01-07"])]


def test_a_rematerialized_day_makes_its_week_stale(client: Client, namespace: str) -> None:
    client.apply_assets(
        namespace,
        [
            asset("daily_sales_data", daily("2024-01-01")),
            asset(WEEKLY, weekly("2024-01-01"), depends_on=["daily_sales_data"]),
        ],
    )
    at = datetime(2024, 1, 20, tzinfo=UTC)
    days = [
        materialization(f"d-{key}", at, "daily_sales_data", key, run_id="r1", data_version="v1")
        for key in DAYS
    ]
    week = materialization(
        "w", at + timedelta(hours=1), WEEKLY, "2024-01-07", run_id="r2", data_version="w1"
    )
    again = materialization(
        "again",
        at + timedelta(hours=2),
        "daily_sales_data",
        "2024-01-10",
        run_id="r3",
        data_version="v2",
    )
    client.report_events(namespace, [*days, week])
    fresh = client.stale_partitions(
        namespace, [WEEKLY], ["2024-01-07"], as_of=AS_OF, include_fresh=True
    )
    assert [p.status for p in fresh.partitions] == [pb.staleness.STALE_STATUS_FRESH]

    client.report_events(namespace, [again])
    stale = client.stale_partitions(namespace, [WEEKLY], ["2024-01-07"], as_of=AS_OF)
    [partition] = stale.partitions
    assert partition.status == pb.staleness.STALE_STATUS_STALE
    assert [(c.kind, c.upstream_partition_key) for c in partition.causes] == [
        (pb.staleness.STALE_CAUSE_KIND_UPSTREAM_UPDATED, "2024-01-10")
    ]


def test_run_events_hold_partitions_for_their_lease(client: Client, namespace: str) -> None:
    client.apply_assets(namespace, [asset("daily", daily("2024-01-01"))])
    start = datetime(2024, 1, 15, tzinfo=UTC)
    minute = timedelta(minutes=1)
    client.report_events(
        namespace,
        [
            run_started("s1", start, "r1", [("daily", "2024-01-14")], lease=10 * minute),
            run_heartbeat("h1", start + 5 * minute, "r1"),
            run_started("s2", start, "r2", [("daily", "2024-01-13")]),
            run_canceled("c2", start + minute, "r2", "by hand"),
            run_started("s3", start, "r3", [("daily", "2024-01-12")]),
            run_succeeded("e3", start + minute, "r3"),
        ],
    )
    request = pb.events.ListRunsRequest(namespace=namespace)
    request.as_of.FromDatetime(start + 14 * minute)
    [run] = client.events.ListRuns(request).runs
    assert run.run_id == "r1"
    assert run.lease_expiry_time.ToDatetime(tzinfo=UTC) == start + 15 * minute
    request.as_of.FromDatetime(start + 15 * minute)
    assert list(client.events.ListRuns(request).runs) == []


def test_inline_form_needs_no_registration(client: Client) -> None:
    result = client.compute_upstream_partitions(
        daily("2024-01-01"), weekly("2024-01-01"), ["2024-01-07"], as_of=AS_OF
    )
    assert list(result.partitions.partition_keys) == DAYS


def test_errors_keep_their_status_code(client: Client, namespace: str) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        client.definitions.GetAsset(
            pb.definitions.GetAssetRequest(namespace=namespace, asset_key="nope")
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    bad = partitions.PartitionsDefinition(
        time_window=partitions.TimeWindowPartitions(
            cron_schedule="not a cron", start="2024-01-01T00:00:00"
        )
    )
    with pytest.raises(grpc.RpcError) as invalid:
        client.apply_assets(namespace, [asset("bad", bad)])
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_service_config_retries_unavailable_only() -> None:
    config = json.loads(service_config(max_attempts=3, initial_backoff=0.1, max_backoff=1))
    [method] = config["methodConfig"]
    assert "timeout" not in method  # grpcio applies it early: the client sets deadlines itself
    assert method["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert method["retryPolicy"]["maxAttempts"] == 3


def test_the_default_deadline_applies() -> None:
    # Nothing listens on the port: without a deadline a wait-for-ready call would hang.
    with (
        Client("127.0.0.1:1", timeout=0.3, max_attempts=1) as pd,
        pytest.raises(grpc.RpcError) as error,
    ):
        pd.diagnostics.Ping(pb.diagnostics.PingRequest(), wait_for_ready=True)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_seed_example(address: str) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "seed.py"
    run = subprocess.run(
        [sys.executable, str(example)],
        env={**os.environ, "PD_ADDR": address},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    for key in DAYS:
        assert key in run.stdout
    assert "[2024-01-07T00:00:00+00:00, 2024-01-08T00:00:00+00:00)" in run.stdout
    assert f"{WEEKLY} 2024-01-07: MISSING" in run.stdout
    assert f"{WEEKLY} 2024-01-07: STALE" in run.stdout
