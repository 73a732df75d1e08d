"""The fast layer: the commonest questions answered in tick indices, or not at all.

A time-window mapping without offsets, asked about one run of consecutive downstream
partitions whose upstream windows all exist, is answered here without building subsets (one
key of weekly <- daily in about 8 us, where the general path takes about 40). Every answer is
the one the general path (`mappings/time_window.py`, `map_time_windows`) gives; a question
this layer cannot answer exactly returns None and the general path answers it, including
every error. `dependencies` consults this layer only while `enabled()`: setting the
environment variable PD_DOMAIN_PATH=general, or calling `force_general_path(True)`, sends
every question down the general path (the tests compare the two that way).
"""

from __future__ import annotations

import os
from datetime import date

from partition_deps.domain.compiled_windows import EPOCH_ORDINAL, TimeWindows, Window
from partition_deps.domain.mappings.time_window import pair_rules
from partition_deps.domain.subsets import LISTED_KEYS, TimeSubset

# Thread safety: one bool, replaced whole; read once per question.
_enabled = os.environ.get("PD_DOMAIN_PATH", "fast") != "general"


def enabled() -> bool:
    """Whether questions may be answered by this layer."""
    return _enabled


def force_general_path(forced: bool) -> None:
    """Send every question down the general path (True), or let this layer answer (False).

    Answers already remembered stay (they are the same either way); to compare the two
    paths on fresh work, call `dependencies.clear_memos(compiled=False)` after switching.
    """
    global _enabled
    _enabled = not forced


class SpanMapping:
    """A time-window mapping without offsets between two compiled definitions, going up.

    `map_time_windows` answers every question; this answers the common one, one run of
    downstream windows whose upstream windows all exist, in tick indices with no subsets
    built (with the one-key path in `dependencies`, the weekly <- daily bench row went from
    46 us to 13). What depends only on the two definitions is decided once here.

    Thread safety: immutable after construction; every table it reads is read once per step
    (`TimeWindows.table`), and tick indices hold across table versions.
    """

    def __init__(self, origin: TimeWindows, target: TimeWindows) -> None:
        self.origin = origin
        self.target = target
        self.nothing = TimeSubset(target, ())  # shared: an empty subset never changes
        rules = pair_rules(origin, target)
        # Copied from the rules: attributes of this object are the cheapest to read.
        self.same_zone = rules.same_zone
        self.same_definition = rules.same_definition
        self.same_but_bounds = rules.same_but_bounds
        self.daily_to_hourly = rules.daily_to_hourly
        self.same_ticks = rules.same_ticks
        # None of Dagster's shortcuts can apply: straight to the overlap.
        self.overlap_only = self.same_zone and not (
            self.same_definition or self.same_but_bounds or self.daily_to_hourly
        )
        # ...and both sides' keys are exact: one key maps in one step (`_windows_for_key`).
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
            found = _windows_for_key(
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


def _windows_for_key(
    origin: TimeWindows,
    target: TimeWindows,
    key: str,
    origin_bounds: tuple[int, int] | None,
    target_bounds: tuple[int, int] | None,
    covering: bool,
    keys_up_to: int,
) -> tuple[Window, list[str] | None] | None:
    """`origin.index_of_key` then `target.existing_windows` for that key's window, in one
    step: the target windows of one key, as the one-key question needs them (each call
    between the two costs about a microsecond in the bench). Both definitions must have
    all-exact keys (`keys_all_exact`). None when the key is not the canonical key of an
    existing origin window inside the table, or the target windows do not all exist.
    """
    # `canonical_instant` for UTC keys, inline: both sides' keys are UTC (all exact).
    if len(key) < 10 or key[4] != "-" or key[7] != "-":
        return None
    instant: int | None
    try:
        if len(key) == 10 and origin.fmt == "%Y-%m-%d":
            instant = (date.fromisoformat(key).toordinal() - EPOCH_ORDINAL) * 86400
        else:
            instant = origin.canonical_instant(key)
    except ValueError:
        return None
    if (
        instant is None
        or origin_bounds is None
        or target_bounds is None
        or not origin_bounds[0] <= instant <= origin_bounds[1]
    ):
        return None
    end = origin.table.window_end(instant)
    if end is None:
        return None  # between ticks (basic crons take such keys too): left to `check_keys`
    table = target.table
    found = table.span(instant, end, covering)
    if found is None:
        return None
    first, stop, first_tick, stop_tick, last_start = found
    if not (target_bounds[0] <= first_tick and last_start <= target_bounds[1]):
        return None
    keys = None
    if stop - first <= keys_up_to:
        if table.formatted.find(0, first, stop) != -1:  # `keys_of`, inline: ~100 ns a call
            target.keys_of(table, first, stop)
        keys = table.keys[first:stop]
    return Window(first_tick, stop_tick), keys  # type: ignore[return-value]
