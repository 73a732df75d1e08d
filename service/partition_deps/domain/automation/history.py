"""What happened, as automation conditions read it: materializations, observations and runs.

Events are added in commit order, each with a `position` that grows in that order (Dagster's
storage id plays this part). "Since the previous tick" means a position after `seen`, the last
position the previous tick saw. A key of `None` is the unpartitioned asset itself.

Not thread-safe while being built; the engine only reads it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple

from partition_deps.domain.automation.facts import Keys

_EMPTY: Keys = frozenset()
_WHOLE: Keys = frozenset({None})


def _position(entry: tuple[int, str | None]) -> int:
    return entry[0]


def _update_position(entry: Update) -> int:
    return entry.position


class RunStatus(Enum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Ended without failing: its targets are neither in progress nor failed.
    CANCELED = "canceled"


@dataclass
class Run:
    run_id: str
    # The assets the run targets (its asset selection).
    assets: tuple[str, ...]
    status: RunStatus = RunStatus.STARTED


class Update(NamedTuple):
    """One materialization (or an observation of an observable source). A named tuple: a
    kept history holds one per event (a million for a large namespace), and a tuple is one
    object, smaller and quicker to make than a dataclass instance with its dict."""

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
    # Positions and keys of the materializations, then of the observations, in commit order:
    # what changed since a position is a bisection away.
    materialization_order: list[tuple[int, str | None]] = field(default_factory=list)
    observation_order: list[tuple[int, str | None]] = field(default_factory=list)
    # Keys with more than one update kept (what `compact` looks at).
    crowded: set[str | None] = field(default_factory=set)
    # The materialized keys as last asked for (keys are never forgotten, so a count that
    # still matches means the set still holds).
    materialized_keys: Keys | None = None

    def updates(self, observable: bool) -> dict[str | None, list[Update]]:
        """What counts as an update: observations for an observable source, else
        materializations (an observation of a materializable asset updates nothing)."""
        return self.observations if observable else self.materializations


class EventHistory:
    """The events of one namespace, in commit order; answers `facts.Facts`."""

    def __init__(self) -> None:
        self.assets: dict[str, AssetHistory] = {}
        self.runs: dict[str, Run] = {}
        self.last_position = 0
        # The last position the previous tick saw.
        self.seen = 0

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
        entries = history.materializations.setdefault(partition_key, [])
        entries.append(update)
        if len(entries) > 1:
            history.crowded.add(partition_key)
        history.materialization_order.append((position, partition_key))
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
        history = self.asset(asset)
        entries = history.observations.setdefault(partition_key, [])
        entries.append(update)
        if len(entries) > 1:
            history.crowded.add(partition_key)
        history.observation_order.append((position, partition_key))

    def run_started(
        self,
        position: int,
        run_id: str,
        targets: Iterable[tuple[str, str | None]],
        timestamp: float,
    ) -> None:
        """A run starts: one planned materialization per (asset, key) it targets."""
        self._advance(position)
        targets = tuple(targets)
        self.runs[run_id] = Run(run_id, tuple(sorted({asset for asset, _ in targets})))
        for asset, partition_key in targets:
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

    def run_canceled(self, position: int, run_id: str, timestamp: float) -> None:
        self._advance(position)
        run = self.runs.get(run_id)
        if run is not None:
            run.status = RunStatus.CANCELED

    def compact(self, boundary: int) -> None:
        """Forget what no tick seeing more than `boundary` can ask: per key, updates older
        than its latest at or before `boundary`. Call it with the last position a stored tick
        saw, so that a kept history stays small however long the namespace lives."""
        for history in self.assets.values():
            if history.crowded:
                for updates in (history.materializations, history.observations):
                    for key in [key for key in history.crowded if key in updates]:
                        entries = updates[key]
                        keep = bisect.bisect_right(entries, boundary, key=_update_position)
                        if keep > 1:
                            updates[key] = entries[keep - 1 :]
                history.crowded = {
                    key
                    for updates in (history.materializations, history.observations)
                    for key in history.crowded
                    if len(updates.get(key, ())) > 1
                }
            for order in (history.materialization_order, history.observation_order):
                first = bisect.bisect_right(order, boundary, key=_position)
                del order[:first]

    # ----- facts.Facts ------------------------------------------------------------------

    def _history(self, asset: str) -> AssetHistory:
        return self.assets.get(asset) or AssetHistory()

    def materialized(self, asset: str, observable: bool) -> Keys:
        history = self._history(asset)
        if observable:
            return frozenset(history.materializations.keys() | history.observations.keys())
        known = history.materialized_keys
        if known is None or len(known) != len(history.materializations):
            known = history.materialized_keys = frozenset(history.materializations)
        return known

    def updated(self, asset: str, observable: bool) -> Keys:
        history = self._history(asset)
        order = history.observation_order if observable else history.materialization_order
        first = bisect.bisect_right(order, self.seen, key=_position)
        return frozenset(key for _, key in order[first:])

    def update_times(self, asset: str, keys: Keys) -> Mapping[str | None, float]:
        materializations = self._history(asset).materializations
        return {key: materializations[key][-1].timestamp for key in keys if key in materializations}

    def data_version_changed(self, asset: str, observable: bool, partitioned: bool) -> Keys:
        changed: set[str | None] = set()
        for key, entries in self._history(asset).updates(observable).items():
            if entries[-1].position <= self.seen:
                continue
            before = [entry for entry in entries if entry.position <= self.seen]
            old = before[-1].data_version if before else None
            new = entries[-1].data_version
            if new != old and (new or not partitioned):
                changed.add(key)
        return frozenset(changed)

    def _attempts(self, asset: str, status: RunStatus) -> Keys:
        """Partitions whose latest planned materialization, not followed by a
        materialization, belongs to a run in `status`."""
        history = self._history(asset)
        keys: set[str | None] = set()
        for key, (position, run_id) in history.planned.items():
            latest = history.materializations.get(key)
            if latest and latest[-1].position > position:
                continue
            run = self.runs.get(run_id)
            if run is not None and run.status is status:
                keys.add(key)
        return frozenset(keys)

    def in_progress(self, asset: str, partitioned: bool) -> Keys:
        if partitioned:
            return self._attempts(asset, RunStatus.STARTED)
        history = self._history(asset)
        planned = history.planned.get(None)
        if planned is None:
            return _EMPTY
        latest = history.latest_materialization
        if latest is not None and latest[1] == planned[1]:
            return _EMPTY
        run = self.runs.get(planned[1])
        return _WHOLE if run is not None and run.status is RunStatus.STARTED else _EMPTY

    def failed_attempts(self, asset: str, partitioned: bool) -> Keys:
        if partitioned:
            return self._attempts(asset, RunStatus.FAILED)
        history = self._history(asset)
        planned = history.planned.get(None)
        if planned is None:
            return _EMPTY
        run = self.runs.get(planned[1])
        if run is None or run.status is not RunStatus.FAILED:
            return _EMPTY
        entries = history.materializations.get(None, [])
        if any(e.run_id == planned[1] and e.position > planned[0] for e in entries):
            return _EMPTY
        return _WHOLE

    def latest_materialization(self, asset: str) -> tuple[str | None, str | None] | None:
        return self._history(asset).latest_materialization

    def run_assets(self, run_id: str) -> tuple[str, ...] | None:
        run = self.runs.get(run_id)
        return None if run is None else run.assets
