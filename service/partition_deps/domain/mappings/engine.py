"""One entry per direction that dispatches a mapping to its kind's rules (no validation)."""

from __future__ import annotations

from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import (
    Evaluation,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import MappingError
from partition_deps.domain.mappings import basic
from partition_deps.domain.mappings.keysets import Keys, Mapped
from partition_deps.domain.mappings.kinds import (
    AllMapping,
    IdentityMapping,
    LastMapping,
    MultiMapping,
    MultiToSingleDimensionMapping,
    PartitionMapping,
    SpecificMapping,
    StaticMapping,
    TimeWindowMapping,
)
from partition_deps.domain.mappings.multi import dimension_dependencies, map_multi
from partition_deps.domain.mappings.time_window import map_time_windows
from partition_deps.domain.partitions import now_of
from partition_deps.domain.subsets import TimeSubset


def map_up(
    mapping: PartitionMapping,
    downstream_def: PartitionsDefinition | None,
    downstream: Keys | None,
    upstream_def: PartitionsDefinition,
    at: Evaluation,
) -> Mapped:
    """Upstream partitions of `downstream` (None: an unpartitioned downstream asset)."""
    if isinstance(mapping, AllMapping):
        return basic.all_up(upstream_def, at)
    if isinstance(mapping, LastMapping):
        return basic.last_up(upstream_def, at)
    if isinstance(mapping, SpecificMapping):
        return basic.specific_up(mapping.keys, upstream_def, at)
    if isinstance(mapping, StaticMapping):
        return basic.static_up(mapping, downstream_def, downstream, upstream_def)
    if downstream is None or downstream_def is None:
        raise MappingError("this mapping needs a partitioned downstream asset")
    if isinstance(mapping, IdentityMapping):
        return basic.identity_up(downstream_def, downstream, upstream_def, at)
    if isinstance(mapping, TimeWindowMapping):
        if not isinstance(downstream, TimeSubset) or not isinstance(
            upstream_def, TimeWindowPartitions
        ):
            raise MappingError("a time-window mapping needs time-window partitions on both sides")
        result = map_time_windows(
            downstream,
            compile_time_windows(upstream_def),
            mapping.start_offset,
            mapping.end_offset,
            mapping.allow_nonexistent_upstream_partitions,
            downstream_to_upstream=True,
            now=now_of(at),
        )
        return Mapped(result.partitions, result.required_but_nonexistent, result.statuses)
    return map_multi(
        dimension_dependencies(mapping, upstream_def, downstream_def),
        downstream_def,
        downstream,
        upstream_def,
        source_is_upstream=False,
        at=at,
        up=lambda m, d_def, d, u_def: map_up(m, d_def, d, u_def, at),
        down=lambda m, u_def, u, d_def: map_down(m, u_def, u, d_def, at),
    )


def map_down(
    mapping: PartitionMapping,
    upstream_def: PartitionsDefinition,
    upstream: Keys,
    downstream_def: PartitionsDefinition,
    at: Evaluation,
) -> Keys:
    """Downstream partitions that use `upstream`."""
    if isinstance(mapping, AllMapping):
        return basic.all_down(upstream, downstream_def, at)
    if isinstance(mapping, LastMapping):
        return basic.last_down(upstream_def, upstream, downstream_def, at)
    if isinstance(mapping, SpecificMapping):
        return basic.specific_down(mapping.keys, upstream, downstream_def, at)
    if isinstance(mapping, StaticMapping):
        return basic.static_down(mapping, upstream_def, upstream, downstream_def)
    if isinstance(mapping, IdentityMapping):
        return basic.identity_down(upstream_def, upstream, downstream_def, at)
    if isinstance(mapping, TimeWindowMapping):
        if not isinstance(upstream, TimeSubset) or not isinstance(
            downstream_def, TimeWindowPartitions
        ):
            raise MappingError("a time-window mapping needs time-window partitions on both sides")
        return map_time_windows(
            upstream,
            compile_time_windows(downstream_def),
            -mapping.end_offset,
            -mapping.start_offset,
            mapping.allow_nonexistent_upstream_partitions,
            downstream_to_upstream=False,
            now=now_of(at),
        ).partitions
    assert isinstance(mapping, MultiMapping | MultiToSingleDimensionMapping)
    return map_multi(
        dimension_dependencies(mapping, upstream_def, downstream_def),
        upstream_def,
        upstream,
        downstream_def,
        source_is_upstream=True,
        at=at,
        up=lambda m, d_def, d, u_def: map_up(m, d_def, d, u_def, at),
        down=lambda m, u_def, u, d_def: map_down(m, u_def, u, d_def, at),
    ).partitions
