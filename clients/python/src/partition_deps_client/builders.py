"""Builders for the messages every caller writes: preset definitions, selections, events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf.message import Message

from partition_deps_client.pb import definitions, events, partitions

HOURLY_CRON = "0 * * * *"
DAILY_CRON = "0 0 * * *"
WEEKLY_CRON = "0 0 * * 0"
MONTHLY_CRON = "0 0 1 * *"


def wall_time(value: str | datetime) -> str:
    """An ISO wall time without offset, as the API wants it ("2024-01-01T00:00:00")."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{value}T00:00:00" if len(value) == len("2024-01-01") else value


def time_window(
    cron_schedule: str, start: str | datetime, *, timezone: str = "", fmt: str = ""
) -> partitions.PartitionsDefinition:
    return partitions.PartitionsDefinition(
        time_window=partitions.TimeWindowPartitions(
            cron_schedule=cron_schedule, start=wall_time(start), timezone=timezone, fmt=fmt
        )
    )


def daily(start: str | datetime) -> partitions.PartitionsDefinition:
    """Dagster's DailyPartitionsDefinition(start_date=start)."""
    return time_window(DAILY_CRON, start)


def weekly(start: str | datetime) -> partitions.PartitionsDefinition:
    """Dagster's WeeklyPartitionsDefinition(start_date=start): weeks start on Sunday."""
    return time_window(WEEKLY_CRON, start)


def asset(
    asset_key: str,
    partitions_definition: partitions.PartitionsDefinition | None = None,
    *,
    depends_on: tuple[str, ...] | list[str] = (),
    code_version: str | None = None,
) -> definitions.Asset:
    """An asset whose dependencies use the inferred (Dagster default) mappings."""
    message = definitions.Asset(
        asset_key=asset_key,
        dependencies=[definitions.Dependency(upstream_asset_key=key) for key in depends_on],
    )
    if partitions_definition is not None:
        message.partitions_definition.CopyFrom(partitions_definition)
    if code_version is not None:
        message.code_version = code_version
    return message


def keys(*partition_keys: str) -> partitions.PartitionSelection:
    """Explicit keys (none: an unpartitioned asset as a whole)."""
    return partitions.PartitionSelection(
        keys=partitions.PartitionKeys(partition_keys=list(partition_keys))
    )


def _event(idempotency_key: str, at: datetime, kind: str, message: Message) -> events.Event:
    """An event whose `kind` (the oneof field: "materialization", "run_failed", ...) holds
    `message`: a new kind of event is one more builder calling this."""
    event = events.Event(idempotency_key=idempotency_key)
    event.event_time.FromDatetime(at)
    getattr(event, kind).CopyFrom(message)
    return event


def materialization(
    idempotency_key: str,
    at: datetime,
    asset_key: str,
    partition_key: str | None,
    *,
    run_id: str,
    data_version: str,
    code_version: str | None = None,
) -> events.Event:
    """A partition (None: an unpartitioned asset) was written by a run."""
    return _event(
        idempotency_key,
        at,
        "materialization",
        events.Materialization(
            asset_key=asset_key,
            partition_key=partition_key,
            run_id=run_id,
            data_version=data_version,
            code_version=code_version,
        ),
    )


def observation(
    idempotency_key: str,
    at: datetime,
    asset_key: str,
    partition_key: str | None,
    *,
    data_version: str,
) -> events.Event:
    """A source asset's partition was seen with this data version."""
    return _event(
        idempotency_key,
        at,
        "observation",
        events.Observation(
            asset_key=asset_key, partition_key=partition_key, data_version=data_version
        ),
    )


def run_started(
    idempotency_key: str,
    at: datetime,
    run_id: str,
    targets: Sequence[tuple[str, str | None]],
    *,
    lease: timedelta | None = None,
) -> events.Event:
    """A run started to write `targets` ((asset, partition key or None) pairs); it holds them
    for `lease` after `at` and after each heartbeat (None: the server's default)."""
    body = events.RunStarted(
        run_id=run_id,
        targets=[
            events.PartitionTarget(asset_key=asset_key, partition_key=partition_key)
            for asset_key, partition_key in targets
        ],
    )
    if lease is not None:
        body.lease.FromTimedelta(lease)
    return _event(idempotency_key, at, "run_started", body)


def run_heartbeat(idempotency_key: str, at: datetime, run_id: str) -> events.Event:
    """The run is alive: its lease now ends one lease after `at`."""
    return _event(idempotency_key, at, "run_heartbeat", events.RunHeartbeat(run_id=run_id))


def run_succeeded(idempotency_key: str, at: datetime, run_id: str) -> events.Event:
    return _event(idempotency_key, at, "run_succeeded", events.RunSucceeded(run_id=run_id))


def run_failed(idempotency_key: str, at: datetime, run_id: str, message: str = "") -> events.Event:
    """A run failed: its targets not materialized by then are no longer in progress."""
    return _event(
        idempotency_key, at, "run_failed", events.RunFailed(run_id=run_id, message=message)
    )


def run_canceled(
    idempotency_key: str, at: datetime, run_id: str, message: str = ""
) -> events.Event:
    return _event(
        idempotency_key, at, "run_canceled", events.RunCanceled(run_id=run_id, message=message)
    )
