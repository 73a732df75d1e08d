"""Staleness with causes, and "what should run now", over an asset graph and its events.

Pure rules: the caller supplies what happened through `History` (the store implements it with
index lookups). Two sets of rules (`Semantics`):

- EXTENDED (the default): Dagster's in spirit (direct dependencies only) plus what it leaves
  out: missing and nonexistent upstream partitions are causes, an upstream counts as updated
  when stored after this partition with a changed data version, no 100-partition cut-off
  unless asked (`dagster_cutoff`), and optionally the transitive walk (an upstream that is
  itself stale or missing, with the path to the root cause).
- DAGSTER: `CachingStaleStatusResolver` of Dagster 1.13, cause for cause
  (`_dagster_causes`); checked against 200 cases Dagster computed (tests/staleness/).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation, MultiPartitions, TimeWindowPartitions
from partition_deps.domain.dependencies import upstream_partitions
from partition_deps.domain.mappings.inference import resolve_mapping
from partition_deps.domain.mappings.kinds import AllMapping
from partition_deps.domain.partitions import all_partitions, sorted_dimensions
from partition_deps.domain.work import checkpoint

# Dagster skips a dependency edge that maps to this many upstream partitions or more.
DAGSTER_PARTITION_CUTOFF = 100


class Semantics(enum.Enum):
    EXTENDED = "extended"
    DAGSTER = "dagster"


class Status(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"
    MISSING = "missing"


class CauseKind(enum.Enum):
    NEVER_MATERIALIZED = "never_materialized"
    UPSTREAM_UPDATED = "upstream_updated"
    CODE_VERSION_CHANGED = "code_version_changed"
    DEPENDENCY_ADDED = "dependency_added"
    DEPENDENCY_REMOVED = "dependency_removed"
    UPSTREAM_MISSING = "upstream_missing"
    UPSTREAM_NONEXISTENT = "upstream_nonexistent"
    UPSTREAM_STALE = "upstream_stale"
    # Not a rule's cause: noted on a partition that is not FRESH when the run that was to
    # write it lost its lease (`lease_expired`).
    RUN_LEASE_EXPIRED = "run_lease_expired"


@dataclass(frozen=True)
class Materialized:
    """The latest materialization of one asset partition."""

    event_id: int
    time: datetime
    data_version: str | None = None
    code_version: str | None = None
    # Upstream asset keys of the asset when this was recorded; None when unknown.
    dependencies: frozenset[str] | None = None
    # Per upstream asset: the id of its latest event (any partition) stored before this one,
    # None when it had none (Dagster's input event pointer). The mapping is None when not
    # recorded: this event's own id then stands in (the same answer unless the upstream had
    # no event at all).
    input_event_ids: Mapping[str, int | None] | None = None

    def input_event_id(self, upstream_key: str) -> int | None:
        if self.input_event_ids is None:
            return self.event_id
        return self.input_event_ids.get(upstream_key)


@dataclass(frozen=True)
class Observed:
    """The latest observation of one asset partition (a source asset, reported by whoever
    produces it: its data version, without a materialization here)."""

    event_id: int
    time: datetime
    data_version: str | None = None


class History(Protocol):
    """What happened, as the staleness rules need it."""

    def latest(self, asset_key: str, partition_key: str | None) -> Materialized | None:
        """The latest materialization of the partition (None: never materialized)."""
        ...

    def latest_observation(self, asset_key: str, partition_key: str | None) -> Observed | None:
        """The latest observation of the partition (None: never observed)."""
        ...

    def data_version_at(
        self, asset_key: str, partition_key: str | None, event_id: int
    ) -> str | None:
        """The data version the partition had just after event `event_id`, from its
        materializations and observations (None: none yet)."""
        ...

    def run_in_progress(
        self, asset_key: str, partition_key: str | None, as_of: datetime
    ) -> str | None:
        """The run that holds the partition at `as_of` (started for it, has neither
        materialized it nor ended, lease not expired), or None."""
        ...


@dataclass(frozen=True)
class Cause:
    kind: CauseKind
    message: str
    upstream_asset: str | None = None
    upstream_partition: str | None = None
    upstream_time: datetime | None = None
    # Transitive causes: the (asset, partition) hops from this partition to the root cause.
    path: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class PartitionStatus:
    asset_key: str
    partition_key: str | None
    status: Status
    causes: tuple[Cause, ...] = ()


@dataclass(frozen=True)
class StalenessOptions:
    # EXTENDED only (Dagster's staleness is not transitive).
    transitive: bool = False
    # Dagster's skipped edges: 100+ mapped partitions, a time parent through All, a large
    # self-dependency. Off by default in EXTENDED: we never silently ignore a dependency.
    dagster_cutoff: bool = False
    semantics: Semantics = Semantics.EXTENDED

    @property
    def cutoff(self) -> bool:
        return self.dagster_cutoff or self.semantics is Semantics.DAGSTER


@dataclass
class _Context:
    graph: Mapping[str, AssetDefinition]
    history: History
    at: Evaluation
    options: StalenessOptions
    memo: dict[tuple[str, str | None], PartitionStatus] = field(default_factory=dict)
    visiting: set[tuple[str, str | None]] = field(default_factory=set)
    # `mapped_upstream` answers by (asset, upstream, partition): a plan reads each one twice.
    mapped: dict[tuple[str, str, str | None], tuple[list[str | None], list[str]]] = field(
        default_factory=dict
    )

    def mapped_upstream(
        self, asset: AssetDefinition, upstream_key: str, partition_key: str | None
    ) -> tuple[list[str | None], list[str]]:
        node = (asset.key, upstream_key, partition_key)
        found = self.mapped.get(node)
        if found is None:
            found = self.mapped[node] = mapped_upstream(
                self.graph, asset, upstream_key, partition_key, self.at
            )
        return found


def partition_status(
    graph: Mapping[str, AssetDefinition],
    asset_key: str,
    partition_key: str | None,
    history: History,
    at: Evaluation,
    options: StalenessOptions = StalenessOptions(),
) -> PartitionStatus:
    """Status of one asset partition, with every cause."""
    return _status(_Context(graph, history, at, options), asset_key, partition_key)


def statuses(
    graph: Mapping[str, AssetDefinition],
    asset_key: str,
    partition_keys: Iterable[str | None],
    history: History,
    at: Evaluation,
    options: StalenessOptions = StalenessOptions(),
) -> list[PartitionStatus]:
    context = _Context(graph, history, at, options)
    answer: list[PartitionStatus] = []
    for count, key in enumerate(partition_keys):
        if not count % 1024:
            checkpoint()
        answer.append(_status(context, asset_key, key))
    return answer


def _status(context: _Context, asset_key: str, partition_key: str | None) -> PartitionStatus:
    node = (asset_key, partition_key)
    known = context.memo.get(node)
    if known is not None:
        return known
    asset = context.graph[asset_key]
    if asset.observable_source:
        result = context.memo[node] = PartitionStatus(asset_key, partition_key, Status.FRESH)
        return result
    latest = context.history.latest(asset_key, partition_key)
    if latest is None:
        observed = context.history.latest_observation(asset_key, partition_key) is not None
        result = context.memo[node] = unrecorded_status(asset_key, partition_key, observed)
        return result
    if context.options.semantics is Semantics.DAGSTER:
        causes = list(_dagster_causes(context, asset, partition_key, latest))
    else:
        context.visiting.add(node)
        causes = own_causes(asset, latest)
        for dependency in asset.dependencies:
            causes.extend(_dependency_causes(context, asset, partition_key, latest, dependency))
        context.visiting.discard(node)
    result = PartitionStatus(
        asset_key, partition_key, Status.STALE if causes else Status.FRESH, tuple(causes)
    )
    context.memo[node] = result
    return result


# The causes of every partition without a materialization or an observation (one immutable
# value, shared by all of them).
NEVER_MATERIALIZED = (Cause(CauseKind.NEVER_MATERIALIZED, "never materialized"),)


def unrecorded_status(asset_key: str, partition_key: str | None, observed: bool) -> PartitionStatus:
    """The status of a partition never materialized: FRESH when it was observed (an observed
    source: it exists, and nothing here materializes it), else MISSING."""
    if observed:
        return PartitionStatus(asset_key, partition_key, Status.FRESH)
    return PartitionStatus(asset_key, partition_key, Status.MISSING, NEVER_MATERIALIZED)


def own_causes(
    asset: AssetDefinition, latest: Materialized, dependency_keys: frozenset[str] | None = None
) -> list[Cause]:
    """The causes in the partition itself: a code version other than the asset's, dependencies
    added or removed since it was materialized. `dependency_keys`: the asset's upstream keys,
    when the caller computed them once for many partitions."""
    if dependency_keys is None:
        dependency_keys = frozenset(dependency.upstream_key for dependency in asset.dependencies)
    if (asset.code_version is None or latest.code_version == asset.code_version) and (
        latest.dependencies is None or latest.dependencies == dependency_keys
    ):
        return []  # the common case, decided without building anything
    causes = list(_code_and_removed_causes(asset, latest))
    if latest.dependencies is not None:
        for added in sorted(dependency_keys - latest.dependencies):
            causes.append(Cause(CauseKind.DEPENDENCY_ADDED, f"new dependency on {added!r}", added))
    return causes


def _code_and_removed_causes(asset: AssetDefinition, latest: Materialized) -> Iterable[Cause]:
    if asset.code_version is not None and latest.code_version != asset.code_version:
        yield Cause(
            CauseKind.CODE_VERSION_CHANGED,
            f"code version is {asset.code_version!r}, materialized with {latest.code_version!r}",
        )
    if latest.dependencies is not None:
        current = {dependency.upstream_key for dependency in asset.dependencies}
        for removed in sorted(latest.dependencies - current):
            yield Cause(CauseKind.DEPENDENCY_REMOVED, f"dependency on {removed!r} removed", removed)


def _dagster_causes(
    context: _Context, asset: AssetDefinition, partition_key: str | None, latest: Materialized
) -> Iterable[Cause]:
    """Dagster's causes of a materialized partition: code version, removed dependencies, then
    per existing upstream partition the mapping gives (edges past the cut-offs skipped), a new
    dependency or an updated input. Missing and nonexistent upstream partitions never count."""
    yield from _code_and_removed_causes(asset, latest)
    for dependency in sorted(asset.dependencies, key=lambda d: d.upstream_key):
        upstream_key = dependency.upstream_key
        if upstream_key not in context.graph:
            continue
        mapped, _ = context.mapped_upstream(asset, upstream_key, partition_key)
        if _skipped_by_dagster(context, asset, upstream_key, mapped):
            continue
        added = latest.dependencies is not None and upstream_key not in latest.dependencies
        for upstream_partition in mapped:
            if added:
                yield Cause(
                    CauseKind.DEPENDENCY_ADDED,
                    f"new dependency on {_label(upstream_key, upstream_partition)}",
                    upstream_key,
                    upstream_partition,
                )
                continue
            record = _updated_since_input(context.history, upstream_key, upstream_partition, latest)
            if record is not None:
                yield updated_cause(upstream_key, upstream_partition, record)


def _updated_since_input(
    history: History, upstream_key: str, upstream_partition: str | None, latest: Materialized
) -> Materialized | Observed | None:
    """The upstream partition's latest record when it changed the data version this partition
    read (Dagster's `_is_dep_updated`), else None.

    The reference is the upstream asset's latest event when this partition was stored (the
    input event pointer). A partitioned upstream with no event then never counts (Dagster
    looks for records "after" a null pointer and compares with itself); an unpartitioned one
    compares the version read (none) with its current one.
    """
    record = latest_record(history, upstream_key, upstream_partition)
    if record is None:
        return None
    pointer = latest.input_event_id(upstream_key)
    if pointer is None:
        return None if upstream_partition is not None else record
    version_before = (
        history.data_version_at(upstream_key, upstream_partition, pointer)
        if version_needed(record, pointer)
        else None
    )
    return record if input_updated(record, pointer, version_before) else None


def mapped_upstream(
    graph: Mapping[str, AssetDefinition],
    asset: AssetDefinition,
    upstream_key: str,
    partition_key: str | None,
    at: Evaluation,
) -> tuple[list[str | None], list[str]]:
    """(existing upstream partitions, required-but-nonexistent keys) one partition reads."""
    upstream = graph[upstream_key]
    dependency = next(d for d in asset.dependencies if d.upstream_key == upstream_key)
    if upstream.partitions is None:
        return [None], []
    keys = [] if partition_key is None else [partition_key]
    result = upstream_partitions(
        upstream.partitions, asset.partitions, dependency.mapping, keys, at
    )
    return list(result.partitions), list(result.required_but_nonexistent)


def _skipped_by_dagster(
    context: _Context, asset: AssetDefinition, upstream_key: str, mapped: Sequence[str | None]
) -> bool:
    upstream = context.graph[upstream_key]
    dependency = next(d for d in asset.dependencies if d.upstream_key == upstream_key)
    mapping = resolve_mapping(upstream.partitions, asset.partitions, dependency.mapping)
    if isinstance(upstream.partitions, TimeWindowPartitions) and isinstance(mapping, AllMapping):
        return True
    large_self_dependency = (
        upstream_key == asset.key
        and asset.partitions is not None
        and len(all_partitions(asset.partitions, context.at)) >= DAGSTER_PARTITION_CUTOFF
    )
    return large_self_dependency or len(mapped) >= DAGSTER_PARTITION_CUTOFF


def _dependency_causes(
    context: _Context,
    asset: AssetDefinition,
    partition_key: str | None,
    latest: Materialized,
    dependency: Dependency,
) -> Iterable[Cause]:
    upstream_key = dependency.upstream_key
    if upstream_key not in context.graph:
        return
    mapped, nonexistent = context.mapped_upstream(asset, upstream_key, partition_key)
    if context.options.cutoff and _skipped_by_dagster(context, asset, upstream_key, mapped):
        return
    history = context.history
    # A source is produced outside: one never observed is unknown, not missing.
    source = context.graph[upstream_key].observable_source
    for missing_key in nonexistent:
        yield Cause(
            CauseKind.UPSTREAM_NONEXISTENT,
            f"{upstream_key} {missing_key} is required but does not exist",
            upstream_key,
            missing_key,
        )
    for upstream_partition in mapped:
        record = latest_record(history, upstream_key, upstream_partition)
        if record is None and source:
            continue
        version_before = (
            history.data_version_at(upstream_key, upstream_partition, latest.event_id)
            if record is not None and version_needed(record, latest.event_id)
            else None
        )
        cause = input_cause(
            upstream_key, upstream_partition, record, latest.event_id, version_before
        )
        if cause is not None:
            yield cause
        elif context.options.transitive and (upstream_key, upstream_partition) not in (
            context.visiting
        ):
            upstream_status = _status(context, upstream_key, upstream_partition)
            if upstream_status.status is not Status.FRESH:
                yield transitive_cause(upstream_status)


def input_cause(
    upstream_key: str,
    upstream_partition: str | None,
    record: Materialized | Observed | None,
    since: int,
    version_before: str | None,
) -> Cause | None:
    """What one upstream partition (its latest record) says of a partition materialized at
    event `since`: missing, or updated since (`input_updated`); None when it is as it was read.
    `version_before`: its data version as of `since`, read where `version_needed`."""
    if record is None:
        return Cause(
            CauseKind.UPSTREAM_MISSING,
            f"{_label(upstream_key, upstream_partition)} is missing",
            upstream_key,
            upstream_partition,
        )
    if input_updated(record, since, version_before):
        return updated_cause(upstream_key, upstream_partition, record)
    return None


def version_needed(record: Materialized | Observed, since: int) -> bool:
    """Whether `input_updated` needs the upstream's data version as of event `since`: for a
    newer record that carries a data version (without one, any newer record counts)."""
    return record.event_id > since and record.data_version is not None


def input_updated(record: Materialized | Observed, since: int, version_before: str | None) -> bool:
    """Whether the upstream partition changed after event `since`: a newer record, with no
    data version or with another than `version_before`, the one it had as of `since`."""
    return record.event_id > since and (
        record.data_version is None or version_before != record.data_version
    )


def _label(asset_key: str, partition_key: str | None) -> str:
    return asset_key if partition_key is None else f"{asset_key} {partition_key}"


def latest_record(
    history: History, asset_key: str, partition_key: str | None
) -> Materialized | Observed | None:
    """The newer of the partition's latest materialization and latest observation: what a
    downstream partition compares itself with."""
    materialized = history.latest(asset_key, partition_key)
    observed = history.latest_observation(asset_key, partition_key)
    if observed is None or (materialized is not None and materialized.event_id > observed.event_id):
        return materialized
    return observed


def updated_cause(
    upstream_key: str,
    upstream_partition: str | None,
    record: Materialized | Observed,
) -> Cause:
    how = "observed with a new data version" if isinstance(record, Observed) else "materialized"
    return Cause(
        CauseKind.UPSTREAM_UPDATED,
        f"{_label(upstream_key, upstream_partition)} was {how} after this partition",
        upstream_key,
        upstream_partition,
        record.time,
    )


def transitive_cause(upstream: PartitionStatus) -> Cause:
    """The cause an upstream partition that is not FRESH gives: the path to its root cause."""
    hop = (upstream.asset_key, upstream.partition_key)
    root = upstream.causes[0]
    return Cause(
        CauseKind.UPSTREAM_STALE,
        f"{_label(*hop)} is {upstream.status.value}: {root.message}",
        upstream.asset_key,
        upstream.partition_key,
        root.upstream_time,
        (hop, *root.path),
    )


# ----- planning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRun:
    """Consecutive partitions of one asset to materialize together, and why."""

    asset_key: str
    partition_keys: tuple[str | None, ...]
    reason: str
    # True: every input exists and is fresh now, so it can launch at once. False: it waits for
    # runs planned upstream of it in this same plan, or for runs in progress.
    ready: bool = True
    # The runs in progress that hold upstream partitions it reads (sorted run ids).
    waiting_for_runs: tuple[str, ...] = ()


def topological_order(graph: Mapping[str, AssetDefinition]) -> list[str]:
    """Asset keys, every asset after the assets it depends on (ties by key)."""
    order: list[str] = []
    placed: set[str] = set()
    remaining = sorted(graph)
    while remaining:
        ready = [
            key
            for key in remaining
            if all(
                dep.upstream_key in placed
                or dep.upstream_key not in graph
                or dep.upstream_key == key
                for dep in graph[key].dependencies
            )
        ]
        if not ready:  # a cycle (rejected at registration); keep going deterministically
            ready = remaining[:1]
        order.extend(ready)
        placed.update(ready)
        remaining = [key for key in remaining if key not in placed]
    return order


def latest_window_keys(asset: AssetDefinition, at: Evaluation) -> list[str | None]:
    """Dagster's `in_latest_time_window`: the last time partition (every key with it, for multi)."""
    partitions = asset.partitions
    if partitions is None:
        return [None]
    keys: list[str | None] = list(all_partitions(partitions, at))
    if isinstance(partitions, TimeWindowPartitions):
        return keys[-1:]
    if isinstance(partitions, MultiPartitions):
        dimensions = sorted_dimensions(partitions)
        time_positions = [
            index
            for index, dimension in enumerate(dimensions)
            if isinstance(dimension.partitions, TimeWindowPartitions)
        ]
        if len(time_positions) == 1:
            position = time_positions[0]
            time_keys = list(all_partitions(dimensions[position].partitions, at))
            if not time_keys:
                return []
            return [
                key for key in keys if key is not None and key.split("|")[position] == time_keys[-1]
            ]
    return list(keys)


