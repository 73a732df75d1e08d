"""The partition mapping kinds, as plain immutable values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IdentityMapping:
    """Same key on both sides."""


@dataclass(frozen=True)
class AllMapping:
    """Every upstream partition."""


@dataclass(frozen=True)
class LastMapping:
    """The upstream's last partition at the evaluation time."""


@dataclass(frozen=True)
class TimeWindowMapping:
    """Overlapping windows; offsets count downstream partitions."""

    start_offset: int = 0
    end_offset: int = 0
    allow_nonexistent_upstream_partitions: bool = False


@dataclass(frozen=True)
class StaticMapping:
    """An explicit upstream key -> downstream keys table (fan-in and fan-out)."""

    downstream_keys_by_upstream_key: tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class SpecificMapping:
    """A fixed list of upstream keys, whatever the downstream partition."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class MultiToSingleDimensionMapping:
    """One dimension of a multi definition against a single-dimension definition."""

    dimension_name: str | None = None


@dataclass(frozen=True)
class DimensionMapping:
    """How one upstream dimension maps to one downstream dimension."""

    upstream_dimension: str
    downstream_dimension: str
    mapping: PartitionMapping


@dataclass(frozen=True)
class MultiMapping:
    """Per-dimension mappings between two multi definitions; unnamed dimensions map all-to-all."""

    dimensions: tuple[DimensionMapping, ...]


PartitionMapping = (
    IdentityMapping
    | AllMapping
    | LastMapping
    | TimeWindowMapping
    | StaticMapping
    | SpecificMapping
    | MultiToSingleDimensionMapping
    | MultiMapping
)
