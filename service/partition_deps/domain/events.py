"""What happened to assets: materializations, observations, and the life of runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PartitionTarget:
    """One asset partition; `partition_key=None` is an unpartitioned asset."""

    asset_key: str
    partition_key: str | None = None


@dataclass(frozen=True)
class Materialization:
    idempotency_key: str
    event_time: datetime
    asset_key: str
    partition_key: str | None
    run_id: str
    data_version: str
    code_version: str | None = None


@dataclass(frozen=True)
class Observation:
    idempotency_key: str
    event_time: datetime
    asset_key: str
    partition_key: str | None
    data_version: str


@dataclass(frozen=True)
class RunStarted:
    """The targets are in progress until materialized by this run, until the run ends, or
    until its lease runs out: `lease` after the start or after its latest heartbeat (None:
    the server's default)."""

    idempotency_key: str
    event_time: datetime
    run_id: str
    targets: tuple[PartitionTarget, ...] = ()
    lease: timedelta | None = None


@dataclass(frozen=True)
class RunFailed:
    idempotency_key: str
    event_time: datetime
    run_id: str
    message: str = ""


@dataclass(frozen=True)
class RunSucceeded:
    idempotency_key: str
    event_time: datetime
    run_id: str


@dataclass(frozen=True)
class RunCanceled:
    idempotency_key: str
    event_time: datetime
    run_id: str
    message: str = ""


@dataclass(frozen=True)
class RunHeartbeat:
    """The run is alive: its lease now ends one lease after `event_time`."""

    idempotency_key: str
    event_time: datetime
    run_id: str


RunEnded = RunFailed | RunSucceeded | RunCanceled
Event = Materialization | Observation | RunStarted | RunHeartbeat | RunEnded
