"""Time-window mapping: overlapping windows, offsets counted in downstream partitions.

Mirrors Dagster 1.13's rules exactly, including its quirks: offsets are applied to the
downstream side (before the overlap going up, after it going down) and every shifted edge
is clamped to the target's existing range, so windows cut off by the clamp vanish without a
required-but-nonexistent report (Dagster issue 26935). The three-state report (`statuses`)
is computed from the unclamped windows, so those keys are still classified.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta

from partition_deps.domain.compiled_windows import TimeWindows, Window
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.errors import MappingError, OutsideCalendar
from partition_deps.domain.partitions import statuses_in
from partition_deps.domain.results import KeyStatus
from partition_deps.domain.subsets import TimeSubset


@dataclass(frozen=True)
class PairRules:
    """What Dagster's time-window mapping decides from its two definitions alone.

    `origin` is the side mapped from (downstream going up), `target` the side mapped to.
    """

    same_zone: bool
    same_definition: bool
    # Equal but for start and end, with the target's end no earlier than the origin's: the
    # shortcut that passes windows through as they are when the starts are covered too.
    same_but_bounds: bool
    # Dagster's daily -> hourly shortcut (both basic).
    daily_to_hourly: bool
    # Windows map as they are, with no overlap to compute.
    same_ticks: bool


# Thread safety: functools.lru_cache locks its own bookkeeping; values are frozen.
@functools.lru_cache(maxsize=1024)
def _pair_rules(
    origin: TimeWindowPartitions,
    target: TimeWindowPartitions,
    target_ends_no_earlier: bool,
    daily_to_hourly: bool,
) -> PairRules:
    same_but_bounds = (
        origin.timezone == target.timezone
        and origin.fmt == target.fmt
        and origin.cron_schedule == target.cron_schedule
        and origin.end_offset == target.end_offset
        and origin.exclusions == target.exclusions
        and target_ends_no_earlier
    )
    return PairRules(
        same_zone=origin.timezone == target.timezone,
        same_definition=origin == target,
        same_but_bounds=same_but_bounds,
        daily_to_hourly=daily_to_hourly,
        same_ticks=origin.cron_schedule == target.cron_schedule or daily_to_hourly,
    )


def pair_rules(origin: TimeWindows, target: TimeWindows) -> PairRules:
    """The rules of mapping `origin`'s windows to `target`'s, classified once per pair."""
    return _pair_rules(
        origin.definition,
        target.definition,
        # Compared as instants: a wall time in a DST gap can be later than the one after it.
        target.end_ts is None or (origin.end_ts is not None and target.end_ts >= origin.end_ts),
        origin.is_basic_daily and target.is_basic_hourly,
    )


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
    if pair_rules(origin, target).same_ticks:
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
    rules = pair_rules(origin, target)
    if rules.same_definition:
        return TimeMapped(TimeSubset(target, source.spans), empty)
    first_start = source.spans[0].start
    starts_covered = origin.start_ts >= target.start_ts or first_start >= target.start_ts
    if rules.same_but_bounds and starts_covered:
        return TimeMapped(TimeSubset(target, source.spans), empty)
    if rules.daily_to_hourly and starts_covered:
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
