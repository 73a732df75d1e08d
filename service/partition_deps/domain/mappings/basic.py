"""Identity, all, last, specific and static mappings (Dagster 1.13 semantics)."""

from __future__ import annotations

from collections import defaultdict

from partition_deps.domain.definitions import Evaluation, PartitionsDefinition, StaticPartitions
from partition_deps.domain.errors import MappingError
from partition_deps.domain.mappings.keysets import (
    Keys,
    Mapped,
    all_keys,
    contains,
    empty_keys,
    is_empty,
    is_enumerated,
    key_list,
    last_key,
    subset_with_keys,
)
from partition_deps.domain.mappings.kinds import StaticMapping

# ----- identity ---------------------------------------------------------------------------


def identity_up(
    downstream_def: PartitionsDefinition,
    downstream: Keys,
    upstream_def: PartitionsDefinition,
    at: Evaluation,
) -> Mapped:
    if downstream_def == upstream_def:
        return Mapped(downstream, empty_keys(upstream_def))
    wanted = set(key_list(downstream))
    present = {key for key in wanted if is_enumerated(upstream_def, key, at)}
    return Mapped(subset_with_keys(upstream_def, present, at), frozenset(wanted - present))


def identity_down(
    upstream_def: PartitionsDefinition,
    upstream: Keys,
    downstream_def: PartitionsDefinition,
    at: Evaluation,
) -> Keys:
    if upstream_def == downstream_def:
        return upstream
    present = {key for key in key_list(upstream) if is_enumerated(downstream_def, key, at)}
    return subset_with_keys(downstream_def, present, at)


# ----- all, last, specific ----------------------------------------------------------------


def all_up(upstream_def: PartitionsDefinition, at: Evaluation) -> Mapped:
    return Mapped(all_keys(upstream_def, at), empty_keys(upstream_def))


def all_down(upstream: Keys, downstream_def: PartitionsDefinition, at: Evaluation) -> Keys:
    if is_empty(upstream):
        return empty_keys(downstream_def)
    return all_keys(downstream_def, at, listing=False)


def last_up(upstream_def: PartitionsDefinition, at: Evaluation) -> Mapped:
    last = last_key(upstream_def, at)
    keys = [] if last is None else [last]
    return Mapped(subset_with_keys(upstream_def, keys, at), empty_keys(upstream_def))


def last_down(
    upstream_def: PartitionsDefinition,
    upstream: Keys,
    downstream_def: PartitionsDefinition,
    at: Evaluation,
) -> Keys:
    last = last_key(upstream_def, at)
    if last is not None and contains(upstream, last):
        return all_keys(downstream_def, at, listing=False)
    return empty_keys(downstream_def)


def specific_up(
    keys: tuple[str, ...], upstream_def: PartitionsDefinition, at: Evaluation
) -> Mapped:
    return Mapped(subset_with_keys(upstream_def, keys, at), empty_keys(upstream_def))


def specific_down(
    keys: tuple[str, ...], upstream: Keys, downstream_def: PartitionsDefinition, at: Evaluation
) -> Keys:
    if any(contains(upstream, key) for key in keys):
        return all_keys(downstream_def, at, listing=False)
    return empty_keys(downstream_def)


# ----- static -----------------------------------------------------------------------------


def _static_tables(
    mapping: StaticMapping,
) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    forward: dict[str, set[str]] = defaultdict(set)
    inverse: dict[str, set[str]] = defaultdict(set)
    for upstream_key, downstream_keys in mapping.downstream_keys_by_upstream_key:
        for downstream_key in downstream_keys:
            forward[upstream_key].add(downstream_key)
            inverse[downstream_key].add(upstream_key)
    return forward, inverse


def check_static(
    mapping: StaticMapping,
    upstream_def: PartitionsDefinition | None,
    downstream_def: PartitionsDefinition | None,
) -> None:
    """Dagster's checks: both static, and every key named in the table exists on its side."""
    if not isinstance(upstream_def, StaticPartitions) or not isinstance(
        downstream_def, StaticPartitions
    ):
        raise MappingError("a static mapping needs static partitions on both sides")
    forward, inverse = _static_tables(mapping)
    extra_sources = sorted(set(forward) - set(upstream_def.keys))
    if extra_sources:
        raise MappingError(f"mapping source keys not in the upstream definition: {extra_sources}")
    extra_targets = sorted(set(inverse) - set(downstream_def.keys))
    if extra_targets:
        raise MappingError(f"mapping target keys not in the downstream definition: {extra_targets}")


def static_up(
    mapping: StaticMapping,
    downstream_def: PartitionsDefinition | None,
    downstream: Keys | None,
    upstream_def: PartitionsDefinition,
) -> Mapped:
    if not isinstance(upstream_def, StaticPartitions):
        raise MappingError("a static mapping needs static upstream partitions")
    if downstream is None:
        return Mapped(frozenset(), frozenset())
    check_static(mapping, upstream_def, downstream_def)
    _, inverse = _static_tables(mapping)
    found: set[str] = set()
    for key in key_list(downstream):
        found |= inverse.get(key, set())
    return Mapped(frozenset(found), frozenset())


def static_down(
    mapping: StaticMapping,
    upstream_def: PartitionsDefinition,
    upstream: Keys,
    downstream_def: PartitionsDefinition,
) -> Keys:
    check_static(mapping, upstream_def, downstream_def)
    forward, _ = _static_tables(mapping)
    found: set[str] = set()
    for key in key_list(upstream):
        found |= forward.get(key, set())
    return frozenset(found)