def plan_runs(
    graph: Mapping[str, AssetDefinition],
    history: History,
    at: Evaluation,
    *,
    assets: Sequence[str] | None = None,
    latest_window_only: bool = True,
    limit: int | None = None,
    options: StalenessOptions = StalenessOptions(),
    bulk_statuses: BulkStatuses | None = None,
) -> list[PlannedRun]:
    """Missing or stale partitions whose inputs all exist and are fresh (or are planned
    upstream of them), not in progress, in dependency order, grouped into runs.

    `bulk_statuses`, when a caller has a faster way to the same statuses for many partitions
    at once: the candidates' statuses and those of the upstream partitions the non-FRESH ones
    read come from it; the rules here then look at the non-FRESH candidates only.
    """
    context = _Context(graph, history, at, options)
    wanted = set(graph if assets is None else assets)
    planned: set[tuple[str, str | None]] = set()
    runs: list[PlannedRun] = []
    count = 0
    for asset_key in topological_order(graph):
        if asset_key not in wanted:
            continue
        asset = graph[asset_key]
        if asset.partitions is None:
            candidates: list[str | None] = [None]
        elif latest_window_only:
            candidates = latest_window_keys(asset, at)
        else:
            candidates = list(all_partitions(asset.partitions, at))
        not_fresh = None
        if bulk_statuses is not None:
            not_fresh = bulk_statuses(asset_key, candidates)
            _seed_statuses(context, asset, candidates, not_fresh, bulk_statuses)
        group: list[str | None] = []
        group_reason: _Reason = ("", True, ())
        for position, partition_key in enumerate(candidates):
            if limit is not None and count >= limit:
                break
            if not_fresh is not None and position not in not_fresh:
                reason = None  # FRESH
            else:
                status = _status(context, asset_key, partition_key)
                reason = _runnable_reason(context, asset, partition_key, status, planned)
            if reason is None:
                if group:
                    runs.append(PlannedRun(asset_key, tuple(group), *group_reason))
                    group = []
                continue
            planned.add((asset_key, partition_key))
            count += 1
            if group and reason != group_reason:
                runs.append(PlannedRun(asset_key, tuple(group), *group_reason))
                group = []
            group.append(partition_key)
            group_reason = reason
        if group:
            runs.append(PlannedRun(asset_key, tuple(group), *group_reason))
    return runs


