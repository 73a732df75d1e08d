"""What happened to assets: materializations, observations, runs started and failed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


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
    """The targets are in progress until materialized by this run or the run fails."""

    idempotency_key: str
    event_time: datetime
    run_id: str
    targets: tuple[PartitionTarget, ...] = ()


@dataclass(frozen=True)
class RunFailed:
    idempotency_key: str
    event_time: datetime
    run_id: str
    message: str = ""


Event = Materialization | Observation | RunStarted | RunFailed
