"""Ticks as the service keeps and answers them, around the engine: the event history it reads
(from stored events) and the summary it stores of each outcome (requests, run requests, and
per asset the evaluation tree as counts and ranges of partitions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from partition_deps.domain import partitions
from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.automation.engine import NodeEvaluation, TickOutcome
from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition, TimeWindowPartitions
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.events import Event, Materialization, Observation, RunFailed, RunStarted
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


@dataclass(frozen=True)
class NodeSummary:
    """One node of an evaluation tree: where it was true, as a count and ranges."""

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

    Positions come from event ids, which grow in commit order within a namespace: an event's
    is twice its id, and a run's success, inferred after the materialization that completes
    it, takes the next one (the events carry no run success of their own: a run has succeeded
    once each of its targets was materialized under its id).

    Not thread-safe: one tick of a namespace at a time uses it.
    """

    def __init__(self) -> None:
        self.history = EventHistory()
        self.last_event_id = 0
        # Per run still going: the targets it has not materialized yet.
        self._unwritten: dict[str, set[tuple[str, str | None]]] = {}

    def add(self, event_id: int, event: Event) -> None:
        history = self.history
        position = 2 * event_id
        timestamp = event.event_time.timestamp()
        match event:
            case Materialization():
                run_id = event.run_id or None
                history.materialization(
                    position,
                    event.asset_key,
                    event.partition_key,
                    timestamp,
                    run_id,
                    event.data_version or None,
                )
                unwritten = self._unwritten.get(event.run_id)
                if unwritten is not None:
                    unwritten.discard((event.asset_key, event.partition_key))
                    if not unwritten:
                        del self._unwritten[event.run_id]
                        history.run_succeeded(position + 1, event.run_id, timestamp)
            case Observation():
                history.observation(
                    position,
                    event.asset_key,
                    event.partition_key,
                    timestamp,
                    event.data_version or None,
                )
            case RunStarted():
                targets = [(target.asset_key, target.partition_key) for target in event.targets]
                if targets:
                    self._unwritten[event.run_id] = set(targets)
                history.run_started(position, event.run_id, targets, timestamp)
            case RunFailed():
                self._unwritten.pop(event.run_id, None)
                history.run_failed(position, event.run_id, timestamp)
        self.last_event_id = event_id

    def for_tick(self, seen_event_id: int) -> EventHistory:
        """The history for a tick whose previous tick read the events up to `seen_event_id`
        (0: no previous tick): what it saw is old, the rest new."""
        boundary = 2 * seen_event_id + 1
        self.history.compact(boundary)
        self.history.seen = boundary
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
    trees = tuple(
        (key, _node_summary(root, assets[key].partitions, at))
        for key, root in sorted(outcome.trees.items())
    )
    run_requests = tuple(
        RunRequest(request.partition_key, tuple(request.assets)) for request in outcome.run_requests
    )
    return TickSummary(requested, run_requests, trees)


def _node_summary(
    node: NodeEvaluation, definition: PartitionsDefinition | None, at: Evaluation
) -> NodeSummary:
    keys = [key for key in node.true_keys if key is not None]
    return NodeSummary(
        label=node.label,
        true_count=len(node.true_keys),
        true_runs=key_runs(definition, keys, at),
        candidate_count=node.candidate_count,
        children=tuple(_node_summary(child, definition, at) for child in node.children),
    )


def key_runs(
    definition: PartitionsDefinition | None, keys: Sequence[str], at: Evaluation
) -> tuple[PartitionRun, ...]:
    """`keys` (in the definition's order) as runs of partitions consecutive in that order at
    `at`; a key that is not a partition at `at` is a run of its own."""
    if definition is None or not keys:
        return ()
    positions = _positions(definition, keys, at)
    runs: list[PartitionRun] = []
    first = 0
    for index in range(1, len(keys) + 1):
        if index < len(keys):
            here, before = positions[index], positions[index - 1]
            if here is not None and before is not None and here == before + 1:
                continue
        runs.append(_run(definition, keys[first], keys[index - 1], index - first))
        first = index
    return tuple(runs)


def _positions(
    definition: PartitionsDefinition, keys: Sequence[str], at: Evaluation
) -> list[int | None]:
    if isinstance(definition, TimeWindowPartitions):
        windows = compile_time_windows(definition)
        now = partitions.now_of(at)
        try:
            return list(windows.check_keys(keys, now))
        except PartitionDepsError:
            found: list[int | None] = []
            for key in keys:
                try:
                    found.append(windows.check_key(key, now))
                except PartitionDepsError:
                    found.append(None)
            return found
    index = {
        key: position for position, key in enumerate(partitions.all_partitions(definition, at))
    }
    return [index.get(key) for key in keys]


def _run(definition: PartitionsDefinition, first: str, last: str, count: int) -> PartitionRun:
    if not isinstance(definition, TimeWindowPartitions):
        return PartitionRun(first, last, count)
    try:
        start = partitions.time_window_for_key(definition, first)[0]
        end = partitions.time_window_for_key(definition, last)[1]
    except PartitionDepsError:
        return PartitionRun(first, last, count)
    return PartitionRun(first, last, count, start, end)
