"""Time-window mapping: overlapping windows, offsets counted in downstream partitions.

Mirrors Dagster 1.13's rules exactly, including its quirks: offsets are applied to the
downstream side (before the overlap going up, after it going down) and every shifted edge
is clamped to the target's existing range, so windows cut off by the clamp vanish without a
required-but-nonexistent report (Dagster issue 26935). The three-state report (`statuses`)
is computed from the unclamped windows, so those keys are still classified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from partition_deps.domain.errors import MappingError, OutsideCalendar
from partition_deps.domain.partitions import statuses_in
from partition_deps.domain.results import KeyStatus
from partition_deps.domain.subsets import LISTED_KEYS, TimeSubset
from partition_deps.domain.timewindow import TimeWindows, Window, windows_for_key


@dataclass(frozen=True)
class TimeMapped:
    partitions: TimeSubset
    required_but_nonexistent: TimeSubset
    statuses: tuple[KeyStatus, ...] = ()


def map_time_windows(
    source: TimeSubset,
    target: TimeWindows,
    start_offset: int,
    end_offset: int,
    allow_nonexistent: bool,
    downstream_to_upstream: bool,
    now: int,
) -> TimeMapped:
    """Dagster's `_map_partitions`: `source` is downstream going up, upstream going down."""
    origin = source.windows
    if origin.definition.timezone != target.definition.timezone:
        raise MappingError(
            f"time zones {target.definition.timezone} and {origin.definition.timezone} differ"
        )
    empty = TimeSubset(target, ())
    if not source.spans:
        return TimeMapped(empty, empty)
    cheap = _cheap_mapping(source, target, start_offset, end_offset, allow_nonexistent, now)
    if cheap is not None:
        return cheap

    full = target.full_window(now)
    first, last = _first_and_last(target, now)
    mapped: list[Window] = []
    unclamped: list[Window] = []
    no_offsets = start_offset == 0 and end_offset == 0
    for span in source.spans:
        if no_offsets:
            start, end = raw_start, raw_end = span
        elif downstream_to_upstream:
            start = _offset_with_bounds(origin, span.start, start_offset, full)
            end = _offset_with_bounds(origin, span.end, end_offset, full)
            raw_start = _offset(origin, span.start, start_offset)
            raw_end = _offset(origin, span.end, end_offset)
        else:
            start, end = span.start, span.end
            raw_start, raw_end = start, end
        target_start, target_end = _overlap(origin, target, start, end)
        if downstream_to_upstream:
            if (raw_start, raw_end) == (start, end):
                unclamped.append(Window(target_start, target_end))
            elif raw_start < raw_end:
                unclamped.append(Window(*_overlap(origin, target, raw_start, raw_end)))
        elif not no_offsets:
            target_start = _offset_with_bounds(target, target_start, start_offset, full)
            target_end = _offset_with_bounds(target, target_end, end_offset, full)
        if target_start < target_end:
            mapped.append(Window(target_start, target_end))

    kept: list[Window] = []
    missing: list[Window] = []
    for window in mapped:
        if (
            first is not None
            and last is not None
            and window.start <= last.start
            and window.end >= first.end
        ):
            kept.append(Window(max(window.start, first.start), min(window.end, last.end)))
        if allow_nonexistent:
            continue
        if first is None or last is None or (window.start < first.start and window.end > last.end):
            missing.append(window)
        elif window.start < first.start:
            missing.append(Window(window.start, min(window.end, first.start)))
        elif window.end > last.end:
            missing.append(Window(max(window.start, last.end), window.end))

    statuses: list[KeyStatus] = []
    if downstream_to_upstream:
        statuses = _statuses(target, unclamped, first, last, now)
    return TimeMapped(_union(target, kept), _union(target, missing), tuple(statuses))


