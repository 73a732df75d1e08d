"""Five-field cron expressions: parsing, validation and wall-clock matching.

The accepted syntax is the one Dagster accepts (numbers, names, ranges, steps, lists, `L` for
the last day of the month, `n#k` for the k-th weekday of the month, `@daily`-style aliases).
A field that covers its whole range is normalised to a wildcard, as Dagster's parser does;
this matters because "hour is a wildcard" decides how DST ambiguities are resolved.
"""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import date

from partition_deps.domain.errors import InvalidDefinition

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTH_NAMES = {
    name: number
    for number, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_DAY_NAMES = {
    name: number for number, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
}
# (lowest, highest) value of each field: minute, hour, day of month, month, day of week.
_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")


@dataclass(frozen=True)
class Cron:
    """A parsed cron. `None` in a field means wildcard (every value)."""

    expression: str
    minutes: tuple[int, ...]
    minutes_wildcard: bool
    hours: tuple[int, ...] | None
    days_of_month: frozenset[int] | None
    last_day_of_month: bool
    months: frozenset[int] | None
    days_of_week: frozenset[int] | None
    nth_weekdays: tuple[tuple[int, frozenset[int]], ...]

    @property
    def repeats_every_hour(self) -> bool:
        """Dagster's rule for DST: such crons keep both repeated hours and skip missing ones."""
        return self.hours is None

    @property
    def uses_calendar_shortcut(self) -> bool:
        """Whether Dagster iterates this cron with its hourly/daily/weekly/monthly shortcut.

        It matters at DST: the shortcut resolves an ambiguous wall time to its later
        occurrence only between 01:00 and 03:59, the general iterator always does.
        """
        if self.nth_weekdays or self.months is not None:
            return False
        single_time = len(self.minutes) == 1 and self.hours is not None and len(self.hours) == 1
        no_day_of_month = self.days_of_month is None and not self.last_day_of_month
        if self.hours is None:
            return not self.minutes_wildcard and no_day_of_month and self.days_of_week is None
        if not single_time:
            return False
        if no_day_of_month:
            return True  # daily (any days of week) or weekly
        return (
            self.days_of_week is None
            and not self.last_day_of_month
            and self.days_of_month is not None
            and len(self.days_of_month) == 1
            and max(self.days_of_month) <= 28
        )

    @property
    def hours_of_day(self) -> tuple[int, ...]:
        return tuple(range(24)) if self.hours is None else self.hours

    def matches_day(self, day: date) -> bool:
        if self.months is not None and day.month not in self.months:
            return False
        dom_wild = self.days_of_month is None and not self.last_day_of_month
        dow_wild = self.days_of_week is None
        if dom_wild and dow_wild:
            return True
        if dow_wild:
            return self._matches_day_of_month(day)
        if dom_wild:
            return self._matches_day_of_week(day)
        # Both restricted: standard cron (and Dagster) take either.
        return self._matches_day_of_month(day) or self._matches_day_of_week(day)

    def _matches_day_of_month(self, day: date) -> bool:
        if self.days_of_month is not None and day.day in self.days_of_month:
            return True
        return self.last_day_of_month and day.day == calendar.monthrange(day.year, day.month)[1]

    def _matches_day_of_week(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday = 0
        assert self.days_of_week is not None
        if weekday not in self.days_of_week:
            return False
        for nth_day, occurrences in self.nth_weekdays:
            if nth_day == weekday:
                return (day.day - 1) // 7 + 1 in occurrences
        return True


# Thread safety: functools.lru_cache locks its own bookkeeping; a Cron is immutable.
@functools.lru_cache(maxsize=1024)
def parse_cron(expression: str) -> Cron:
    """Parse a cron; raise InvalidDefinition with the reason if Dagster would refuse it."""
    text = expression.lower()
    text = _ALIASES.get(text, text)  # only an exact alias: " @daily" is refused, as Dagster does
    fields = text.split()
    if len(fields) != 5:
        raise InvalidDefinition(
            f"invalid cron schedule {expression!r}: expected 5 fields, got {len(fields)}"
        )
    try:
        minutes = _expand(fields[0], 0)
        hours = _expand(fields[1], 1)
        days_of_month, last_day = _expand_day_of_month(fields[2])
        months = _expand(fields[3], 3)
        days_of_week, nth = _expand_day_of_week(fields[4])
    except ValueError as error:
        raise InvalidDefinition(f"invalid cron schedule {expression!r}: {error}") from None
    if (
        months is not None
        and months == frozenset({2})
        and days_of_month is not None
        and not last_day
        and len(days_of_month) == 1
        and days_of_month <= {30, 31}
    ):
        raise InvalidDefinition(f"invalid cron schedule {expression!r}: February has no such day")
    return Cron(
        expression=expression,
        minutes=tuple(sorted(minutes)) if minutes is not None else tuple(range(60)),
        minutes_wildcard=minutes is None,
        hours=tuple(sorted(hours)) if hours is not None else None,
        days_of_month=days_of_month,
        last_day_of_month=last_day,
        months=months,
        days_of_week=days_of_week,
        nth_weekdays=nth,
    )


def _value(token: str, field: int) -> int:
    names = _MONTH_NAMES if field == 3 else _DAY_NAMES if field == 4 else {}
    if token in names:
        return names[token]
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a valid {_FIELD_NAMES[field]}")
    value = int(token)
    low, high = _RANGES[field]
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range for {_FIELD_NAMES[field]} ({low}-{high})")
    return value


def _expand_items(text: str, field: int) -> set[int]:
    low, high = _RANGES[field]
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValueError(f"empty item in {_FIELD_NAMES[field]}")
        body, slash, step_text = item.partition("/")
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"invalid step {step_text!r} in {_FIELD_NAMES[field]}")
            step = int(step_text)
        else:
            step = 1
        if body in ("*", "?") and (body == "*" or field in (2, 4)):
            first, last = low, high
        elif "-" in body:
            first_text, _, last_text = body.partition("-")
            first = _value(first_text, field)
            last = high if field == 2 and last_text == "l" else _value(last_text, field)
        else:
            first = _value(body, field)
            last = high if slash else first
        if first <= last:
            values.update(range(first, last + 1, step))
        else:
            # A backwards range wraps around the end of the field, as Dagster's parser does.
            wrapped = [*range(first, high + 1), *range(low, last + 1)]
            values.update(wrapped[::step])
    return values


def _expand(text: str, field: int) -> frozenset[int] | None:
    values = _expand_items(text, field)
    low, high = _RANGES[field]
    return None if values == set(range(low, high + 1)) else frozenset(values)


def _expand_day_of_month(text: str) -> tuple[frozenset[int] | None, bool]:
    if text == "?":
        return None, False
    items = text.split(",")
    last_day = "l" in items
    numeric = [item for item in items if item != "l"]
    if not numeric:
        return (None if not last_day else frozenset()), last_day
    values = _expand_items(",".join(numeric), 2)
    if not last_day and values == set(range(1, 32)):
        return None, False
    return frozenset(values), last_day


def _expand_day_of_week(
    text: str,
) -> tuple[frozenset[int] | None, tuple[tuple[int, frozenset[int]], ...]]:
    if text == "?":
        return None, ()
    plain: list[str] = []
    nth: dict[int, set[int]] = {}
    for item in text.split(","):
        if "#" in item:
            day_text, _, occurrence_text = item.partition("#")
            day = _value(day_text, 4) % 7
            if not occurrence_text.isdigit() or not 1 <= int(occurrence_text) <= 5:
                raise ValueError(f"invalid occurrence in {item!r}")
            nth.setdefault(day, set()).add(int(occurrence_text))
        else:
            plain.append(item)
    values = {value % 7 for value in _expand_items(",".join(plain), 4)} if plain else set()
    values |= set(nth)
    nth_items = tuple(sorted((day, frozenset(occ)) for day, occ in nth.items()))
    if values == set(range(7)) and not nth:
        return None, ()
    return frozenset(values), nth_items
