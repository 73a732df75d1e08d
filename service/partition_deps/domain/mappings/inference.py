"""The mapping in force on a dependency: Dagster's inference when none is given, and its
load-time validation against the two definitions."""

from __future__ import annotations

from partition_deps.domain.definitions import (
    MultiPartitions,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import InvalidMapping, MappingError, TimezoneMismatch
from partition_deps.domain.mappings.basic import check_static
from partition_deps.domain.mappings.kinds import (
    AllMapping,
    IdentityMapping,
    MultiMapping,
    MultiToSingleDimensionMapping,
    PartitionMapping,
    StaticMapping,
    TimeWindowMapping,
)
from partition_deps.domain.mappings.multi import infer_single_dimension, validate_multi_mapping


def infer_mapping(
    upstream: PartitionsDefinition | None, downstream: PartitionsDefinition | None
) -> PartitionMapping:
    """Dagster's default when a dependency names no mapping."""
    if upstream is None or downstream is None:
        return AllMapping()
    if isinstance(upstream, MultiPartitions) != isinstance(downstream, MultiPartitions):
        try:
            infer_single_dimension(upstream, downstream)
        except InvalidMapping:
            pass
        else:
            return MultiToSingleDimensionMapping()
    if isinstance(upstream, TimeWindowPartitions) and isinstance(downstream, TimeWindowPartitions):
        return TimeWindowMapping()
    return IdentityMapping()


def validate_mapping(
    mapping: PartitionMapping,
    upstream: PartitionsDefinition,
    downstream: PartitionsDefinition | None,
) -> None:
    """Dagster's `validate_partition_mapping`, run when assets load (upstream is partitioned)."""
    if isinstance(mapping, IdentityMapping):
        if downstream is None or type(upstream) is not type(downstream):
            raise InvalidMapping(
                "identity needs the same kind of partitions definition on both sides; "
                f"got {_kind(upstream)} upstream and {_kind(downstream)} downstream"
            )
    elif isinstance(mapping, TimeWindowMapping):
        if not isinstance(downstream, TimeWindowPartitions):
            raise InvalidMapping("a time-window mapping needs a time-window downstream")
        if not isinstance(upstream, TimeWindowPartitions):
            raise InvalidMapping("a time-window mapping needs a time-window upstream")
        if upstream.timezone != downstream.timezone:
            raise TimezoneMismatch(
                f"time zones {upstream.timezone} and {downstream.timezone} don't match"
            )
    elif isinstance(mapping, StaticMapping):
        try:
            check_static(mapping, upstream, downstream)
        except MappingError as error:
            raise InvalidMapping(error.message) from None
    elif isinstance(mapping, MultiToSingleDimensionMapping):
        if downstream is None:
            raise InvalidMapping(
                "a multi-to-single-dimension mapping needs a partitioned downstream"
            )
        infer_single_dimension(upstream, downstream)
    elif isinstance(mapping, MultiMapping):
        if downstream is None:
            raise InvalidMapping("a multi mapping needs a partitioned downstream")
        validate_multi_mapping(mapping, upstream, downstream)


def _kind(definition: PartitionsDefinition | None) -> str:
    if definition is None:
        return "unpartitioned"
    return type(definition).__name__


def resolve_mapping(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
) -> PartitionMapping:
    """The mapping in force (inferred when None), validated as Dagster validates at load."""
    resolved = infer_mapping(upstream, downstream) if mapping is None else mapping
    if upstream is not None:
        try:
            validate_mapping(resolved, upstream, downstream)
        except InvalidMapping as error:
            raise error.at("mapping") from None
    return resolved