BulkStatuses = Callable[[str, Sequence[str | None]], Mapping[int, PartitionStatus]]
"""(asset key, partition keys) -> the statuses that are not FRESH, by position in the keys."""


def _seed_statuses(
    context: _Context,
    asset: AssetDefinition,
    candidates: Sequence[str | None],
    not_fresh: Mapping[int, PartitionStatus],
    bulk_statuses: BulkStatuses,
) -> None:
    """Record the non-FRESH candidates' statuses, and (one call per upstream asset) the
    statuses of the upstream partitions that `_runnable_reason` will read for them."""
    for position, status in not_fresh.items():
        context.memo[(asset.key, candidates[position])] = status
    for dependency in asset.dependencies:
        upstream_key = dependency.upstream_key
        if upstream_key not in context.graph:
            continue
        wanted: dict[str | None, None] = {}
        for position in sorted(not_fresh):
            mapped, _ = context.mapped_upstream(asset, upstream_key, candidates[position])
            for key in mapped:
                if (upstream_key, key) not in context.memo:
                    wanted[key] = None
        keys = list(wanted)
        found = bulk_statuses(upstream_key, keys) if keys else {}
        for position, key in enumerate(keys):
            context.memo[(upstream_key, key)] = found.get(position) or PartitionStatus(
                upstream_key, key, Status.FRESH, ()
            )


