"""Set-based staleness: the rules of `staleness.py` over rows a store fetched in bulk.

`staleness.py` decides one partition at a time through `History`, which is right but costs
Python work per partition. When every dependency of an asset joins its partitions by equal
keys (identity, or a time-window mapping without offsets between equal definitions) or reads
an unpartitioned upstream as a whole, a store can fetch, in one query, exactly the rows that
might not be FRESH, with everything the rules read. `row_status` then applies the same rules
to one such row and gives the same `PartitionStatus` as `staleness.partition_status` would.

Also here: runs of consecutive partitions for answers given as ranges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.mappings.inference import resolve_mapping
from partition_deps.domain.mappings.kinds import IdentityMapping, TimeWindowMapping
from partition_deps.domain.partitions import time_window_for_key
from partition_deps.domain.results import PartitionRun
from partition_deps.domain.staleness import (
    Cause,
    CauseKind,
    Materialized,
    Observed,
    PartitionStatus,
    Status,
    _own_causes,
    _transitive,
    updated_cause,
)


def joins_by_key(graph: Mapping[str, AssetDefinition], asset: AssetDefinition) -> bool:
    """True when every dependency of the partitioned `asset` maps partition k to upstream k
    (equal definitions through identity or an offset-free time-window mapping) or reads an
    unpartitioned upstream; such an edge never hits Dagster's cut-off rules either. An
    observable source upstream goes through the domain rules (never observed: not missing)."""
    if asset.partitions is None:
        return False
    for dependency in asset.dependencies:
        upstream = graph.get(dependency.upstream_key)
        if upstream is None or upstream.key == asset.key or upstream.observable_source:
            return False
        if upstream.partitions is None:
            continue
        if upstream.partitions != asset.partitions:
            return False
        mapping = resolve_mapping(upstream.partitions, asset.partitions, dependency.mapping)
        if isinstance(mapping, IdentityMapping):
            continue
        if (
            isinstance(mapping, TimeWindowMapping)
            and mapping.start_offset == 0
            and mapping.end_offset == 0
        ):
            continue
        return False
    return True


@dataclass(frozen=True)
class UpstreamRow:
    """One dependency's side of a row: the upstream partition read (None: unpartitioned), its
    latest materialization or observation (`staleness.latest_record`), and its data version
    as of the downstream's materialization (fetched only when it matters: a newer upstream
    record with a data version)."""

    partition_key: str | None
    latest: Materialized | Observed | None
    version_before: str | None = None


# The causes of every partition without a materialization or an observation (one immutable
# value, shared by all of them).
NEVER_MATERIALIZED = (Cause(CauseKind.NEVER_MATERIALIZED, "never materialized"),)


def row_status(
    asset: AssetDefinition,
    partition_key: str,
    latest: Materialized | None,
    upstream: Sequence[tuple[Dependency, UpstreamRow]],
    upstream_statuses: Mapping[str, PartitionStatus] | None = None,
    dependency_keys: frozenset[str] | None = None,
    observed: bool = False,
) -> PartitionStatus:
    """`staleness.partition_status` of one partition of a `joins_by_key` asset; `observed`:
    the partition has an observation (with no materialization, it is an observed source).

    `upstream` has one entry per dependency, in dependency order. `upstream_statuses`, for the
    transitive walk only: upstream asset key -> status of the upstream partition this one
    reads, present when that status is not FRESH. `dependency_keys`: the asset's upstream keys,
    when the caller computed them once for many rows.
    """
    if latest is None:
        if observed:
            return PartitionStatus(asset.key, partition_key, Status.FRESH)
        return PartitionStatus(asset.key, partition_key, Status.MISSING, NEVER_MATERIALIZED)
    if dependency_keys is None:
        dependency_keys = frozenset(d.upstream_key for d in asset.dependencies)
    unchanged = (asset.code_version is None or latest.code_version == asset.code_version) and (
        latest.dependencies is None or latest.dependencies == dependency_keys
    )
    causes = [] if unchanged else list(_own_causes(asset, latest))
    for dependency, row in upstream:
        cause = _dependency_cause(dependency.upstream_key, row, latest, upstream_statuses)
        if cause is not None:
            causes.append(cause)
    return PartitionStatus(
        asset.key, partition_key, Status.STALE if causes else Status.FRESH, tuple(causes)
    )


def _dependency_cause(
    upstream_key: str,
    row: UpstreamRow,
    latest: Materialized,
    upstream_statuses: Mapping[str, PartitionStatus] | None,
) -> Cause | None:
    """The rules of `staleness._dependency_causes` for the one upstream partition of an edge."""
    label = upstream_key if row.partition_key is None else f"{upstream_key} {row.partition_key}"
    upstream_latest = row.latest
    if upstream_latest is None:
        return Cause(
            CauseKind.UPSTREAM_MISSING, f"{label} is missing", upstream_key, row.partition_key
        )
    if upstream_latest.event_id > latest.event_id and (
        upstream_latest.data_version is None or row.version_before != upstream_latest.data_version
    ):
        return updated_cause(label, upstream_key, row.partition_key, upstream_latest)
    if upstream_statuses is not None:
        upstream_status = upstream_statuses.get(upstream_key)
        if upstream_status is not None and upstream_status.status is not Status.FRESH:
            return _transitive(upstream_status)
    return None


def position_runs(
    definition_keys: Sequence[str],
    positions: Sequence[int],
    time_definition: TimeWindowPartitions | None = None,
) -> list[PartitionRun]:
    """Runs of consecutive positions (sorted) in `definition_keys`; with a time definition,
    each run carries its `[start, end)` instants."""
    span_window = None
    if time_definition is not None:
        definition = time_definition

        def span_window(first: int, last: int) -> tuple[datetime, datetime]:
            return keys_window(definition, definition_keys[first], definition_keys[last])

    return span_runs(definition_keys.__getitem__, position_spans(positions), span_window)


def keys_window(
    definition: TimeWindowPartitions, first_key: str, last_key: str
) -> tuple[datetime, datetime]:
    """`[start, end)` of the partitions from `first_key` to `last_key`."""
    start, end = time_window_for_key(definition, first_key)
    if last_key != first_key:
        _, end = time_window_for_key(definition, last_key)
    return start, end


def position_spans(positions: Sequence[int]) -> list[tuple[int, int]]:
    """The `(first, last)` runs of consecutive positions (sorted)."""
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(positions):
        first = positions[index]
        last = first
        index += 1
        while index < len(positions) and positions[index] == last + 1:
            last = positions[index]
            index += 1
        spans.append((first, last))
    return spans


def span_runs(
    key_at: Callable[[int], str],
    spans: Sequence[tuple[int, int]],
    span_window: Callable[[int, int], tuple[datetime, datetime]] | None = None,
) -> list[PartitionRun]:
    """The runs of `(first, last)` positions, their keys from `key_at` and, for time
    partitions, their `[start, end)` instants from `span_window`."""
    runs: list[PartitionRun] = []
    for first, last in spans:
        count = last - first + 1
        if span_window is None:
            runs.append(PartitionRun(key_at(first), key_at(last), count))
        else:
            runs.append(PartitionRun(key_at(first), key_at(last), count, *span_window(first, last)))
    return runs
