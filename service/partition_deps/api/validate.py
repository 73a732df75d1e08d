"""Checks of a request's parts before they are answered or stored: names, key lists, partition
selections, and a whole asset graph (references, cycles, definitions, mappings)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from partition_deps.api import convert, limits
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as common_pb
from partition_deps.api.paging import KeyPage
from partition_deps.domain import partitions
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import (
    Evaluation,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.dependencies import resolve_mapping, validate_definition
from partition_deps.domain.errors import InvalidPartitionKey, PartitionDepsError
from partition_deps.domain.mappings.kinds import PartitionMapping, TimeWindowMapping
from partition_deps.domain.results import Subset

MAX_NAME_LENGTH = 256
# A selection larger than this is refused: answers are ranges, but selections are keys.
MAX_SELECTED_KEYS = limits.MAX_KEYS_PER_REQUEST


def required_name(value: str, field: str) -> str:
    if not value:
        raise ApiError(f"{field} is required", field)
    if len(value) > MAX_NAME_LENGTH or not value.isprintable():
        raise ApiError(f"{field} must be printable and at most {MAX_NAME_LENGTH} characters", field)
    return value


def unique_keys(keys: list[str], field: str) -> list[str]:
    """`keys`, refused if there are too many, or one is empty, holds a NUL or comes twice."""
    limits.check_count(
        len(keys), limits.MAX_KEYS_PER_REQUEST, "partition keys", field, "TOO_MANY_KEYS"
    )
    seen: set[str] = set()
    for index, key in enumerate(keys):
        if not key:
            raise ApiError("partition keys must not be empty", f"{field}[{index}]")
        if "\x00" in key:
            raise ApiError("partition keys must not contain NUL characters", f"{field}[{index}]")
        if key in seen:
            raise ApiError(
                f"partition key {key!r} appears more than once",
                f"{field}[{index}]",
                reason="DUPLICATE_PARTITION_KEY",
            )
        seen.add(key)
    return keys


def selected_keys(
    definition: PartitionsDefinition | None,
    selection: common_pb.PartitionSelection,
    at: Evaluation,
    field: str = "selection",
) -> list[str]:
    """The keys a selection names, in the definition's order for ranges."""
    kind = selection.WhichOneof("kind")
    if kind is None or (kind == "keys" and definition is None):
        if definition is None:
            if kind == "keys" and selection.keys.partition_keys:
                raise ApiError(
                    "the asset is not partitioned: select it with an empty key list",
                    f"{field}.keys.partition_keys",
                )
            return []
        raise ApiError("a partition selection is required", field)
    if kind == "keys":
        _check_selected(len(selection.keys.partition_keys), f"{field}.keys.partition_keys")
        keys = list(selection.keys.partition_keys)
    elif definition is None:
        raise ApiError("the asset is not partitioned", field)
    elif kind == "all":
        subset = partitions.all_partitions(definition, at)
        _check_selected(len(subset), f"{field}.all")
        keys = list(subset.keys())
    elif kind == "key_range":
        every = _scannable(definition, at, f"{field}.key_range").keys()
        first, last = (
            selection.key_range.first_partition_key,
            selection.key_range.last_partition_key,
        )
        try:
            start, stop = every.index(first), every.index(last)
        except ValueError:
            missing = "first" if first not in every else "last"
            raise InvalidPartitionKey(
                f"{(first if missing == 'first' else last)!r} is not a partition at as_of",
                f"{field}.key_range.{missing}_partition_key",
            ) from None
        keys = every[start : stop + 1]
    else:
        keys = _keys_in_time_range(definition, selection.time_range, at, f"{field}.time_range")
    _check_selected(len(keys), field)
    return keys


def _check_selected(count: int, field: str) -> None:
    limits.check_count(count, MAX_SELECTED_KEYS, "keys selected", field, "SELECTION_TOO_LARGE")


def _scannable(definition: PartitionsDefinition, at: Evaluation, field: str) -> Subset:
    """Every partition, if there are few enough to scan for a range's keys."""
    every = partitions.all_partitions(definition, at)
    limits.check_count(
        len(every), limits.MAX_RANGE_EXPANSION, "partitions to scan", field, "RANGE_TOO_LARGE"
    )
    return every


def _keys_in_time_range(
    definition: PartitionsDefinition, time_range: common_pb.TimeRange, at: Evaluation, field: str
) -> list[str]:
    if not (time_range.HasField("start_time") and time_range.HasField("end_time")):
        raise ApiError("start_time and end_time are required", field)
    if not isinstance(definition, TimeWindowPartitions):
        raise ApiError("a time range selects time-window partitions only", field)
    start = convert.instant_from_proto(time_range.start_time, f"{field}.start_time")
    end = convert.instant_from_proto(time_range.end_time, f"{field}.end_time")
    selected = []
    for key in _scannable(definition, at, field):
        window_start, window_end = partitions.time_window_for_key(definition, key)
        if window_end > start and window_start < end:
            selected.append(key)
    return selected