class SpanMapping:
    """A time-window mapping without offsets between two compiled definitions, going up.

    `map_time_windows` answers every question; this answers the common one, one run of
    downstream windows whose upstream windows all exist, in tick indices with no subsets
    built (with the one-key path in `dependencies`, the weekly <- daily bench row went from
    46 us to 13). What depends only on the two definitions is decided once here.
    """

    def __init__(self, origin: TimeWindows, target: TimeWindows) -> None:
        self.origin = origin
        self.target = target
        self.nothing = TimeSubset(target, ())  # shared: an empty subset never changes
        a, b = origin.definition, target.definition
        self.same_zone = a.timezone == b.timezone
        self.same_definition = a == b
        self.same_but_bounds = _equal_except_bounds(origin, target) and (
            target.end_ts is None or (origin.end_ts is not None and target.end_ts >= origin.end_ts)
        )
        self.daily_to_hourly = origin.is_basic_daily and target.is_basic_hourly
        self.same_ticks = a.cron_schedule == b.cron_schedule or self.daily_to_hourly
        # None of Dagster's shortcuts can apply: straight to the overlap.
        self.overlap_only = self.same_zone and not (
            self.same_definition or self.same_but_bounds or self.daily_to_hourly
        )
        # ...and both sides' keys are exact: one key maps in one step (`windows_for_key`).
        self.direct = self.overlap_only and origin.keys_all_exact and target.keys_all_exact

    def upstream_of_key(
        self,
        key: str,
        now: int,
        upstream_bounds: tuple[int, int] | None,
        downstream_bounds: tuple[int, int] | None,
    ) -> TimeSubset | None:
        """`upstream` for the window of one key, when the key is a partition and the answer
        one span with nothing missing (the bounds are each side's at `now`); None when the
        question takes the general path, which also reports a bad key."""
        target = self.target
        if self.direct:
            found = windows_for_key(
                self.origin,
                target,
                key,
                downstream_bounds,
                upstream_bounds,
                not self.same_ticks,
                LISTED_KEYS,
            )
            return None if found is None else TimeSubset(target, (found[0],), found[1])
        index = self.origin.index_of_key(key, downstream_bounds)
        return None if index is None else self.upstream(index, index + 1, now, upstream_bounds)

    def upstream(
        self, first: int, stop: int, now: int, bounds: tuple[int, int] | None
    ) -> TimeSubset | None:
        """The upstream partitions of the downstream windows `[first, stop)` (tick indices),
        `bounds` being the upstream's at `now`, when `map_time_windows` answers them as one
        span with nothing missing; None when it may answer anything else."""
        origin, target = self.origin, self.target
        start, end = origin.span_of(first, stop)
        if not self.overlap_only:
            if not self.same_zone:
                return None
            if self.same_definition:
                if origin is target:
                    return self._subset((Window(start, end), first, stop))
                return self._subset(_with_span(target.span_indices(start, end), start, end))
            # Dagster's shortcuts, in its order (see `_cheap_mapping`): the span as it is.
            covered = origin.start_ts >= target.start_ts or start >= target.start_ts
            if covered and self.same_but_bounds:
                return self._subset(_with_span(target.span_indices(start, end), start, end))
            if covered and self.daily_to_hourly:
                # Where the full windows end: where the last partitions end.
                origin_edges, target_edges = origin.first_and_last(now), target.first_and_last(now)
                if (
                    origin_edges is not None
                    and target_edges is not None
                    and origin_edges[1].end <= target_edges[1].end
                ):
                    return self._subset(_with_span(target.span_indices(start, end), start, end))
        if end <= target.start_ts:
            return None
        # Inside the existing range the general path keeps the overlap whole, reports
        # nothing missing and classifies no key.
        found = target.existing_windows(start, end, bounds, not self.same_ticks, LISTED_KEYS)
        return None if found is None else TimeSubset(target, (found[0],), found[1])

    def _subset(self, found: tuple[Window, int, int] | None) -> TimeSubset | None:
        if found is None:
            return None
        window, first, stop = found
        # Small answers come with their keys: a slice of the formatted keys.
        keys = self.target.keys_slice(first, stop) if stop - first <= LISTED_KEYS else None
        return TimeSubset(self.target, (window,), keys)


def _with_span(
    found: tuple[int, int] | None, start: int, end: int
) -> tuple[Window, int, int] | None:
    return None if found is None else (Window(start, end), found[0], found[1])


def _union(target: TimeWindows, parts: list[Window]) -> TimeSubset:
    if len(parts) <= 1:
        return TimeSubset(target, parts)
    return TimeSubset.from_windows(target, parts)


