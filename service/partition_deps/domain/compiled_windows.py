"""Time-window partitions as arithmetic on a table of cron ticks.

A definition is compiled once (cached by value) into a sorted table of tick instants (UTC
seconds), generated a UTC calendar year at a time and extended on demand in either direction.
Window i is `[tick[i], tick[i+1])`; windows whose start is excluded are gaps. Every question
(key -> window, timestamp -> key, which partitions exist at `as_of`) is a search of that
table (`TickTable`'s locator: arithmetic where the ticks are evenly spaced, else a bisection),
so no per-key cron iteration happens on the hot path.

Compiled definitions are shared by every server thread: a table never changes once
published (growing builds a new one, swapped in under a lock) and tick indices are global,
so an index found in one version of the table holds in every later one.

DST follows Dagster's cron iterator: a wall time that does not exist moves to the first
instant after the transition (crons whose hour field is a wildcard skip it instead), and an
ambiguous wall time takes its later occurrence (hour-wildcard crons keep both; the second
one's key gets a `-0800`-style suffix).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from partition_deps.domain.cron import Cron, parse_cron
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.errors import InvalidDefinition, InvalidPartitionKey, OutsideCalendar
from partition_deps.domain.work import checkpoint
from partition_deps.domain.years import FIRST_TABLE_YEAR, LAST_TABLE_YEAR

EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# Basic crons skip the key -> tick snapping in Dagster's has_partition_key (see start_for_key).
_BASIC_CRONS = frozenset({"0 0 * * *", "0 * * * *"})
# Dagster moves a missing wall time forward, and (on its calendar shortcut) picks the later
# of two ambiguous ones, only for wall times in these hours; elsewhere it keeps the wall time.
_DST_HOURS = frozenset({1, 2, 3})
_UNKNOWN = object()
# Excluded windows in a row that a walk crosses before it gives up: an exclusion that removes
# every tick would otherwise be walked to the calendar's end (2.4 million hourly ticks from
# 2024). A million is 114 years of an hourly cron, two of an every-minute one.
_EXCLUDED_RUN = 1_000_000
# Formats whose keys hold every field of a cron tick's wall time (a tick has no seconds).
_EXACT_FORMATS = frozenset({"%Y-%m-%d", "%Y-%m-%d-%H:%M"})
_CANONICAL = object()
# Instants whose year has four digits in every zone, where ISO text and strftime agree.
_ISO_YEARS = (-30610224000 + 86400, 253402300800 - 86400)
# "-HH:MM" for each minute of a day: the time part of "%Y-%m-%d-%H:%M" keys.
_TIMES_OF_DAY = tuple(f"-{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440))


class Window(NamedTuple):
    """A half-open `[start, end)` interval of UTC seconds (a tuple: cheap to hash and sort)."""

    start: int
    end: int


# Thread safety: functools.lru_cache locks its own bookkeeping; zones are immutable.
@functools.lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidDefinition(f"unknown time zone {name!r}", "timezone") from None


def _wall_to_instant(tz: tzinfo, wall: datetime, fold: int = 0) -> int:
    return int(wall.replace(tzinfo=tz, fold=fold).timestamp())


class TickTable:
    """One published version of a definition's tick table: the ticks of the calendar years
    `[first_year, last_year]`, and which of them are excluded.

    Thread safety: immutable once published, except the key memo (`keys`, `formatted`), whose
    slots are only ever filled with the one text their tick formats to, a block per slice
    assignment (atomic under the GIL), keys before their flags. Growing builds a new table.
    Indices are global: `base` is the index of `ticks[0]`, so an index found in one version
    names the same tick in every later one, whichever thread grew it.
    """

    __slots__ = (
        "base",
        "excluded",
        "first_year",
        "formatted",
        "grid",
        "keys",
        "last_year",
        "ticks",
    )

    def __init__(
        self,
        ticks: list[int],
        excluded: bytes,
        keys: list[str | None],
        formatted: bytearray,
        base: int,
        years: tuple[int, int],
    ) -> None:
        self.ticks = ticks
        self.excluded = excluded  # 1 for a tick whose window is excluded
        self.keys = keys
        # 1 where `keys` holds the formatted key: whether a slice is formatted is then a C
        # scan of bytes, not of the keys (reading each key costs a cache miss after Dagster).
        self.formatted = formatted
        self.base = base
        self.first_year, self.last_year = years
        # (first tick, step, last tick) when the ticks are evenly spaced (UTC hourly, daily,
        # weekly crons...), else None: positions are then arithmetic, where a bisection reads
        # some fifteen ticks (each a cache miss when other code ran in between).
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 0
        uniform = step > 0 and all(
            later - earlier == step for earlier, later in itertools.pairwise(ticks)
        )
        self.grid = (ticks[0], step, ticks[-1]) if uniform else None

    # ----- the locator: every search of the table, by arithmetic on a grid or bisection ---

    def window_end(self, instant: int) -> int | None:
        """The end of the window starting exactly at `instant`, when it is inside the table."""
        grid = self.grid
        if grid is not None:
            first_tick, step, last_tick = grid
            if first_tick <= instant < last_tick and not (instant - first_tick) % step:
                return instant + step
            return None
        ticks = self.ticks
        if len(ticks) < 2 or not ticks[0] <= instant <= ticks[-2]:
            return None
        position = bisect.bisect_left(ticks, instant)
        return ticks[position + 1] if ticks[position] == instant else None

    def at_or_after(self, ts: int) -> int:
        """Position of the first tick >= `ts` (`len(ticks)` when there is none)."""
        grid = self.grid
        if grid is not None:
            first_tick, step, last_tick = grid
            if ts <= first_tick:
                return 0
            return len(self.ticks) if ts > last_tick else -((first_tick - ts) // step)
        return bisect.bisect_left(self.ticks, ts)

    def at_or_before(self, ts: int) -> int:
        """Position of the last tick <= `ts` (-1 when there is none)."""
        grid = self.grid
        if grid is not None:
            first_tick, step, last_tick = grid
            if ts < first_tick:
                return -1
            return len(self.ticks) - 1 if ts >= last_tick else (ts - first_tick) // step
        return bisect.bisect_right(self.ticks, ts) - 1

    def span(self, start: int, end: int, covering: bool) -> tuple[int, int, int, int, int] | None:
        """The windows of `[start, end)` when they lie inside the table: with `covering`, the
        windows covering it (rounded outwards), else those making it up exactly (None unless
        both edges are ticks). As (first, stop) positions and the ticks at `first`, `stop` and
        `stop - 1` (where the last window starts)."""
        grid = self.grid
        if grid is not None:
            first_tick, step, last_tick = grid
            if not first_tick <= start < end <= last_tick:
                return None
            first = (start - first_tick) // step
            stop = -((first_tick - end) // step)
            start_tick, stop_tick = first_tick + first * step, first_tick + stop * step
            if not covering and (start_tick != start or stop_tick != end):
                return None
            return first, stop, start_tick, stop_tick, stop_tick - step
        ticks = self.ticks
        if len(ticks) < 2 or not ticks[0] <= start < end <= ticks[-1]:
            return None
        stop = bisect.bisect_left(ticks, end)
        if covering:
            first = bisect.bisect_right(ticks, start) - 1
        else:
            first = bisect.bisect_left(ticks, start)
            if ticks[first] != start or ticks[stop] != end:
                return None
        return first, stop, ticks[first], ticks[stop], ticks[stop - 1]


class TimeWindows:
    """A compiled `TimeWindowPartitions`: tick table plus Dagster's existence rules.

    Shared by every thread through `compile_time_windows`: the table is published whole
    (`TickTable`) and grown under `_growing`; the memos below are each said safe where defined.
    """

    def __init__(self, definition: TimeWindowPartitions) -> None:
        self.definition = definition
        self.cron: Cron = _parse(definition.cron_schedule, "cron_schedule")
        self.tz = zone(definition.timezone)
        self.is_utc = self.tz is UTC
        self.fmt = definition.fmt
        self.fmt_has_offset = "%z" in definition.fmt
        self.start_ts = _wall_to_instant(self.tz, definition.start)
        self.end_ts = None if definition.end is None else _wall_to_instant(self.tz, definition.end)
        self.end_offset = definition.end_offset
        self.exclusion_crons = tuple(
            _parse(item, f"exclusions[{index}]")
            for index, item in enumerate(definition.exclusions)
            if isinstance(item, str)
        )
        self.exclusion_instants = frozenset(
            _wall_to_instant(self.tz, item)
            for item in definition.exclusions
            if isinstance(item, datetime)
        )
        self.has_exclusions = bool(definition.exclusions)
        self.is_basic = definition.cron_schedule in _BASIC_CRONS and not self.has_exclusions
        self.is_basic_daily = definition.cron_schedule == "0 0 * * *" and not self.has_exclusions
        self.is_basic_hourly = definition.cron_schedule == "0 * * * *" and not self.has_exclusions
        # Whether every window's key parses back to its start (see `_key_is_exact`): UTC
        # keys with minutes, or UTC day keys of a cron that fires at midnight only.
        self.keys_all_exact = (
            self.is_utc
            and not self.has_exclusions
            and (
                self.fmt == "%Y-%m-%d-%H:%M"
                or (
                    self.fmt == "%Y-%m-%d" and self.cron.minutes == (0,) and self.cron.hours == (0,)
                )
            )
        )
        # Thread safety: growth builds a new `TickTable` and publishes it in one assignment,
        # under this lock so that two threads never grow it past each other.
        self._growing = threading.Lock()
        # Ticks whose key is a wall time that does not exist (Dagster keeps such wall times
        # outside 01:00-03:59), keyed by instant. Thread safety: only added to, under
        # `_growing`, before the table holding their ticks is published.
        self._wall_overrides: dict[int, datetime] = {}
        # The memos below map a question to its answer, a pure function of the definition.
        # Thread safety: each entry is set whole in one assignment (a dict's get, set and
        # clear are atomic under the GIL), so a reader finds the right answer or none.
        # Dagster's parse of a key: (instant, re-formatted text) or its error message; keys
        # repeat across queries and strptime is the costliest step of a lookup.
        self._parsed: dict[str, tuple[int, datetime | object | None] | str] = {}
        self._key_starts: dict[str, tuple[int, str]] = {}
        # A window's key parsed back (Dagster maps through keys), by window start.
        self._window_key_starts: dict[int, int] = {}
        self._window_key_ends: dict[int, int] = {}
        self._bounds_memo: dict[tuple[int, bool, bool], object] = {}
        # The last answer of `bounds` and the instants `[from, until)` over which it holds:
        # every question asks for it two or three times, with `now` a second later each time.
        # Thread safety: a tuple, replaced whole.
        self._bounds_cache: tuple[int, int, tuple[int, int] | None] = (1, 0, None)
        # Thread safety: a tuple, replaced whole.
        self._last_edges: tuple[object, tuple[Window, Window] | None] = (_UNKNOWN, None)
        year = _year_of(self.start_ts)
        # The table as last grown: read it once per step and keep that version, since
        # another thread may publish a grown one meanwhile. Replaced only by `_grown`.
        self.table = self._build(None, year - 1, year + 1)

    # ----- the tick table -------------------------------------------------------------

    def _build(self, table: TickTable | None, first_year: int, last_year: int) -> TickTable:
        """A table of the years `[first_year, last_year]`, reusing `table`'s ticks and keys
        (whose years it must lie within)."""
        before = self._ticks_of_years(
            first_year, last_year if table is None else table.first_year - 1
        )
        if table is None:
            return TickTable(
                before,
                self._exclusions_of(before),
                [None] * len(before),
                bytearray(len(before)),
                0,
                (first_year, last_year),
            )
        after = self._ticks_of_years(table.last_year + 1, last_year)
        # Flags copied before keys: another thread may fill a block of `table` in between,
        # and a key without its flag is formatted again, where a flag without its key would
        # hand out None.
        formatted = bytearray(len(before)) + table.formatted + bytearray(len(after))
        keys = [None] * len(before) + table.keys + [None] * len(after)
        return TickTable(
            before + table.ticks + after,
            self._exclusions_of(before) + table.excluded + self._exclusions_of(after),
            keys,
            formatted,
            table.base - len(before),
            (first_year, last_year),
        )

    def _grown(self, first_year: int, last_year: int) -> TickTable:
        """The published table, grown to hold at least the years `[first_year, last_year]`
        (clamped to the calendar)."""
        with self._growing:
            table = self.table
            first = max(min(first_year, table.first_year), FIRST_TABLE_YEAR)
            last = min(max(last_year, table.last_year), LAST_TABLE_YEAR)
            if first < table.first_year or last > table.last_year:
                table = self._build(table, first, last)
                self.table = table
            return table

    def _ticks_of_years(self, first: int, last: int) -> list[int]:
        ticks: list[int] = []
        for year in range(first, last + 1):
            checkpoint()  # an abandoned growth publishes nothing: the table stays as it was
            year_ticks, overrides = _ticks_of_year(self.cron, self.tz, year)
            ticks.extend(year_ticks)
            self._wall_overrides.update(overrides)
        return ticks

    def _exclusions_of(self, ticks: list[int]) -> bytes:
        if not self.has_exclusions:
            return bytes(len(ticks))
        return bytes(self._is_excluded(tick) for tick in ticks)

    def _table_covering(self, ts: int) -> TickTable:
        """The table, grown to hold every tick of the calendar years around `ts`."""
        year = _year_of(ts)
        table = self.table
        if table.first_year <= year - 1 and year + 1 <= table.last_year:
            return table
        return self._grown(year - 1, year + 1)

    def _table_holding(self, first: int, stop: int) -> TickTable:
        """The table, grown to hold the tick indices `[first, stop)`; OutsideCalendar when
        they reach past the calendar. A walk grows it by a quarter of its years at a time,
        so that walking far copies it a bounded number of times."""
        table = self.table
        while True:
            if table.base <= first and stop <= table.base + len(table.ticks):
                return table
            years = table.last_year - table.first_year + 1
            if stop > table.base + len(table.ticks):
                if table.last_year >= LAST_TABLE_YEAR:
                    raise _outside_calendar()
                table = self._grown(table.first_year, table.last_year + max(1, years // 4))
            else:
                if table.first_year <= FIRST_TABLE_YEAR:
                    raise _outside_calendar()
                table = self._grown(table.first_year - max(1, years // 4), table.last_year)

    def _is_excluded(self, tick: int) -> bool:
        if not self.has_exclusions:
            return False
        if tick in self.exclusion_instants:
            return True
        return any(_is_tick(cron, self.tz, tick) for cron in self.exclusion_crons)

    def _index_at_or_after(self, ts: int) -> int:
        """Index of the first tick >= ts, with at least one tick after it in the table."""
        table = self.table
        ticks = table.ticks
        if ticks and ticks[0] <= ts < ticks[-1]:
            return table.base + table.at_or_after(ts)
        table = self._table_covering(ts)
        while True:
            position = table.at_or_after(ts)
            if position < len(table.ticks) - 1 or table.last_year >= LAST_TABLE_YEAR:
                return table.base + position
            table = self._grown(table.first_year, table.last_year + 1)

    def _index_at_or_before(self, ts: int) -> int:
        """Index of the last tick <= ts, with at least one tick before it in the table."""
        table = self.table
        ticks = table.ticks
        if len(ticks) > 1 and ticks[1] <= ts < ticks[-1]:
            return table.base + table.at_or_before(ts)
        table = self._table_covering(ts)
        while True:
            position = table.at_or_before(ts)
            if position >= 1 or table.first_year <= FIRST_TABLE_YEAR:
                return table.base + position
            table = self._grown(table.first_year - 1, table.last_year)

    def last_tick_at_or_before(self, ts: int) -> int:
        """The latest cron tick at or before `ts`, exclusions aside (a cron's previous tick)."""
        return self.tick(self._index_at_or_before(ts))

    def tick(self, index: int) -> int:
        table = self.table
        position = index - table.base
        if not 0 <= position < len(table.ticks):
            table = self._table_holding(index, index + 1)
            position = index - table.base
        return table.ticks[position]

    def tabulated(self) -> range:
        """The indices of the windows the table holds now (it grows on demand)."""
        table = self.table
        return range(table.base, table.base + len(table.ticks) - 1)

    @property
    def grid_step(self) -> int:
        """Seconds between ticks when they are evenly spaced across the table, else 0."""
        grid = self.table.grid
        return 0 if grid is None else grid[1]

    # ----- windows, as Dagster's iterators see them ----------------------------------

    def _unexcluded(self, index: int, step: int) -> int:
        """The first index from `index` on, walking by `step`, of a window not excluded;
        OutsideCalendar past `_EXCLUDED_RUN` excluded windows in a row."""
        for step_count in range(_EXCLUDED_RUN):
            if step_count and not step_count % 4096:
                checkpoint()
            table = self._table_holding(index, index + 2)
            if not table.excluded[index - table.base]:
                return index
            index += step
        raise OutsideCalendar(
            f"the question walks past {_EXCLUDED_RUN:,} excluded windows in a row: "
            "the exclusions remove (almost) every tick"
        )

    def window_index_from(self, ts: int) -> int:
        """Index of the first non-excluded window starting at or after `ts`."""
        table = self.table
        ticks = table.ticks
        if not self.has_exclusions and len(ticks) > 1 and ticks[0] <= ts <= ticks[-2]:
            return table.base + table.at_or_after(ts)  # inside: nothing to extend or skip
        return self._unexcluded(self._index_at_or_after(ts), 1)

    def window_index_ending_by(self, ts: int) -> int:
        """Index of the last non-excluded window whose end is at or before `ts`."""
        return self._unexcluded(self._index_at_or_before(ts) - 1, -1)

    def next_window_index(self, index: int) -> int:
        return self._unexcluded(index + 1, 1)

    def prev_window_index(self, index: int) -> int:
        return self._unexcluded(index - 1, -1)

    def window(self, index: int) -> Window:
        table = self.table
        position = index - table.base
        ticks = table.ticks
        if not 0 <= position < len(ticks) - 1:
            table = self._table_holding(index, index + 2)
            position, ticks = index - table.base, table.ticks
        return Window(ticks[position], ticks[position + 1])

    def index_of_start(self, ts: int) -> int:
        """Index of the tick at exactly `ts` (which must be a tick)."""
        index = self._index_at_or_after(ts)
        self._table_holding(index, index + 2)
        return index

    def next_change(self, now: int) -> int | None:
        """The first instant after `now` at which an answer given at `now` may differ.

        Everything that depends on `now` (which partitions exist, key states) goes through
        `bounds(now)`, which compares `now` only with ticks (excluded ones included) and with
        the end: it is constant from `now` until the next tick or end, or for one second when
        `now` is on one. None: no tick or end comes after `now` in the calendar.
        """
        index = self._index_at_or_after(now)
        table = self.table
        position = index - table.base
        edges = [table.ticks[position]] if position < len(table.ticks) else []
        if self.end_ts is not None:
            edges.append(self.end_ts)
        changes = [now + 1 if edge == now else edge for edge in edges if edge >= now]
        return min(changes, default=None)

    # ----- which partitions exist at `now` -------------------------------------------

    def bounds(self, now: int) -> tuple[int, int] | None:
        """(first, last) window start instants of the partitions that exist at `now`.

        `now` moves on with every request, but the answer changes only when it crosses a
        tick (or the end): the memo is keyed by where `now` falls among the ticks.
        """
        cache = self._bounds_cache
        if cache[0] <= now < cache[1]:
            return cache[2]
        return self.bounds_holding(now)[2]

    def bounds_holding(self, now: int) -> tuple[int, int, tuple[int, int] | None]:
        """`bounds(now)` after the instants `[from, until)` over which it holds."""
        cache = self._bounds_cache
        if cache[0] <= now < cache[1]:
            return cache
        tick_index = self._index_at_or_before(now)
        table = self.table
        position = tick_index - table.base
        ticks = table.ticks
        last_tick = ticks[position]
        ended = self.end_ts is not None and self.end_ts < now
        situation = (last_tick, last_tick == now, ended)
        known = self._bounds_memo.get(situation, _UNKNOWN)
        if known is _UNKNOWN:
            known = self._compute_bounds(now)
            if len(self._bounds_memo) > 4096:
                self._bounds_memo.clear()
            self._bounds_memo[situation] = known
        # The same situation holds strictly between two ticks, on the near side of the end.
        if last_tick == now or position + 1 >= len(ticks):
            valid_from, valid_until = now, now + 1
        else:
            valid_from, valid_until = last_tick + 1, ticks[position + 1]
            if self.end_ts is not None and valid_from <= self.end_ts < valid_until:
                if ended:
                    valid_from = self.end_ts + 1
                else:
                    valid_until = self.end_ts + 1
        cache = (valid_from, valid_until, known)  # type: ignore[assignment]
        self._bounds_cache = cache
        return cache

    def first_window_index(self) -> int | None:
        """Index of the first window not excluded, or None when there is none. Like Dagster,
        it may start after the end (the definition then has that one partition)."""
        try:
            return self.window_index_from(self.start_ts)
        except OutsideCalendar:
            return None

    def _first_window_index_before(self, ts: int, limit: int) -> int | None:
        """Index of the first window not excluded that starts in `[ts, limit)`, or None: the
        walk over excluded ticks stops at `limit` instead of going on to the calendar's end."""
        return next(self.keys_in_window(Window(ts, limit)), None)

    def _compute_bounds(self, now: int) -> tuple[int, int] | None:
        if self.end_ts is not None and self.end_ts <= self.start_ts:
            return None
        if self.end_offset <= 0:
            # The first window is a partition only if it ends by `now`: the walk over
            # excluded ticks goes no further.
            try:
                index = self._first_window_index_before(self.start_ts, now)
            except OutsideCalendar:
                index = None
        else:
            index = self.first_window_index()
        if index is None:
            return None  # no window at all (every tick excluded): validation reports it
        first = self.window(index)
        if self.end_offset == 0:
            if first.end > now:
                return None
        elif self.end_offset > 0:
            index = self.window_index_from(now)
            for _ in range(self.end_offset):
                index = self.next_window_index(index)
            if first.end > self.window(index).start:
                return None
        else:
            index = self.window_index_ending_by(now)
            for _ in range(-self.end_offset - 1):
                index = self.prev_window_index(index)
            if first.end > self.window(index).start:
                return None
        last = self._last_window(now, first)
        return first.start, last.start

    def _last_window(self, now: int, first: Window) -> Window:
        if self.end_offset == 0:
            cutoff = self.end_ts if self.end_ts is not None and self.end_ts < now else now
            return self.window(self.window_index_ending_by(cutoff))
        before_end = (
            None if self.end_ts is None else self.window(self.window_index_ending_by(self.end_ts))
        )
        zero_index = self.window_index_ending_by(now)
        if self.end_offset < 0:
            index = zero_index
            for _ in range(-self.end_offset):
                index = self.prev_window_index(index)
        else:
            index = self.window_index_from(self.window(zero_index).end)
            for _ in range(self.end_offset - 1):
                index = self.next_window_index(index)
        current = self.window(index)
        if before_end is not None and before_end.start <= current.start:
            return before_end
        if current.start < first.start:
            return first
        return current

    def first_and_last(self, now: int) -> tuple[Window, Window] | None:
        """The first and last existing partition windows at `now`."""
        bounds = self.bounds(now)
        known = self._last_edges
        if known[0] is bounds:  # `bounds` hands out one object while it holds
            return known[1]
        edges = self._edges(bounds)
        self._last_edges = (bounds, edges)
        return edges

    def full_window(self, now: int) -> Window | None:
        """`[first.start, last.end)` of the partitions existing at `now`."""
        edges = self.first_and_last(now)
        return None if edges is None else Window(edges[0].start, edges[1].end)

    # Thread safety: functools.lru_cache locks its own bookkeeping.
    @functools.lru_cache(maxsize=1024)  # noqa: B019 - the instance is itself cached by value
    def _edges(self, bounds: tuple[int, int] | None) -> tuple[Window, Window] | None:
        if bounds is None:
            return None
        return (
            self.window(self.index_of_start(bounds[0])),
            self.window(self.index_of_start(bounds[1])),
        )

    # ----- keys ------------------------------------------------------------------------

    def keys_slice(self, first: int, stop: int) -> list[str]:
        """Keys of tick indices `[first, stop)` (a slice of the memo, formatted once)."""
        table = self.table
        if first < table.base or stop > table.base + len(table.ticks):
            table = self._table_holding(first, stop)
        return self.keys_of(table, first - table.base, stop - table.base)

    def keys_of(self, table: TickTable, first: int, stop: int) -> list[str]:
        """Keys of the positions `[first, stop)` of `table`."""
        if table.formatted.find(0, first, stop) != -1:
            self._format_block(table, first, stop)
        return table.keys[first:stop]  # type: ignore[return-value]

    def keys_between(self, start: int, end: int) -> list[str]:
        """Keys of the windows starting in `[start, end)`, for a definition without exclusions."""
        table = self.table
        ticks = table.ticks
        if len(ticks) > 1 and ticks[0] <= start and end <= ticks[-2]:
            return self.keys_of(table, table.at_or_after(start), table.at_or_after(end))
        first = self.window_index_from(start)
        return self.keys_slice(first, first + self.ticks_between(start, end))

    def key_at(self, index: int) -> str:
        table = self.table
        position = index - table.base
        if 0 <= position < len(table.ticks):
            key = table.keys[position]
            if key is not None:
                return key
        else:
            table = self._table_holding(index, index + 1)
            position = index - table.base
        self._format_block(table, position, position + 1)
        key = table.keys[position]
        assert key is not None
        return key

    def _format_block(self, table: TickTable, first: int, stop: int) -> None:
        """Format keys a block at a time: neighbouring keys are almost always asked for next,
        and one bulk pass costs far less than many single formats spread over queries."""
        block = 1024
        keys, ticks, formatted = table.keys, table.ticks, table.formatted
        for chunk in range(first - first % block, max(stop, first + 1), block):
            chunk_end = min(chunk + block, len(ticks))  # whole blocks, or the table's tail
            if formatted.find(0, chunk, chunk_end) == -1:
                continue
            checkpoint()
            # Keys first, then their flags, each in one slice assignment (see `TickTable`).
            keys[chunk:chunk_end] = self._format_ticks(ticks[chunk:chunk_end])
            formatted[chunk:chunk_end] = b"\x01" * (chunk_end - chunk)

    def _format_ticks(self, ticks: list[int]) -> list[str]:
        if not self.is_utc or self.fmt not in _EXACT_FORMATS:
            return [self.format_instant(tick) for tick in ticks]
        # UTC keys of the preset formats by arithmetic: strftime costs ~1.8 us a key, this
        # a fifth of it (one ISO date per day, a table lookup for the time of day).
        keys: list[str] = []
        daily = self.fmt == "%Y-%m-%d"
        day_number: int | None = None
        day_text = ""
        for tick in ticks:
            days, seconds = divmod(tick, 86400)
            if days != day_number:
                day_number, day_text = days, date.fromordinal(days + EPOCH_ORDINAL).isoformat()
            keys.append(day_text if daily else day_text + _TIMES_OF_DAY[seconds // 60])
        return keys

    def format_instant(self, ts: int) -> str:
        wall = self._wall_overrides.get(ts)
        if wall is not None:
            return wall.replace(tzinfo=self.tz).strftime(self.fmt)
        if self.fmt in _EXACT_FORMATS and _ISO_YEARS[0] <= ts < _ISO_YEARS[1]:
            if self.is_utc:
                return self._format_ticks([ts])[0]
            local = datetime.fromtimestamp(ts, self.tz)
            if not local.fold or not self.cron.repeats_every_hour:
                # The ISO text holds the wall time: 'YYYY-MM-DDTHH:MM:SS+hh:mm'.
                text = local.isoformat()
                return text[:10] if self.fmt == "%Y-%m-%d" else f"{text[:10]}-{text[11:16]}"
            return self._format_local(local)
        return self._format_local(datetime.fromtimestamp(ts, self.tz))

    def _format_local(self, local: datetime) -> str:
        if self.fmt_has_offset or not self.cron.repeats_every_hour or self.is_utc:
            return local.strftime(self.fmt)
        if local.fold == 1 and _is_second_occurrence(local):
            return local.strftime(self.fmt + "%z")
        return local.strftime(self.fmt)

    def parse_key(self, key: str) -> tuple[int, str]:
        """Dagster's key parsing: (instant, the key as re-formatted from what was parsed).

        The re-formatted text is what a basic cron's membership test compares against.
        """
        instant, parsed = self._parse(key)
        if parsed is None:
            return instant, self.format_instant(instant)
        if parsed is _CANONICAL:
            return instant, key  # a canonical preset key re-formats to itself
        # A naive parse is the first occurrence (fold=0), which never gets the offset suffix.
        assert isinstance(parsed, datetime)
        return instant, parsed.strftime(self.fmt)

    def parse_instant(self, key: str) -> int:
        """The instant Dagster parses a key to."""
        return self._parse(key)[0]

    def _parse(self, key: str) -> tuple[int, datetime | object | None]:
        """(instant, the naive datetime parsed; None when the key carried an offset;
        `_CANONICAL` for a canonical preset key), memoised per key, errors included."""
        cached = self._parsed.get(key)
        if cached is None:
            try:
                cached = self._parse_uncached(key)
            except InvalidPartitionKey as error:
                cached = error.message
            if len(self._parsed) > 500_000:
                self._parsed.clear()
            self._parsed[key] = cached
        if isinstance(cached, str):
            raise InvalidPartitionKey(cached)
        return cached

    def _parse_uncached(self, key: str) -> tuple[int, datetime | object | None]:
        instant = self.canonical_instant(key)
        if instant is not None:
            return instant, _CANONICAL
        try:
            parsed = _strptime(key, self.fmt)
        except ValueError:
            try:
                # Dagster retries with the offset suffix only when fmt lacks one.
                parsed = _strptime(key, self.fmt if self.fmt_has_offset else self.fmt + "%z")
            except ValueError:
                raise InvalidPartitionKey(
                    f"{key!r} does not match the format {self.fmt!r}"
                ) from None
        if parsed.tzinfo is not None:
            return int(parsed.timestamp()), None
        return self._naive_instant(parsed), parsed

    def canonical_instant(self, key: str) -> int | None:
        """The instant of a preset format's canonical key, the text strftime writes; None for
        any other text (which strptime then reads, or refuses).

        strptime costs ~10 us a key: here the layout is checked and the digits are read by
        the C ISO parser (ASCII digits only, as strftime writes them). An impossible date is
        None too.
        """
        fmt = self.fmt
        if len(key) < 10 or key[4] != "-" or key[7] != "-":
            return None
        try:
            if fmt == "%Y-%m-%d" and len(key) == 10:
                parsed = datetime.fromisoformat(key)
            elif fmt == "%Y-%m-%d-%H:%M" and len(key) == 16 and key[10:14:3] == "-:":
                parsed = datetime.fromisoformat(f"{key[:10]}T{key[11:]}")
            else:
                return None
        except ValueError:
            return None
        if self.is_utc:  # canonical keys have no seconds
            return (parsed.toordinal() - EPOCH_ORDINAL) * 86400 + (
                parsed.hour * 3600 + parsed.minute * 60
            )
        return _wall_to_instant(self.tz, parsed)

    def _naive_instant(self, parsed: datetime) -> int:
        if self.is_utc:
            return (parsed.toordinal() - EPOCH_ORDINAL) * 86400 + (
                parsed.hour * 3600 + parsed.minute * 60 + parsed.second
            )
        return _wall_to_instant(self.tz, parsed)

    def key_start(self, key: str) -> tuple[int, str]:
        """The window start Dagster derives from a key, and the text that start formats to.

        Basic crons take the parsed instant as it is; others snap it to the next window.
        """
        cached = self._key_starts.get(key)
        if cached is None:
            # A canonical key is its own re-formatted text; it skips the parse memo.
            instant = self.canonical_instant(key)
            if self.is_basic:
                cached = self.parse_key(key) if instant is None else (instant, key)
            else:
                if instant is None:
                    instant = self.parse_instant(key)
                index = self.window_index_from(instant)
                cached = (self.tick(index), self.key_at(index))
            if len(self._key_starts) > 500_000:
                self._key_starts.clear()
            self._key_starts[key] = cached
        return cached

    def start_for_key(self, key: str) -> int:
        """The window start Dagster derives from a key (before any membership check)."""
        if self.is_basic:
            return self.parse_instant(key)
        return self.key_start(key)[0]

    def window_for_key(self, key: str) -> Window:
        """The window Dagster maps a key to: the first window starting at or after its instant."""
        instant = self.parse_instant(key)
        return self.window(self.window_index_from(instant))

    def check_key(self, key: str, now: int) -> int:
        """Tick index of `key` if it is a partition at `now`; else raise InvalidPartitionKey."""
        start, formatted = self.key_start(key)
        if self.has_exclusions and self._is_excluded(start):
            raise InvalidPartitionKey(f"partition {key!r} is excluded")
        bounds = self.bounds(now)
        if bounds is None:
            raise InvalidPartitionKey(f"partition {key!r} does not exist: no partitions exist yet")
        if start < bounds[0]:
            raise InvalidPartitionKey(f"partition {key!r} is before the first partition")
        if start > bounds[1]:
            raise InvalidPartitionKey(f"partition {key!r} does not exist yet at {_iso(now)}")
        if formatted != key:
            raise InvalidPartitionKey(
                f"{key!r} is not a partition key: the partition starting then is {formatted!r}"
            )
        return self.window_index_from(start)

    def _key_is_exact(self, index: int) -> bool:
        """Whether the key of window `index` parses back to exactly its start (so Dagster's
        key round trip can be skipped): a preset format that holds every field of the wall
        time, and not the unmarked first of two repeated wall times' second twin."""
        if self.fmt not in _EXACT_FORMATS:
            return False
        table = self._table_holding(index, index + 1)
        position = index - table.base
        if table.excluded[position]:
            return False
        tick = table.ticks[position]
        if tick in self._wall_overrides:
            return True
        if self.is_utc:
            return self.fmt != "%Y-%m-%d" or tick % 86400 == 0
        local = datetime.fromtimestamp(tick, self.tz)
        if local.fold == 1 and not self.cron.repeats_every_hour:
            return False  # a second occurrence whose key carries no offset
        return self.fmt != "%Y-%m-%d" or (local.hour == 0 and local.minute == 0)

    def covering_span(self, start: int, end: int) -> tuple[int, int]:
        """Where the keys of the windows covering `[start, end)` start and end: the overlap
        rounded outwards, through keys as Dagster maps."""
        found = self.covering_indices(start, end)
        if found is not None:
            return self.tick(found[0]), self.tick(found[1])
        return (
            self.start_of_window_key(self.index_for_timestamp(start)),
            self.end_of_window_key(self.index_for_timestamp(end, end_closed=True)),
        )

    def covering_indices(self, start: int, end: int) -> tuple[int, int] | None:
        """`covering_span` as tick indices `[first, stop)` when its edges are ticks: the
        windows lie inside the table and their keys are exact. None otherwise."""
        if self.has_exclusions:
            return None
        table = self.table
        found = table.span(start, end, True)
        if found is None:
            return None
        first, stop = table.base + found[0], table.base + found[1]
        if self.keys_all_exact or (self._key_is_exact(first) and self._key_is_exact(stop - 1)):
            return first, stop
        return None

    def span_indices(self, start: int, end: int) -> tuple[int, int] | None:
        """Tick indices `[first, stop)` of the windows making up `[start, end)` when both
        are ticks in the table; None otherwise."""
        table = self.table
        found = table.span(start, end, False)
        return None if found is None else (table.base + found[0], table.base + found[1])

    def existing_windows(
        self,
        start: int,
        end: int,
        bounds: tuple[int, int] | None,
        covering: bool,
        keys_up_to: int,
    ) -> tuple[Window, list[str] | None] | None:
        """The windows of `[start, end)` when they all exist (`bounds` as `bounds(now)` gives
        them) and lie inside the table: their span, and their keys if there are no more than
        `keys_up_to`. With `covering`, the windows whose exact keys cover it
        (`covering_indices`); without, the windows making it up (`span_indices`). None
        otherwise."""
        if bounds is None or self.has_exclusions:
            return None
        table = self.table
        found = table.span(start, end, covering)
        if found is None:
            return None
        first, stop, first_tick, stop_tick, last_start = found
        if (
            covering
            and not self.keys_all_exact
            and not (
                self._key_is_exact(table.base + first) and self._key_is_exact(table.base + stop - 1)
            )
        ):
            return None
        # The first window starts no earlier than the first partition, the last no later
        # than the last one (windows are ticks apart, so none ends before the first one).
        if not (bounds[0] <= first_tick and last_start <= bounds[1]):
            return None
        keys = self.keys_of(table, first, stop) if stop - first <= keys_up_to else None
        return Window(first_tick, stop_tick), keys

    def span_of(self, first: int, stop: int) -> tuple[int, int]:
        """`[start, end)` of the windows with tick indices `[first, stop)`."""
        return self.tick(first), self.window(stop - 1).end

    def start_of_window_key(self, index: int) -> int:
        """Where Dagster says the key of window `index` starts (its key, parsed back)."""
        tick = self.tick(index)
        if self._key_is_exact(index):
            return tick
        start = self._window_key_starts.get(tick)
        if start is None:
            start = self.start_for_key(self.key_at(index))
            self._window_key_starts[tick] = start
        return start

    def end_of_window_key(self, index: int) -> int:
        """Where Dagster says the key of window `index` ends (its key, parsed back)."""
        if self._key_is_exact(index):
            return self.window(index).end
        tick = self.tick(index)
        end = self._window_key_ends.get(tick)
        if end is None:
            end = self.window_for_key(self.key_at(index)).end
            self._window_key_ends[tick] = end
        return end

    def index_of_key(self, key: str, bounds: tuple[int, int] | None) -> int | None:
        """Tick index of `key` when it is a canonical key of an existing partition (`bounds`
        as `bounds(now)` gives them) inside the table; None when it takes `check_keys`.

        The common question in one step: `key_start` and the checks of `check_keys`.
        """
        if bounds is None or self.has_exclusions:
            return None
        instant = self.canonical_instant(key)
        table = self.table
        ticks = table.ticks
        if instant is None or len(ticks) < 2 or not ticks[0] <= instant <= ticks[-2]:
            return None
        position = table.at_or_after(instant)
        index = table.base + position
        if self.is_basic:  # the key's instant is its start, and it re-formats to itself
            return index if bounds[0] <= instant <= bounds[1] else None
        tick = ticks[position]
        if not bounds[0] <= tick <= bounds[1]:
            return None
        if self.keys_all_exact and tick == instant:
            return index  # a canonical key is the text of its instant: of this tick's key
        known = table.keys[position]  # `key_at`, without its call once formatted
        return index if (known if known is not None else self.key_at(index)) == key else None

    def check_keys(self, keys: Sequence[str], now: int) -> list[int]:
        """`check_key` for many keys; raises on the first bad one (with its position).

        Keys usually come in runs of consecutive partitions: a key equal to the exact key of
        the window after the previous one is that window, with no parsing.
        """
        bounds = self.bounds(now)
        if keys and bounds is not None:
            first = self.index_of_key(keys[0], bounds)
            if first is not None:
                if len(keys) == 1:
                    return [first]
                # A run of consecutive exact keys, compared with the listed keys at once.
                stop = first + len(keys)
                table = self.table
                if (
                    self.keys_all_exact
                    and stop - table.base < len(table.ticks)
                    and table.ticks[stop - 1 - table.base] <= bounds[1]
                    and self.keys_slice(first, stop) == list(keys)
                ):
                    return list(range(first, stop))
        indices: list[int] = []
        previous: int | None = None
        for position, key in enumerate(keys):
            if bounds is not None and previous is not None:
                following = previous + 1
                table = self.table
                slot = following - table.base
                if (
                    0 <= slot < len(table.ticks) - 1
                    and bounds[0] <= table.ticks[slot] <= bounds[1]
                    and self.key_at(following) == key
                    and (self.keys_all_exact or self._key_is_exact(following))
                ):
                    indices.append(following)
                    previous = following
                    continue
            start, formatted = self.key_start(key)
            if (
                bounds is None
                or not bounds[0] <= start <= bounds[1]
                or formatted != key
                or (self.has_exclusions and self._is_excluded(start))
            ):
                try:
                    self.check_key(key, now)
                except InvalidPartitionKey as error:
                    raise error.at(f"partition_keys[{position}]") from None
            previous = self._index_at_or_after(start)
            indices.append(previous)
        return indices

    def key_for_timestamp(self, ts: int, end_closed: bool = False) -> str:
        """Dagster's get_partition_key_for_timestamp."""
        return self.key_at(self.index_for_timestamp(ts, end_closed))

    def index_for_timestamp(self, ts: int, end_closed: bool = False) -> int:
        table = self.table
        ticks = table.ticks
        if not self.has_exclusions and len(ticks) > 1 and ticks[1] <= ts < ticks[-1]:
            # Inside the table: the window holding `ts` (ending at it when end_closed).
            if end_closed:
                return table.base + table.at_or_after(ts) - 1
            return table.base + table.at_or_before(ts)
        previous = self._index_at_or_before(ts)
        if end_closed and self.tick(previous) == ts:
            previous -= 1
        previous = self._unexcluded(previous, -1)
        following = self.window_index_from(ts)
        if end_closed or self.tick(following) > ts:
            return previous
        return following

    def keys_in_window(self, window: Window) -> Iterator[int]:
        """Tick indices of the non-excluded windows starting in `[window.start, window.end)`."""
        index = self._index_at_or_after(window.start)
        while True:
            table = self._table_holding(index, index + 2)
            ticks, excluded, base = table.ticks, table.excluded, table.base
            while index < base + len(ticks) - 1:  # windows whose end is in this table
                if not index % 4096:
                    checkpoint()
                if ticks[index - base] >= window.end:
                    return
                if not excluded[index - base]:
                    yield index
                index += 1

    def ticks_between(self, start: int, end: int) -> int:
        """How many ticks lie in `[start, end)`."""
        first = self._index_at_or_after(start)
        return self._index_at_or_after(end) - first

    def last_window_index_before(self, ts: int) -> int:
        """Index of the last non-excluded window starting strictly before `ts`."""
        return self._unexcluded(self._index_at_or_after(ts) - 1, -1)

    def has_any_partitions_in(self, start: int, end: int) -> bool:
        if start >= end:
            return False
        return self.tick(self.window_index_from(start)) < end


def _outside_calendar() -> OutsideCalendar:
    return OutsideCalendar(
        f"the question reaches beyond the years {FIRST_TABLE_YEAR}-{LAST_TABLE_YEAR} "
        "that the service computes"
    )


def _year_of(ts: int) -> int:
    """The calendar year of `ts` in UTC, clamped to the table's years."""
    year = datetime.fromtimestamp(ts, UTC).year
    return min(max(year, FIRST_TABLE_YEAR), LAST_TABLE_YEAR)


def _strptime(text: str, fmt: str) -> datetime:
    """`datetime.strptime`, with a format it cannot read (a directive given twice, as in
    `%Y-%Y`: a regex error) refused as every key of that format."""
    try:
        return datetime.strptime(text, fmt)
    except re.error as error:
        raise InvalidPartitionKey(f"the format {fmt!r} cannot be read back: {error}") from None


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _is_second_occurrence(local: datetime) -> bool:
    tz = local.tzinfo
    assert tz is not None
    before = tz.utcoffset(local.replace(fold=0))
    after = tz.utcoffset(local.replace(fold=1))
    assert before is not None
    assert after is not None
    return before > after


def _parse(expression: str, field: str) -> Cron:
    try:
        return parse_cron(expression)
    except InvalidDefinition as error:
        raise InvalidDefinition(error.message, field) from None


# Bounded so that memory stays flat under many distinct definitions (a year of a 15-minute
# cron is 35,000 ticks); compiled definitions hold their own copies anyway.
# Thread safety: functools.lru_cache locks its own bookkeeping; its values are tuples.
@functools.lru_cache(maxsize=256)
def _ticks_of_year(
    cron: Cron, tz: tzinfo, year: int
) -> tuple[tuple[int, ...], tuple[tuple[int, datetime], ...]]:
    """Every tick of `cron` whose local date falls in `year`, as sorted UTC seconds, and the
    wall times of ticks that keep a nonexistent wall time as their key."""
    ticks: list[int] = []
    overrides: dict[int, datetime] = {}
    minutes = cron.minutes
    hours = cron.hours_of_day
    day = date(year, 1, 1)
    one_day = timedelta(days=1)
    is_utc = tz is UTC
    while day.year == year:
        if cron.matches_day(day):
            midnight = (day.toordinal() - EPOCH_ORDINAL) * 86400
            if is_utc:
                ticks.extend(midnight + h * 3600 + m * 60 for h in hours for m in minutes)
            else:
                ticks.extend(_local_ticks(cron, tz, day, midnight, hours, minutes, overrides))
        day += one_day
    ticks.sort()
    deduplicated = tuple(tick for i, tick in enumerate(ticks) if i == 0 or tick != ticks[i - 1])
    return deduplicated, tuple(overrides.items())


def _offset_seconds(tz: tzinfo, wall: datetime, fold: int = 0) -> int:
    offset = tz.utcoffset(wall.replace(fold=fold))
    assert offset is not None
    return int(offset.total_seconds())


def _local_ticks(
    cron: Cron,
    tz: tzinfo,
    day: date,
    midnight: int,
    hours: tuple[int, ...],
    minutes: tuple[int, ...],
    overrides: dict[int, datetime],
) -> list[int]:
    start_wall = datetime(day.year, day.month, day.day)
    if not _is_transition_day(tz, day):
        offset = _offset_seconds(tz, start_wall)
        return [midnight + h * 3600 + m * 60 - offset for h in hours for m in minutes]
    # A transition day: resolve each wall time the way Dagster's cron iterator does.
    result: list[int] = []
    for hour in hours:
        for minute in minutes:
            wall = start_wall.replace(hour=hour, minute=minute)
            first = _wall_to_instant(tz, wall, 0)
            if datetime.fromtimestamp(first, tz).replace(tzinfo=None) != wall:
                if cron.repeats_every_hour:
                    continue
                if hour in _DST_HOURS:
                    shift = tz.dst(wall + timedelta(hours=1)) or timedelta(hours=1)
                    result.append(_wall_to_instant(tz, wall.replace(minute=0) + shift))
                else:
                    overrides.setdefault(first, wall)
                    result.append(first)
                continue
            second = _wall_to_instant(tz, wall, 1)
            if second == first:
                result.append(first)
            elif cron.repeats_every_hour:
                result.extend((first, second))
            elif hour in _DST_HOURS or not cron.uses_calendar_shortcut:
                result.append(second)
            else:
                result.append(first)
    return result


def _is_transition_day(tz: tzinfo, day: date) -> bool:
    """Whether the zone's offset changes during the local `day` (or its midnight repeats)."""
    start_wall = datetime(day.year, day.month, day.day)
    offset = _offset_seconds(tz, start_wall)
    return not (
        offset
        == _offset_seconds(tz, start_wall + timedelta(hours=12))
        == _offset_seconds(tz, start_wall + timedelta(days=1))
        == _offset_seconds(tz, start_wall, 1)
    )


def _is_tick(cron: Cron, tz: tzinfo, ts: int) -> bool:
    """Whether `ts` is a tick of `cron` as the tick tables generate them, without tabulating
    its year (an every-minute exclusion cron has half a million ticks a year: tabulating
    them cost gigabytes)."""
    local = datetime.fromtimestamp(ts, tz)
    day = local.date()
    one_day = timedelta(days=1)
    if tz is UTC or not (_is_transition_day(tz, day) or _is_transition_day(tz, day - one_day)):
        return (
            local.second == 0
            and local.minute in cron.minutes
            and local.hour in cron.hours_of_day
            and cron.matches_day(day)
        )
    # Near a DST transition a tick may move to the next local day: the two days' ticks.
    overrides: dict[int, datetime] = {}
    for candidate in (day - one_day, day):
        if cron.matches_day(candidate):
            midnight = (candidate.toordinal() - EPOCH_ORDINAL) * 86400
            ticks = _local_ticks(
                cron, tz, candidate, midnight, cron.hours_of_day, cron.minutes, overrides
            )
            if ts in ticks:
                return True
    return False


# Thread safety: functools.lru_cache locks its own bookkeeping; two threads compiling one
# definition at once may build it twice, and one of the two equal values is kept.
@functools.lru_cache(maxsize=128)
def compile_time_windows(definition: TimeWindowPartitions) -> TimeWindows:
    return TimeWindows(definition)
