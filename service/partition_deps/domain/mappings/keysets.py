"""The sets a mapping consumes and produces: time spans for time windows, key sets otherwise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import (
    DynamicPartitions,
    Evaluation,
    PartitionsDefinition,
    StaticPartitions,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import InvalidPartitionKey, MappingError
from partition_deps.domain.partitions import (
    MULTI_KEY_DELIMITER,
    all_partitions,
    all_time_subset,
    now_of,
    sorted_dimensions,
    static_positions,
)
from partition_deps.domain.results import KeyStatus
from partition_deps.domain.subsets import TimeSubset

# A time subset keeps Dagster's chronological order; a frozenset is Dagster's unordered
# default subset, ordered at the very end by the definition's enumeration order; a tuple is a
# listing already in its final order (duplicates included, as Dagster lists them).
Keys = TimeSubset | frozenset[str] | tuple[str, ...]


@dataclass(frozen=True)
class Mapped:
    partitions: Keys
    required_but_nonexistent: Keys
    statuses: tuple[KeyStatus, ...] = ()


def empty_keys(definition: PartitionsDefinition) -> Keys:
    if isinstance(definition, TimeWindowPartitions):
        return TimeSubset(compile_time_windows(definition), ())
    return frozenset()


def key_list(keys: Keys) -> list[str]:
    return list(keys)


def is_empty(keys: Keys) -> bool:
    if isinstance(keys, TimeSubset):
        return len(keys) == 0
    return not keys


def subset_with_keys(
    definition: PartitionsDefinition, keys: Iterable[str], at: Evaluation, validate: bool = True
) -> Keys:
    """Dagster's `subset_with_partition_keys`: time keys become windows (nonexistent ones are
    dropped when validating); other kinds keep the keys as given."""
    if not isinstance(definition, TimeWindowPartitions):
        return frozenset(keys)
    windows = compile_time_windows(definition)
    if not isinstance(keys, list | tuple):
        keys = list(keys)
    try:
        parts = [windows.window_for_key(key) for key in keys]
    except InvalidPartitionKey as error:
        raise MappingError(error.message) from None
    if validate:
        full = windows.full_window(now_of(at))
        parts = (
            []
            if full is None
            else [part for part in parts if part.start >= full.start and part.end <= full.end]
        )
    if len(parts) == 1:
        return TimeSubset(windows, parts)
    return TimeSubset.from_key_windows(windows, parts)


def all_keys(definition: PartitionsDefinition, at: Evaluation, listing: bool = True) -> Keys:
    """Every partition: Dagster's listing, or (`listing=False`) `subset_with_all_partitions`,
    which the downstream direction of all, last and specific mappings uses."""
    if isinstance(definition, TimeWindowPartitions):
        return all_time_subset(compile_time_windows(definition), now_of(at), listing)
    if listing:
        return tuple(all_partitions(definition, at))
    return frozenset(all_partitions(definition, at))


def is_enumerated(definition: PartitionsDefinition, key: str, at: Evaluation) -> bool:
    """Membership in `get_partition_keys()` without listing every key."""
    if isinstance(definition, TimeWindowPartitions):
        windows = compile_time_windows(definition)
        try:
            instant = windows.parse_instant(key)
        except InvalidPartitionKey:
            return False
        index = windows.window_index_from(instant)
        bounds = windows.bounds(now_of(at))
        if bounds is None or windows.key_at(index) != key:
            return False
        first, last = bounds
        tick = windows.tick(index)
        # An end inside the first window: Dagster still lists that first window.
        return first <= tick <= last or (last < first and tick == first)
    if isinstance(definition, StaticPartitions):
        return key in static_positions(definition)
    if isinstance(definition, DynamicPartitions):
        return key in at.key_positions(definition.name)
    parts = key.split(MULTI_KEY_DELIMITER)
    dimensions = sorted_dimensions(definition)
    if len(parts) != len(dimensions):
        return False
    for part, dimension in zip(parts, dimensions, strict=True):
        if isinstance(dimension.partitions, DynamicPartitions) and MULTI_KEY_DELIMITER in part:
            return False
        if not is_enumerated(dimension.partitions, part, at):
            return False
    return True


def contains(keys: Keys, key: str) -> bool:
    """Dagster's `key in subset`."""
    if not isinstance(keys, TimeSubset):
        return key in keys
    try:
        start = keys.windows.start_for_key(key)
    except InvalidPartitionKey:
        return False
    return keys.contains_start(start)


def last_key(definition: PartitionsDefinition, at: Evaluation) -> str | None:
    if isinstance(definition, TimeWindowPartitions):
        windows = compile_time_windows(definition)
        bounds = windows.bounds(now_of(at))
        return None if bounds is None else windows.key_at(windows.index_of_start(bounds[1]))
    keys: Sequence[str] = all_partitions(definition, at).keys()
    return keys[-1] if keys else None