def named_in_selection(error: PartitionDepsError) -> PartitionDepsError:
    """A key error with the selection's field in request terms (a new error); others as they
    are."""
    if isinstance(error, InvalidPartitionKey):
        if error.field.startswith("partition_keys"):
            return error.at("selection.keys")
        if not error.field:
            return error.at("selection")
    return error


def selected_related(
    available: Sequence[str], wanted: Sequence[str], field: str, page: KeyPage
) -> list[str]:
    """The related assets to answer for: all, the `wanted` ones, or the page token's one."""
    if page.scope:
        if page.scope not in available:
            raise ApiError("the page token is not for this query", field)
        return [page.scope]
    if not wanted:
        return list(available)
    for index, key in enumerate(wanted):
        if key not in available:
            raise ApiError(f"{key!r} is not related to the asset", f"{field}[{index}]")
    return [key for key in available if key in set(wanted)]


def validated_definition(
    definition: PartitionsDefinition | None, field: str, at: Evaluation | None = None
) -> PartitionsDefinition | None:
    """Validate as Dagster does at load time when `at` is given (see validate_definition)."""
    if definition is not None:
        try:
            validate_definition(definition, at=at)
        except PartitionDepsError as error:
            raise error.at(convert.definition_field(field, definition)) from None
    return definition


def resolved_mapping(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    field: str,
) -> PartitionMapping:
    """The mapping in force (inferred when None); an error names `field`, the mapping's."""
    try:
        return resolve_mapping(upstream, downstream, mapping)
    except PartitionDepsError as error:
        raise error.at(field) from None


def _is_lagged_self_dependency(asset_key: str, dependency: Dependency) -> bool:
    """Dagster's self-dependency: a time-window mapping onto strictly earlier partitions."""
    return (
        dependency.upstream_key == asset_key
        and isinstance(dependency.mapping, TimeWindowMapping)
        and dependency.mapping.end_offset < 0
    )


def validate_graph(assets: Mapping[str, AssetDefinition], request_index: Mapping[str, int]) -> None:
    """Raise for the first problem of the graph `assets`.

    `request_index` gives the position in the request of each asset being written: only those
    are re-validated, plus every dependency that touches one of them (an upstream's new
    definition can break a mapping registered earlier). Fields name request positions.
    """

    def where(asset_key: str) -> str:
        index = request_index.get(asset_key)
        return f"assets[{index}]" if index is not None else "assets"

    for key, index in request_index.items():
        validated_definition(assets[key].partitions, f"assets[{index}].partitions_definition")

    for asset in assets.values():
        seen: set[str] = set()
        for position, dependency in enumerate(asset.dependencies):
            field = f"{where(asset.key)}.dependencies[{position}]"
            upstream = assets.get(dependency.upstream_key)
            if upstream is None:
                raise ApiError(
                    f"asset {asset.key!r} depends on {dependency.upstream_key!r},"
                    " which is neither registered nor in the request",
                    f"{field}.upstream_asset_key",
                    reason="UNKNOWN_UPSTREAM_ASSET",
                )
            if dependency.upstream_key in seen:
                raise ApiError(
                    f"asset {asset.key!r} lists {dependency.upstream_key!r} twice",
                    f"{field}.upstream_asset_key",
                    reason="DUPLICATE_DEPENDENCY",
                )
            seen.add(dependency.upstream_key)
            if asset.key in request_index or upstream.key in request_index:
                resolved_mapping(
                    upstream.partitions,
                    asset.partitions,
                    dependency.mapping,
                    f"{field}.partition_mapping",
                )

    _check_acyclic(assets, where)


def _check_acyclic(assets: Mapping[str, AssetDefinition], where: Callable[[str], str]) -> None:
    """Iterative depth-first search; a lagged self-dependency is not a cycle."""
    done: set[str] = set()
    for root in assets:
        if root in done:
            continue
        on_path: list[str] = []
        on_path_set: set[str] = set()
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            key, next_dependency = stack.pop()
            if next_dependency == 0:
                on_path.append(key)
                on_path_set.add(key)
            dependencies = assets[key].dependencies
            if next_dependency < len(dependencies):
                stack.append((key, next_dependency + 1))
                dependency = dependencies[next_dependency]
                upstream_key = dependency.upstream_key
                if _is_lagged_self_dependency(key, dependency) or upstream_key in done:
                    continue
                if upstream_key in on_path_set:
                    cycle = [*on_path[on_path.index(upstream_key) :], upstream_key]
                    raise ApiError(
                        "dependency cycle (each asset depends on the next): " + " -> ".join(cycle),
                        f"{where(key)}.dependencies[{next_dependency}].upstream_asset_key",
                        reason="DEPENDENCY_CYCLE",
                    )
                stack.append((upstream_key, 0))
            else:
                on_path.pop()
                on_path_set.discard(key)
                done.add(key)
