"""Keys written and read without strftime/strptime agree with them, DST days included."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from partition_deps.domain.compiled_windows import TimeWindows, zone
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.partitions import has_key
from tests.domain.strategies import DAILY_FMT, HOURLY_FMT, ZONES

# 1900-01-01 to 2299-12-31 UTC: the years the service computes.
INSTANTS = st.integers(-2208988800, 10413791999)
CRONS = st.sampled_from(
    [
        ("0 0 * * *", DAILY_FMT),
        ("0 0 * * 0", DAILY_FMT),
        ("0 * * * *", HOURLY_FMT),
        ("30 * * * *", HOURLY_FMT),
        ("30 2 * * *", HOURLY_FMT),
    ]
)


def _strftime_key(windows: TimeWindows, ts: int) -> str:
    tz = zone(windows.definition.timezone)
    wall = windows._wall_overrides.get(ts)
    if wall is not None:
        return wall.replace(tzinfo=tz).strftime(windows.fmt)
    return windows._format_local(datetime.fromtimestamp(ts, tz))


@given(CRONS, st.sampled_from(ZONES), INSTANTS)
def test_formatted_keys_equal_strftime(cron_and_fmt: tuple[str, str], tz: str, ts: int) -> None:
    cron, fmt = cron_and_fmt
    windows = TimeWindows(TimeWindowPartitions(cron, datetime(2015, 1, 1), tz, fmt))
    assert windows.format_instant(ts) == _strftime_key(windows, ts)


@settings(max_examples=20)  # each example formats three years of ticks
@given(CRONS, st.sampled_from(ZONES), st.integers(1901, 2298))
def test_a_year_of_listed_keys_equals_strftime(
    cron_and_fmt: tuple[str, str], tz: str, year: int
) -> None:
    cron, fmt = cron_and_fmt
    windows = TimeWindows(TimeWindowPartitions(cron, datetime(year, 6, 1), tz, fmt))
    indices = windows.tabulated()
    keys = windows.keys_slice(indices.start, indices.stop)
    assert keys == [_strftime_key(windows, windows.tick(index)) for index in indices]


UTC_WINDOWS = {
    fmt: TimeWindows(TimeWindowPartitions(cron, datetime(2015, 1, 1), "UTC", fmt))
    for cron, fmt in (("0 0 * * *", DAILY_FMT), ("0 * * * *", HOURLY_FMT))
}


def _strptime_instant(text: str, fmt: str) -> int:
    return int(datetime.strptime(text, fmt).replace(tzinfo=UTC).timestamp())


@given(st.text(alphabet="0123456789-:T +Z_.W\u0663", max_size=18))
def test_canonical_keys_are_only_what_strftime_writes(text: str) -> None:
    for fmt, windows in UTC_WINDOWS.items():
        instant = windows.canonical_instant(text)
        if instant is not None:
            assert datetime.fromtimestamp(instant, UTC).strftime(fmt) == text
            assert instant == _strptime_instant(text, fmt)


@given(st.datetimes(datetime(1900, 1, 1), datetime(2299, 12, 31)))
def test_every_key_strftime_writes_is_canonical(wall: datetime) -> None:
    for fmt, windows in UTC_WINDOWS.items():
        text = wall.strftime(fmt)
        assert windows.canonical_instant(text) == _strptime_instant(text, fmt)


def test_a_key_with_non_ascii_digits_is_not_a_partition() -> None:
    # Dagster parses it (strptime takes any decimal digit) but its key round trip fails.
    daily = TimeWindowPartitions("0 0 * * *", datetime(2020, 1, 1))
    at = Evaluation(datetime(2025, 1, 1, tzinfo=UTC))
    assert has_key(daily, "2024-02-29", at)
    assert not has_key(daily, "2\u0660" + "24-02-29", at)
