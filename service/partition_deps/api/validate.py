"""Checks of a whole asset graph before it is stored: references, cycles, definitions, mappings."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from partition_deps.api import convert
from partition_deps.api.errors import ApiError
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.dependencies import resolve_mapping, validate_definition
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.mappings.kinds import TimeWindowMapping


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
        definition = assets[key].partitions
        if definition is not None:
            try:
                validate_definition(definition)
            except PartitionDepsError as error:
                field = convert.definition_field(
                    f"assets[{index}].partitions_definition", definition
                )
                raise error.at(field) from None

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
                try:
                    resolve_mapping(upstream.partitions, asset.partitions, dependency.mapping)
                except PartitionDepsError as error:
                    raise error.at(f"{field}.partition_mapping") from None

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
