"""What happened, as automation conditions read it: materializations, observations and runs.

Events are added in commit order, each with a `position` that grows in that order (Dagster's
storage id plays this part). "New since the last tick" means a position after the one the
previous tick saw. A key of `None` is the unpartitioned asset itself.

Not thread-safe while being built; the engine only reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum


class RunStatus(Enum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass
class Run:
    run_id: str
    # The assets the run targets (its asset selection), all for `partition_key`.
    assets: tuple[str, ...]
    partition_key: str | None
    status: RunStatus = RunStatus.STARTED


@dataclass(frozen=True)
class Update:
    """One materialization (or an observation of an observable source)."""

    position: int
    timestamp: float
    run_id: str | None
    data_version: str | None


@dataclass
class AssetHistory:
    """Everything kept of one asset."""

    # Per key, its materializations in commit order.
    materializations: dict[str | None, list[Update]] = field(default_factory=dict)
    # Per key, its observations in commit order.
    observations: dict[str | None, list[Update]] = field(default_factory=dict)
    # Per key, the latest planned materialization: (position, run id).
    planned: dict[str | None, tuple[int, str]] = field(default_factory=dict)
    # The asset's latest materialization of any key: (key, run id), None before the first.
    latest_materialization: tuple[str | None, str | None] | None = None

    def updates(self, observable: bool) -> dict[str | None, list[Update]]:
        """What counts as an update: observations for an observable source, else
        materializations (an observation of a materializable asset updates nothing)."""
        return self.observations if observable else self.materializations


class EventHistory:
    """The events of one namespace, in commit order."""

    def __init__(self) -> None:
        self.assets: dict[str, AssetHistory] = {}
        self.runs: dict[str, Run] = {}
        self.last_position = 0

    def asset(self, key: str) -> AssetHistory:
        found = self.assets.get(key)
        if found is None:
            found = self.assets[key] = AssetHistory()
        return found

    def _advance(self, position: int) -> None:
        if position <= self.last_position:
            raise ValueError(f"event position {position} is not after {self.last_position}")
        self.last_position = position

    def materialization(
        self,
        position: int,
        asset: str,
        partition_key: str | None,
        timestamp: float,
        run_id: str | None,
        data_version: str | None,
    ) -> None:
        self._advance(position)
        history = self.asset(asset)
        update = Update(position, timestamp, run_id or None, data_version or None)
        history.materializations.setdefault(partition_key, []).append(update)
        history.latest_materialization = (partition_key, update.run_id)

    def observation(
        self,
        position: int,
        asset: str,
        partition_key: str | None,
        timestamp: float,
        data_version: str | None,
    ) -> None:
        self._advance(position)
        update = Update(position, timestamp, None, data_version or None)
        self.asset(asset).observations.setdefault(partition_key, []).append(update)

    def run_started(
        self,
        position: int,
        run_id: str,
        assets: Iterable[str],
        partition_key: str | None,
        timestamp: float,
    ) -> None:
        """A run starts: one planned materialization per asset it targets, for its key."""
        self._advance(position)
        selection = tuple(assets)
        self.runs[run_id] = Run(run_id, selection, partition_key)
        for asset in selection:
            self.asset(asset).planned[partition_key] = (position, run_id)

    def run_succeeded(self, position: int, run_id: str, timestamp: float) -> None:
        self._advance(position)
        run = self.runs.get(run_id)
        if run is not None:
            run.status = RunStatus.SUCCEEDED

    def run_failed(self, position: int, run_id: str, timestamp: float) -> None:
        self._advance(position)
        run = self.runs.get(run_id)
        if run is not None:
            run.status = RunStatus.FAILED
