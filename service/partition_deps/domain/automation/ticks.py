"""Ticks as the service keeps and answers them, around the engine: the event history it reads
(from stored events) and the summary it stores of each outcome (requests, run requests, and
per asset the evaluation tree as counts and ranges of partitions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from partition_deps.domain import partitions
from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.automation.engine import NodeEvaluation, TickOutcome
from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition, TimeWindowPartitions
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.events import (
    Event,
    Materialization,
    Observation,
    RunCanceled,
    RunFailed,
    RunStarted,
    RunSucceeded,
)
from partition_deps.domain.results import PartitionRun


@dataclass(frozen=True)
class AssetRequest:
    asset_key: str
    # In the definition's order; None: the (unpartitioned) asset itself is requested.
    keys: tuple[str, ...] | None
    # `keys` as runs of consecutive partitions (none for an unpartitioned asset).
    runs: tuple[PartitionRun, ...]


@dataclass(frozen=True)
class RunRequest:
    """One run to launch: these assets, for this key (None: the unpartitioned assets)."""

    partition_key: str | None
    asset_keys: tuple[str, ...]


class NodeSummary(NamedTuple):
    """One node of an evaluation tree: where it was true, as a count and ranges (a named tuple:
    a 1,000-asset tick builds about 47,000 of them)."""

    label: str
    true_count: int
    true_runs: tuple[PartitionRun, ...]
    candidate_count: int
    children: tuple[NodeSummary, ...]


@dataclass(frozen=True)
class TickSummary:
    requested: tuple[AssetRequest, ...]  # in asset key order
    run_requests: tuple[RunRequest, ...]
    trees: tuple[tuple[str, NodeSummary], ...]  # (asset key, root), in asset key order

    @property
    def requested_count(self) -> int:
        return sum(1 if request.keys is None else len(request.keys) for request in self.requested)


class HistoryFeed:
    """An event history fed the stored events of one namespace in commit order, kept from
    tick to tick so that each tick reads only the events stored since the previous one.

    Positions are event ids, which grow in commit order within a namespace. Heartbeats and
    leases play no part: Dagster's conditions see a run in progress until its end event.

    Not thread-safe: one tick of a namespace at a time uses it.
    """

    def __init__(self) -> None:
        self.history = EventHistory()
        self.last_event_id = 0

    def add(self, event_id: int, event: Event) -> None:
        history = self.history
        timestamp = event.event_time.timestamp()
        match event:
            case Materialization():
                self.materialization(
                    event_id,
                    event.asset_key,
                    event.partition_key,
                    timestamp,
                    event.run_id or None,
                    event.data_version or None,
                )
            case Observation():
                history.observation(
                    event_id,
                    event.asset_key,
                    event.partition_key,
                    timestamp,
                    event.data_version or None,
                )
            case RunStarted():
                targets = [(target.asset_key, target.partition_key) for target in event.targets]
                history.run_started(event_id, event.run_id, targets, timestamp)
            case RunSucceeded():
                history.run_succeeded(event_id, event.run_id, timestamp)
            case RunFailed():
                history.run_failed(event_id, event.run_id, timestamp)
            case RunCanceled():
                history.run_canceled(event_id, event.run_id, timestamp)
        self.last_event_id = event_id

    def materialization(
        self,
        event_id: int,
        asset_key: str,
        partition_key: str | None,
        timestamp: float,
        run_id: str | None,
        data_version: str | None,
    ) -> None:
        """`add` of a materialization without an Event around it: a namespace's first tick on a
        server feeds every event it has, most of them materializations."""
        self.history.materialization(
            event_id, asset_key, partition_key, timestamp, run_id, data_version
        )
        self.last_event_id = event_id

    def for_tick(self, seen_event_id: int) -> EventHistory:
        """The history for a tick whose previous tick read the events up to `seen_event_id`
        (0: no previous tick): what it saw is old, the rest new."""
        self.history.compact(seen_event_id)
        self.history.seen = seen_event_id
        return self.history


def summarize(
    outcome: TickOutcome, assets: Mapping[str, AssetDefinition], at: Evaluation
) -> TickSummary:
    """What a tick keeps of the engine's outcome; partition ranges follow each definition's
    order at the evaluation time."""
    requested = tuple(
        AssetRequest(
            key,
            None if keys is None else tuple(keys),
            () if keys is None else key_runs(assets[key].partitions, keys, at),
        )
        for key, keys in sorted(outcome.requested.items())
    )
    # Nodes often share a set of keys (every partition, the latest window): summarised once.
    memo: dict[tuple[PartitionsDefinition, frozenset[str | None]], tuple[PartitionRun, ...]] = {}
    trees = tuple(
        (key, _node_summary(root, assets, at, memo)) for key, root in sorted(outcome.trees.items())
    )
    run_requests = tuple(
        RunRequest(request.partition_key, tuple(request.assets)) for request in outcome.run_requests
    )
    return TickSummary(requested, run_requests, trees)


def _node_summary(
    node: NodeEvaluation,
    assets: Mapping[str, AssetDefinition],
    at: Evaluation,
    memo: dict[tuple[PartitionsDefinition, frozenset[str | None]], tuple[PartitionRun, ...]],
) -> NodeSummary:
    """`node` summarised with the definition of the asset it ran on (a dependency's, below
    `any_deps_match` / `all_deps_match`)."""
    true_keys = node.true_keys
    runs: tuple[PartitionRun, ...] = ()
    if true_keys:
        asset = assets.get(node.asset)
        if asset is not None and asset.partitions is not None:
            memo_key = (asset.partitions, true_keys)
            found = memo.get(memo_key)
            if found is None:
                keys = [key for key in true_keys if key is not None]
                found = memo[memo_key] = key_runs(asset.partitions, keys, at)
            runs = found
    return NodeSummary(
        label=node.label,
        true_count=len(true_keys),
        true_runs=runs,
        candidate_count=node.candidate_count,
        children=tuple([_node_summary(child, assets, at, memo) for child in node.children]),
    )


def key_runs(
    definition: PartitionsDefinition | None, keys: Iterable[str], at: Evaluation
) -> tuple[PartitionRun, ...]:
    """`keys`, in any order, as runs of partitions consecutive in the definition's order at
    `at`, in that order; a key that is not a partition at `at` is a run of its own, after the
    others (by code point)."""
    keys = list(keys)
    if definition is None or not keys:
        return ()
    if isinstance(definition, TimeWindowPartitions):
        return _time_runs(definition, keys, at)
    index = {
        key: position for position, key in enumerate(partitions.all_partitions(definition, at))
    }
    placed = sorted((index[key], key) for key in keys if key in index)
    runs = [PartitionRun(group[0][1], group[-1][1], len(group)) for group in _consecutive(placed)]
    runs.extend(
        PartitionRun(key, key, 1) for key in sorted(key for key in keys if key not in index)
    )
    return tuple(runs)


def _time_runs(
    definition: TimeWindowPartitions, keys: list[str], at: Evaluation
) -> tuple[PartitionRun, ...]:
    windows = compile_time_windows(definition)
    now = partitions.now_of(at)
    placed: list[tuple[int, str]] = []
    unplaced: list[str] = []
    try:
        placed = sorted(zip(windows.check_keys(keys, now), keys, strict=True))
    except PartitionDepsError:
        for key in keys:
            try:
                placed.append((windows.check_key(key, now), key))
            except PartitionDepsError:
                unplaced.append(key)
        placed.sort()
    runs = []
    for group in _consecutive(placed):
        first, last = windows.window(group[0][0]), windows.window(group[-1][0])
        runs.append(
            PartitionRun(
                group[0][1],
                group[-1][1],
                len(group),
                datetime.fromtimestamp(first.start, UTC),
                datetime.fromtimestamp(last.end, UTC),
            )
        )
    runs.extend(PartitionRun(key, key, 1) for key in sorted(unplaced))
    return tuple(runs)


def _consecutive(placed: list[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """(position, key) pairs, sorted, cut where positions stop following each other."""
    groups: list[list[tuple[int, str]]] = []
    for item in placed:
        if groups and item[0] == groups[-1][-1][0] + 1:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups
