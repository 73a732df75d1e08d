"""Time subsets: sets of time partitions held as merged `[start, end)` spans, never as keys."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime

from partition_deps.domain.compiled_windows import TimeWindows, Window
from partition_deps.domain.results import PartitionRun

# Subsets up to this many keys keep their key list (memoised answers are listed again).
LISTED_KEYS = 2_000


def _instant(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class TimeSubset:
    """Partitions of one time-window definition: the non-excluded windows starting in each span.

    Spans are sorted and disjoint, as Dagster's time-window subsets are; keys come out in
    chronological order and are formatted only when asked for.
    """

    # One or two are made per question: slots make them cheaper to build and read.
    __slots__ = ("_counts", "_keys", "spans", "windows")

    def __init__(
        self, windows: TimeWindows, spans: Sequence[Window], keys: list[str] | None = None
    ) -> None:
        """`keys`: those of a one-span subset, when the caller has them at hand."""
        self.windows = windows
        self.spans = spans if type(spans) is tuple else tuple(spans)
        # Thread safety: remembered answers share subsets between threads; `_counts` and
        # `_keys` are built whole, then assigned once (every thread builds the same value).
        self._counts: list[int] | None = None
        self._keys = keys

    @classmethod
    def from_windows(cls, windows: TimeWindows, parts: Iterable[Window]) -> TimeSubset:
        """Union of windows; overlapping or touching ones merge (Dagster's `|`)."""
        merged: list[Window] = []
        for part in sorted(parts, key=lambda w: w.start):
            if merged and part.start <= merged[-1].end:
                if part.end > merged[-1].end:
                    merged[-1] = Window(merged[-1].start, part.end)
            else:
                merged.append(part)
        return cls(windows, merged)

    @classmethod
    def from_key_windows(cls, windows: TimeWindows, parts: Iterable[Window]) -> TimeSubset:
        """Subset of individual partition windows, merged the way Dagster merges added keys:
        neighbours merge when they touch or when only excluded windows lie between them."""
        merged: list[Window] = []
        for part in sorted(set(parts), key=lambda w: w.start):
            if merged and part.start < merged[-1].end:
                continue
            if merged and (
                part.start == merged[-1].end
                or (
                    windows.has_exclusions
                    and not windows.has_any_partitions_in(merged[-1].end, part.start)
                )
            ):
                merged[-1] = Window(merged[-1].start, part.end)
            else:
                merged.append(part)
        return cls(windows, merged)

    def _span_indices(self, span: Window) -> list[int]:
        return list(self.windows.keys_in_window(span))

    def _span_counts(self) -> list[int]:
        if self._counts is None:
            self._counts = [self._count(span) for span in self.spans]
        return self._counts

    def _count(self, span: Window) -> int:
        if not self.windows.has_exclusions:
            return self.windows.ticks_between(span.start, span.end)
        return len(self._span_indices(span))

    def __len__(self) -> int:
        return sum(self._span_counts())

    def __iter__(self) -> Iterator[str]:
        if len(self.spans) == 1:
            return iter(self._single_span_keys())
        return (key for span in self.spans for key in self._span_keys(span))

    def _single_span_keys(self) -> list[str]:
        # Memoised answers are iterated again and again; small ones keep their key list.
        keys = self._keys
        if keys is None:
            keys = self._span_keys(self.spans[0])
            if len(keys) <= LISTED_KEYS:
                self._keys = keys
        return keys

    def _span_keys(self, span: Window) -> list[str]:
        windows = self.windows
        if windows.has_exclusions:
            return [windows.key_at(index) for index in windows.keys_in_window(span)]
        return windows.keys_between(span.start, span.end)

    def keys(self, offset: int = 0, limit: int | None = None) -> list[str]:
        if offset == 0 and limit is None:
            if self._keys is not None:
                return list(self._keys)
            if len(self.spans) == 1:
                return list(self._single_span_keys())
        result: list[str] = []
        remaining = offset
        for span, count in zip(self.spans, self._span_counts(), strict=True):
            if remaining >= count:
                remaining -= count
                continue
            if self.windows.has_exclusions:
                span_keys = self._span_keys(span)[remaining:]
            else:
                first = self.windows.window_index_from(span.start) + remaining
                stop = first + count - remaining
                if limit is not None:
                    stop = min(stop, first + limit - len(result))
                span_keys = self.windows.keys_slice(first, stop)
            remaining = 0
            if limit is not None:
                span_keys = span_keys[: limit - len(result)]
            result.extend(span_keys)
            if limit is not None and len(result) >= limit:
                return result
        return result

    def runs(self) -> list[PartitionRun]:
        result: list[PartitionRun] = []
        for span, count in zip(self.spans, self._span_counts(), strict=True):
            if count == 0:
                continue
            first = self.windows.window_index_from(span.start)
            first_key, first_window = self.windows.key_at(first), self.windows.window(first)
            last = self.windows.last_window_index_before(span.end)
            last_key, last_window = self.windows.key_at(last), self.windows.window(last)
            result.append(
                PartitionRun(
                    first_key=first_key,
                    last_key=last_key,
                    count=count,
                    start=_instant(first_window.start),
                    end=_instant(last_window.end),
                )
            )
        return result

    def contains_start(self, start: int) -> bool:
        return any(span.start <= start < span.end for span in self.spans)

    def window_list(self) -> list[Window]:
        """The individual partition windows (expands the subset; for small subsets only)."""
        return [
            self.windows.window(index) for span in self.spans for index in self._span_indices(span)
        ]
