"""Multi-dimensional mappings: per-dimension mappings, and multi <-> single dimension.

Both run on Dagster's shared engine: split each source key into dimension keys, map each
mapped dimension key on its own, and take the cartesian product with every key of each
target dimension that no mapping names. In the upstream direction, required-but-nonexistent
collects dimension-level keys, not multi keys (a Dagster quirk kept for exactness).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from partition_deps.domain.definitions import (
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import InvalidMapping, MappingError
from partition_deps.domain.mappings.keysets import Keys, Mapped, key_list, subset_with_keys
from partition_deps.domain.mappings.kinds import (
    IdentityMapping,
    MultiMapping,
    MultiToSingleDimensionMapping,
    PartitionMapping,
    TimeWindowMapping,
)
from partition_deps.domain.partitions import MULTI_KEY_DELIMITER, all_partitions, sorted_dimensions


@dataclass(frozen=True)
class DimensionDependency:
    mapping: PartitionMapping
    upstream_dimension: str | None  # None: the single-dimension side
    downstream_dimension: str | None


def infer_single_dimension(
    upstream_def: PartitionsDefinition, downstream_def: PartitionsDefinition
) -> DimensionDependency:
    """Which dimension of the multi side matches the single side; InvalidMapping if none."""
    upstream_is_multi = isinstance(upstream_def, MultiPartitions)
    if upstream_is_multi == isinstance(downstream_def, MultiPartitions):
        raise InvalidMapping(
            "a multi-to-single-dimension mapping needs exactly one multi-partitioned side"
        )
    multi = upstream_def if upstream_is_multi else downstream_def
    single = downstream_def if upstream_is_multi else upstream_def
    assert isinstance(multi, MultiPartitions)
    dimensions = sorted_dimensions(multi)
    matching = [dimension for dimension in dimensions if dimension.partitions == single]
    if len(matching) > 1:
        raise InvalidMapping(
            "several dimensions match the single-dimension definition; name the dimension"
        )
    chosen: PartitionMapping
    if len(matching) == 1:
        name, chosen = matching[0].name, IdentityMapping()
    else:
        time_dimensions = [
            dimension
            for dimension in dimensions
            if isinstance(dimension.partitions, TimeWindowPartitions)
        ]
        if len(time_dimensions) != 1 or not isinstance(single, TimeWindowPartitions):
            raise InvalidMapping(
                "the single-dimension definition must equal one dimension of the multi "
                "definition, or be time-window partitioned against its only time dimension"
            )
        name, chosen = time_dimensions[0].name, TimeWindowMapping()
    return DimensionDependency(
        chosen, name if upstream_is_multi else None, None if upstream_is_multi else name
    )


def dimension_dependencies(
    mapping: MultiMapping | MultiToSingleDimensionMapping,
    upstream_def: PartitionsDefinition,
    downstream_def: PartitionsDefinition,
) -> list[DimensionDependency]:
    if isinstance(mapping, MultiToSingleDimensionMapping):
        # Dagster 1.13 ignores partition_dimension_name here (its inference is always called
        # without it); we match that.
        return [infer_single_dimension(upstream_def, downstream_def)]
    return [
        DimensionDependency(item.mapping, item.upstream_dimension, item.downstream_dimension)
        for item in mapping.dimensions
    ]


def validate_multi_mapping(
    mapping: MultiMapping, upstream_def: PartitionsDefinition, downstream_def: PartitionsDefinition
) -> None:
    if not isinstance(upstream_def, MultiPartitions) or not isinstance(
        downstream_def, MultiPartitions
    ):
        raise InvalidMapping("a multi mapping needs multi partitions on both sides")
    upstream_names = {dimension.name for dimension in upstream_def.dimensions}
    downstream_names = {dimension.name for dimension in downstream_def.dimensions}
    for index, item in enumerate(mapping.dimensions):
        if item.upstream_dimension not in upstream_names:
            raise InvalidMapping(
                f"upstream dimension {item.upstream_dimension!r} is unknown or used twice",
                f"dimensions[{index}].upstream_dimension",
            )
        if item.downstream_dimension not in downstream_names:
            raise InvalidMapping(
                f"downstream dimension {item.downstream_dimension!r} is unknown or used twice",
                f"dimensions[{index}].downstream_dimension",
            )
        upstream_names.remove(item.upstream_dimension)
        downstream_names.remove(item.downstream_dimension)


def _dimension_def(definition: PartitionsDefinition, name: str | None) -> PartitionsDefinition:
    if isinstance(definition, MultiPartitions):
        for dimension in definition.dimensions:
            if dimension.name == name:
                return dimension.partitions
        raise MappingError(f"no dimension named {name!r}")
    return definition


def _split(definition: PartitionsDefinition, key: str) -> dict[str | None, str]:
    if not isinstance(definition, MultiPartitions):
        return {None: key}
    names = [dimension.name for dimension in sorted_dimensions(definition)]
    parts = key.split(MULTI_KEY_DELIMITER)
    if len(parts) != len(names):
        raise MappingError(f"{key!r} does not have {len(names)} dimension keys")
    return dict(zip(names, parts, strict=True))


UpCall = Callable[[PartitionMapping, PartitionsDefinition, Keys, PartitionsDefinition], Mapped]
DownCall = Callable[[PartitionMapping, PartitionsDefinition, Keys, PartitionsDefinition], Keys]


def map_multi(
    dependencies: list[DimensionDependency],
    source_def: PartitionsDefinition,
    source: Keys,
    target_def: PartitionsDefinition,
    source_is_upstream: bool,
    at: Evaluation,
    up: UpCall,
    down: DownCall,
) -> Mapped:
    """The shared engine. Returns target partitions (and, going up, dimension-level misses)."""
    source_keys = key_list(source)
    keys_by_dimension: dict[str | None, set[str]] = defaultdict(set)
    for key in source_keys:
        for name, part in _split(source_def, key).items():
            keys_by_dimension[name].add(part)

    target_dimension_names: list[str | None] = (
        [dimension.name for dimension in target_def.dimensions]
        if isinstance(target_def, MultiPartitions)
        else [None]
    )
    by_source_dimension = {
        (dep.upstream_dimension if source_is_upstream else dep.downstream_dimension): (
            dep.downstream_dimension if source_is_upstream else dep.upstream_dimension,
            dep.mapping,
        )
        for dep in dependencies
    }
    mapped_parts: dict[str | None, dict[str, list[str]]] = defaultdict(dict)
    missing: set[str] = set()
    for source_name, parts in keys_by_dimension.items():
        if source_name not in by_source_dimension:
            continue
        target_name, mapping = by_source_dimension[source_name]
        source_dim_def = _dimension_def(source_def, source_name)
        target_dim_def = _dimension_def(target_def, target_name)
        for part in parts:
            one = subset_with_keys(source_dim_def, [part], at)
            if source_is_upstream:
                result = down(mapping, source_dim_def, one, target_dim_def)
                mapped_parts[source_name][part] = key_list(result)
            else:
                outcome = up(mapping, source_dim_def, one, target_dim_def)
                mapped_parts[source_name][part] = key_list(outcome.partitions)
                missing.update(key_list(outcome.required_but_nonexistent))

    mapped_source_names = list(by_source_dimension)
    mapped_target_names = [by_source_dimension[name][0] for name in mapped_source_names]
    unmapped_target_names = [
        name for name in target_dimension_names if name not in set(mapped_target_names)
    ]
    unmapped_keys = [
        list(all_partitions(_dimension_def(target_def, name), at)) for name in unmapped_target_names
    ]
    order = mapped_target_names + unmapped_target_names
    found: set[str] = set()
    for key in source_keys:
        parts_of_key = _split(source_def, key)
        choices = [mapped_parts[name].get(parts_of_key[name], []) for name in mapped_source_names]
        for values in itertools.product(*choices, *unmapped_keys):
            if len(values) > 1:
                by_name = dict(zip(order, values, strict=True))
                found.add(
                    MULTI_KEY_DELIMITER.join(by_name[name] for name in sorted(by_name))  # type: ignore[type-var]
                )
            else:
                found.add(values[0])
    partitions = (
        frozenset(found)
        if isinstance(target_def, MultiPartitions)
        else subset_with_keys(target_def, found, at)
    )
    return Mapped(partitions, frozenset(missing))
