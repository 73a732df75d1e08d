"""The partitions definition kinds, as plain immutable values.

Behaviour lives elsewhere: `compiled_windows.py` compiles a `TimeWindowPartitions` into fast
arithmetic, `partitions.py` answers key questions for every kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _hash_once(definition: DataclassInstance) -> int:
    """The hash of a frozen definition's fields, computed on first use and kept: definitions
    key every per-definition cache, so they are hashed on every lookup. Thread safety: threads
    that race compute and store the same value."""
    cached: int | None = definition.__dict__.get("_hash")
    if cached is None:
        cached = hash(tuple(getattr(definition, each.name) for each in fields(definition)))
        object.__setattr__(definition, "_hash", cached)
    return cached


@dataclass(frozen=True)
class TimeWindowPartitions:
    """Windows between consecutive ticks of a 5-field cron, keyed by their formatted start.

    `start` and `end` are naive wall times in `timezone`. `exclusions` holds cron strings
    (every window starting on one of their ticks is removed) and naive wall times (the
    window starting then is removed).
    """

    cron_schedule: str
    start: datetime
    timezone: str = "UTC"
    fmt: str = "%Y-%m-%d"
    end: datetime | None = None
    end_offset: int = 0
    exclusions: tuple[str | datetime, ...] = ()

    __hash__ = _hash_once


@dataclass(frozen=True)
class StaticPartitions:
    """A fixed list of keys, in declared order."""

    keys: tuple[str, ...]

    __hash__ = _hash_once


@dataclass(frozen=True)
class DynamicPartitions:
    """A named set of keys added at run time; the keys come from the evaluation context."""

    name: str


@dataclass(frozen=True)
class Dimension:
    name: str
    partitions: TimeWindowPartitions | StaticPartitions | DynamicPartitions


@dataclass(frozen=True)
class MultiPartitions:
    """The cartesian product of two or more dimensions.

    Keys join the dimension keys with `|` in dimension-name order, as Dagster does.
    """

    dimensions: tuple[Dimension, ...]

    __hash__ = _hash_once


PartitionsDefinition = TimeWindowPartitions | StaticPartitions | DynamicPartitions | MultiPartitions


@dataclass(frozen=True, init=False)
class Evaluation:
    """Everything outside the definitions that an answer depends on.

    `as_of` is an aware instant that counts as now. `dynamic_keys` holds, per dynamic
    definition name, the keys added so far in insertion order.
    """

    as_of: datetime
    dynamic_keys: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __init__(
        self, as_of: datetime, dynamic_keys: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        # One is made per question: filling the instance dict directly costs half of the
        # frozen dataclass's generated __init__ and __post_init__.
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        fields = self.__dict__
        fields["as_of"] = as_of
        fields["dynamic_keys"] = {} if dynamic_keys is None else dynamic_keys
        # Thread safety: entries built whole, then set in one assignment (see key_positions).
        fields["_key_positions"] = {}

    def key_positions(self, name: str) -> Mapping[str, int]:
        """Each key of dynamic definition `name` and its position in insertion order (its
        first), built once per evaluation: membership and order without scanning the keys
        (a scan per key made an identity mapping over 20,000 keys take 10 s)."""
        memo: dict[str, dict[str, int]] = self.__dict__["_key_positions"]
        positions = memo.get(name)
        if positions is None:
            positions = {}
            for index, key in enumerate(self.dynamic_keys.get(name, ())):
                positions.setdefault(key, index)
            memo[name] = positions
        return positions
