"""Staleness summaries (counts and ranges per status) without a status per partition.

A partition with neither a stored materialization nor a stored observation is MISSING,
whatever its upstream says (`staleness._status`), unless its asset is an observable source,
whose partitions are all FRESH. So the summary of an asset needs the rules only for its stored
partitions: the MISSING rest is the complement of those, taken as ranges of positions in the
definition's order. `PartitionListing` gives those positions: a time-window definition whose
keys parse back to their windows computes them from the windows and formats only the keys
that bound a range, so 100,000 hourly partitions with a few hundred stored cost a few
hundred lookups.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.compiled_windows import TimeWindows, Window
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition, TimeWindowPartitions
from partition_deps.domain.errors import InvalidPartitionKey
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.results import PartitionRun
from partition_deps.domain.staleness import PartitionStatus, Status
from partition_deps.domain.staleness_sets import keys_window, position_spans, span_runs
from partition_deps.domain.subsets import TimeSubset

# A window listing parses each key asked about, a key listing compares every listed key with
# them: from this many listed keys per key asked about on, parsing costs less.
_PARSE_RATIO = 32


class PartitionListing(ABC):
    """The partitions of a definition at one instant, in the definition's order."""

    time_definition: TimeWindowPartitions | None = None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def key(self, position: int) -> str: ...

    @abstractmethod
    def keys(self) -> Sequence[str]: ...

    def span_window(self, first: int, last: int) -> tuple[datetime, datetime]:
        """`[start, end)` of the partitions at positions `first` to `last` (time windows)."""
        assert self.time_definition is not None  # asked of time-window listings only
        return keys_window(self.time_definition, self.key(first), self.key(last))

    def positions(self, keys: Collection[str]) -> list[tuple[int, str]]:
        """(position, key) of each listed partition whose key is in `keys`, by position."""
        if not keys:
            return []
        return [(position, key) for position, key in enumerate(self.keys()) if key in keys]


class _KeyListing(PartitionListing):
    def __init__(self, keys: Sequence[str], time_definition: TimeWindowPartitions | None) -> None:
        self._keys = keys
        self.time_definition = time_definition

    def __len__(self) -> int:
        return len(self._keys)

    def key(self, position: int) -> str:
        return self._keys[position]

    def keys(self) -> Sequence[str]:
        return self._keys


class _WindowListing(PartitionListing):
    """Windows `[first, first + count)` of a definition whose every key is the exact text of
    its window's start (`TimeWindows.keys_all_exact`): one key per window, found by parsing."""

    def __init__(
        self, windows: TimeWindows, span: Window, count: int, definition: TimeWindowPartitions
    ) -> None:
        self._windows = windows
        self._span = span
        self._first = windows.window_index_from(span.start)
        self._count = count
        self.time_definition = definition

    def __len__(self) -> int:
        return self._count

    def key(self, position: int) -> str:
        return self._windows.key_at(self._first + position)

    def keys(self) -> Sequence[str]:
        return self._windows.keys_slice(self._first, self._first + self._count)

    def span_window(self, first: int, last: int) -> tuple[datetime, datetime]:
        # Each key is its window's start: no key to parse.
        windows = self._windows
        return (
            datetime.fromtimestamp(windows.window(self._first + first).start, UTC),
            datetime.fromtimestamp(windows.window(self._first + last).end, UTC),
        )

    def positions(self, keys: Collection[str]) -> list[tuple[int, str]]:
        if len(keys) * _PARSE_RATIO > self._count:
            return super().positions(keys)
        windows, (start, end) = self._windows, self._span
        found: list[tuple[int, str]] = []
        for key in keys:
            try:
                instant = windows.parse_instant(key)
            except InvalidPartitionKey:
                continue  # not a key of this definition
            if not start <= instant < end:
                continue
            index = windows.window_index_from(instant)
            position = index - self._first
            if position < self._count and windows.key_at(index) == key:
                found.append((position, key))
        found.sort()
        return found


def partition_listing(definition: PartitionsDefinition, at: Evaluation) -> PartitionListing:
    """The partitions of `definition` that exist at `at.as_of` (those `all_partitions` lists)."""
    subset = all_partitions(definition, at)
    if isinstance(definition, TimeWindowPartitions):
        assert isinstance(subset, TimeSubset)  # all_partitions of time windows
        if subset.windows.keys_all_exact and len(subset.spans) == 1:
            return _WindowListing(subset.windows, subset.spans[0], len(subset), definition)
        return _KeyListing(subset.keys(), definition)
    return _KeyListing(subset.keys(), None)


@dataclass(frozen=True)
class AssetSummary:
    """An asset's partitions counted by status, and the runs of consecutive STALE, MISSING and
    in-progress ones (none for an unpartitioned asset)."""

    asset_key: str
    fresh_count: int
    stale_count: int
    missing_count: int
    in_progress_count: int
    stale_ranges: tuple[PartitionRun, ...] = ()
    missing_ranges: tuple[PartitionRun, ...] = ()
    in_progress_ranges: tuple[PartitionRun, ...] = ()


def summarize(
    asset: AssetDefinition,
    listing: PartitionListing | None,
    stored: Sequence[int],
    not_fresh: Mapping[int, PartitionStatus],
    running: Sequence[int],
) -> AssetSummary:
    """The summary of `asset` (`listing`: its partitions; None when it is unpartitioned).

    `stored`: the sorted positions of its partitions that have a stored materialization or
    observation (every partition may be given); `not_fresh`: the statuses the rules gave
    them that are not FRESH, by index in `stored`; `running`: the sorted positions of the
    partitions held by runs in progress. Every partition left out of `stored` is MISSING
    (FRESH for an observable source).
    """
    total = 1 if listing is None else len(listing)
    stale: list[int] = []
    present: list[int] = []  # stored and not MISSING
    for index, position in enumerate(stored):
        status = not_fresh.get(index)
        if status is None or status.status is not Status.MISSING:
            present.append(position)
        if status is not None and status.status is Status.STALE:
            stale.append(position)
    if asset.observable_source:
        missing_count, missing_spans = 0, []
    else:
        missing_count, missing_spans = total - len(present), _complement(present, total)
    counts = (total - len(stale) - missing_count, len(stale), missing_count, len(running))
    if listing is None:
        return AssetSummary(asset.key, *counts)
    span_window = None if listing.time_definition is None else listing.span_window
    return AssetSummary(
        asset.key,
        *counts,
        tuple(span_runs(listing.key, position_spans(stale), span_window)),
        tuple(span_runs(listing.key, missing_spans, span_window)),
        tuple(span_runs(listing.key, position_spans(running), span_window)),
    )


def _complement(positions: Sequence[int], total: int) -> list[tuple[int, int]]:
    """The `(first, last)` runs of `[0, total)` outside the sorted `positions`."""
    spans: list[tuple[int, int]] = []
    at = 0
    for position in positions:
        if position > at:
            spans.append((at, position - 1))
        at = position + 1
    if at < total:
        spans.append((at, total - 1))
    return spans