def _statuses(
    target: TimeWindows,
    windows: list[Window],
    first: Window | None,
    last: Window | None,
    now: int,
) -> list[KeyStatus]:
    """Classify the keys of the unclamped windows that lie outside the existing range."""
    if first is not None and last is not None:
        windows = [w for w in windows if w.start < first.start or w.end > last.end]
    if not windows:
        return []
    outside: list[Window] = []
    for window in windows:
        if first is None or last is None:
            outside.append(window)
            continue
        if window.start < first.start:
            outside.append(Window(window.start, min(window.end, first.start)))
        if window.end > last.end:
            outside.append(Window(max(window.start, last.end), window.end))
    merged = TimeSubset.from_windows(target, outside)
    return [status for span in merged.spans for status in statuses_in(target, span, now)]


def _first_and_last(target: TimeWindows, now: int) -> tuple[Window | None, Window | None]:
    pair = target.first_and_last(now)
    return (None, None) if pair is None else pair


def _overlap(origin: TimeWindows, target: TimeWindows, start: int, end: int) -> tuple[int, int]:
    """The target windows covering `[start, end)`, rounded outwards (Dagster's rule)."""
    same_ticks = origin.definition.cron_schedule == target.definition.cron_schedule or (
        origin.is_basic_daily and target.is_basic_hourly
    )
    if same_ticks:
        return start, end
    return target.covering_span(start, end)


def _offset_with_bounds(windows: TimeWindows, ts: int, offset: int, full: Window | None) -> int:
    shifted = _offset(windows, ts, offset)
    if full is not None:
        if offset < 0:
            shifted = max(full.start, shifted)
        if offset > 0:
            shifted = min(full.end, shifted)
    return shifted


def _offset(windows: TimeWindows, ts: int, offset: int) -> int:
    """Shift an instant by `offset` windows of `windows` (Dagster's `_offsetted_datetime`)."""
    if offset == 0:
        return ts
    if windows.is_basic_daily:
        # Calendar days on the wall clock, snapped back to midnight across DST.
        local = datetime.fromtimestamp(ts, windows.tz).replace(tzinfo=None)
        try:
            wall = local + timedelta(days=offset)
        except OverflowError:
            raise OutsideCalendar(f"an offset of {offset} days leaves the calendar") from None
        if wall.hour == 23:
            wall += timedelta(hours=1)
        elif wall.hour == 1:
            wall -= timedelta(hours=1)
        elif wall.hour != 0:
            raise MappingError(f"unexpected time {wall} after shifting by {offset} days")
        return int(wall.replace(tzinfo=windows.tz).timestamp())
    if windows.is_basic_hourly:
        return ts + offset * 3600
    result = ts
    for _ in range(abs(offset)):
        if offset < 0:
            result = windows.window(windows.window_index_ending_by(result)).start
        else:
            result = windows.window(windows.window_index_from(result)).end
    return result


def _cheap_mapping(
    source: TimeSubset,
    target: TimeWindows,
    start_offset: int,
    end_offset: int,
    allow_nonexistent: bool,
    now: int,
) -> TimeMapped | None:
    """Dagster's shortcuts, which skip the existence filtering of the general path."""
    origin = source.windows
    if start_offset != 0 or end_offset != 0:
        return None
    empty = TimeSubset(target, ())
    if origin.definition == target.definition:
        return TimeMapped(TimeSubset(target, source.spans), empty)
    first_start = source.spans[0].start
    starts_covered = origin.start_ts >= target.start_ts or first_start >= target.start_ts
    if (
        _equal_except_bounds(origin, target)
        and starts_covered
        and (
            target.end_ts is None or (origin.end_ts is not None and target.end_ts >= origin.end_ts)
        )
    ):
        return TimeMapped(TimeSubset(target, source.spans), empty)
    if origin.is_basic_daily and target.is_basic_hourly and starts_covered:
        origin_full = origin.full_window(now)
        target_full = target.full_window(now)
        if (
            origin_full is not None
            and target_full is not None
            and origin_full.end <= target_full.end
        ):
            return TimeMapped(TimeSubset(target, source.spans), empty)
    if source.spans[-1].end <= target.start_ts:
        missing = empty if allow_nonexistent else TimeSubset.from_windows(target, source.spans)
        statuses = tuple(
            status for span in source.spans for status in statuses_in(target, span, now)
        )
        return TimeMapped(empty, missing, statuses)
    return None


def _equal_except_bounds(first: TimeWindows, second: TimeWindows) -> bool:
    a, b = first.definition, second.definition
    return (
        a.timezone == b.timezone
        and a.fmt == b.fmt
        and a.cron_schedule == b.cron_schedule
        and a.end_offset == b.end_offset
        and a.exclusions == b.exclusions
    )
