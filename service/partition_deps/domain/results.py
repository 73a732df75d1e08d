"""Answers of the domain: subsets held as runs of consecutive partitions, and key states."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class PartitionRun:
    """Consecutive partitions of one definition; time runs carry the `[start, end)` instants."""

    first_key: str
    last_key: str
    count: int
    start: datetime | None = None
    end: datetime | None = None


class Subset(Protocol):
    """A set of partitions of one definition, in the definition's (or Dagster's) order."""

    def __len__(self) -> int: ...

    def runs(self) -> list[PartitionRun]: ...

    def keys(self, offset: int = 0, limit: int | None = None) -> list[str]: ...

    def __iter__(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class KeySubset:
    """An explicit ordered list of keys; each key is its own run (no time windows)."""

    ordered_keys: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.ordered_keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self.ordered_keys)

    def keys(self, offset: int = 0, limit: int | None = None) -> list[str]:
        stop = None if limit is None else offset + limit
        return list(self.ordered_keys[offset:stop])

    def runs(self) -> list[PartitionRun]:
        return [PartitionRun(key, key, 1) for key in self.ordered_keys]


EMPTY = KeySubset(())


class KeyState(enum.Enum):
    EXISTS = "exists"
    NOT_YET = "not_yet"
    NEVER = "never"


@dataclass(frozen=True)
class KeyStatus:
    """Why a key the mapping asked for is not a partition now, and when it will be."""

    key: str
    state: KeyState
    reason: str
    available_at: datetime | None = None


@dataclass(frozen=True, init=False)
class UpstreamResult:
    """Which upstream partitions some downstream partitions need.

    `partitions` and `required_but_nonexistent` are Dagster-exact. `nonexistent` classifies
    every key the mapping asks for that does not exist, including keys that Dagster's
    offset clamping drops silently; it never changes the Dagster-exact fields.
    """

    partitions: Subset = EMPTY
    required_but_nonexistent: Subset = EMPTY
    whole_asset: bool = False
    nonexistent: tuple[KeyStatus, ...] = field(default=())

    def __init__(
        self,
        partitions: Subset = EMPTY,
        required_but_nonexistent: Subset = EMPTY,
        whole_asset: bool = False,
        nonexistent: tuple[KeyStatus, ...] = (),
    ) -> None:
        # One is made per question: filling the instance dict directly costs half of the
        # frozen dataclass's generated __init__.
        fields = self.__dict__
        fields["partitions"] = partitions
        fields["required_but_nonexistent"] = required_but_nonexistent
        fields["whole_asset"] = whole_asset
        fields["nonexistent"] = nonexistent


@dataclass(frozen=True)
class DownstreamResult:
    """Which downstream partitions use some upstream partitions."""

    partitions: Subset = EMPTY
    whole_asset: bool = False