# (reason, ready now, runs in progress it waits for): what a planned run's partitions share.
_Reason = tuple[str, bool, tuple[str, ...]]


def _runnable_reason(
    context: _Context,
    asset: AssetDefinition,
    partition_key: str | None,
    status: PartitionStatus,
    planned: set[tuple[str, str | None]],
) -> _Reason | None:
    """Why the partition belongs in the plan, else None: FRESH, being written by a run in
    progress, or reading an upstream partition that is neither FRESH, nor planned, nor being
    written (a partition whose upstream is being written waits for that run)."""
    if status.status is Status.FRESH:
        return None
    as_of = context.at.as_of
    if context.history.run_in_progress(asset.key, partition_key, as_of) is not None:
        return None
    ready = True
    waiting: set[str] = set()
    for dependency in asset.dependencies:
        if dependency.upstream_key not in context.graph:
            return None
        mapped, nonexistent = context.mapped_upstream(asset, dependency.upstream_key, partition_key)
        if nonexistent:
            return None
        for upstream_partition in mapped:
            node = (dependency.upstream_key, upstream_partition)
            if node in planned:
                ready = False
                continue
            upstream_status = _status(context, *node)
            if upstream_status.status is not Status.FRESH:
                run_id = context.history.run_in_progress(*node, as_of)
                if run_id is None:
                    return None
                waiting.add(run_id)
    held = tuple(sorted(waiting))
    if status.status is Status.MISSING:
        return "missing", ready and not held, held
    # The rules' causes: a note that a run lost its lease is not a reason to run.
    kinds = sorted(
        {
            cause.kind.value
            for cause in status.causes
            if cause.kind is not CauseKind.RUN_LEASE_EXPIRED
        }
    )
    return "stale: " + ", ".join(kinds), ready and not held, held


def lease_expired(status: PartitionStatus, run_id: str, expired_at: datetime) -> PartitionStatus:
    """`status` (not FRESH) noting that run `run_id`, which was to write the partition, lost its
    lease at `expired_at`: the partition no longer counts as in progress."""
    cause = Cause(
        CauseKind.RUN_LEASE_EXPIRED,
        f"run {run_id!r} started to write this partition and its lease expired at"
        f" {expired_at.isoformat()} without a heartbeat, a materialization or an end",
    )
    return PartitionStatus(
        status.asset_key, status.partition_key, status.status, (*status.causes, cause)
    )
