"""Hypothesis strategies for domain values, in one place."""

from __future__ import annotations

from datetime import datetime

from hypothesis import strategies as st

from partition_deps.domain.definitions import TimeWindowPartitions

ZONES = (
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
)
HOURLY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"


@st.composite
def cron_and_fmt(draw: st.DrawFn) -> tuple[str, str]:
    minute = draw(st.sampled_from([0, 15, 30, 45]))
    hour = draw(st.integers(0, 23))
    kind = draw(st.sampled_from(["hourly", "daily", "weekly", "monthly", "six_hourly", "weekdays"]))
    if kind == "hourly":
        return f"{minute} * * * *", HOURLY_FMT
    if kind == "six_hourly":
        return f"{minute} */6 * * *", HOURLY_FMT
    if kind == "daily":
        return f"{minute} {hour} * * *", HOURLY_FMT if minute or hour else DAILY_FMT
    if kind == "weekdays":
        return f"{minute} {hour} * * 1-5", HOURLY_FMT
    if kind == "weekly":
        return f"{minute} {hour} * * {draw(st.integers(0, 6))}", HOURLY_FMT
    return f"{minute} {hour} {draw(st.integers(1, 28))} * *", HOURLY_FMT


@st.composite
def time_definitions(draw: st.DrawFn, zone: str | None = None) -> TimeWindowPartitions:
    cron, fmt = draw(cron_and_fmt())
    start = draw(st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2024, 6, 1)))
    return TimeWindowPartitions(
        cron_schedule=cron,
        start=start.replace(second=0, microsecond=0),
        timezone=zone or draw(st.sampled_from(ZONES)),
        fmt=fmt,
        end_offset=draw(st.sampled_from([0, 0, 0, 1, -1])),
    )


def as_of_instants() -> st.SearchStrategy[datetime]:
    from datetime import UTC

    return st.datetimes(
        min_value=datetime(2024, 7, 1), max_value=datetime(2025, 12, 31), timezones=st.just(UTC)
    )


@st.composite
def preset_definitions(draw: st.DrawFn, zone: str) -> TimeWindowPartitions:
    """Hourly, daily, weekly or monthly partitions with preset formats (the fast paths'
    ground), sometimes with an end, an end offset or an odd key format."""
    cron, fmt = draw(
        st.sampled_from(
            [
                ("0 * * * *", HOURLY_FMT),
                ("0 0 * * *", DAILY_FMT),
                ("0 0 * * 0", DAILY_FMT),
                ("0 0 1 * *", DAILY_FMT),
                ("0 0 * * *", HOURLY_FMT),
                ("30 * * * *", HOURLY_FMT),
            ]
        )
    )
    start = draw(st.datetimes(min_value=datetime(2023, 6, 1), max_value=datetime(2025, 6, 1)))
    end = draw(
        st.none() | st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1))
    )
    return TimeWindowPartitions(
        cron_schedule=cron,
        start=start.replace(minute=0, second=0, microsecond=0)
        if draw(st.booleans())
        else start.replace(hour=0, minute=0, second=0, microsecond=0),
        timezone=zone,
        fmt=fmt,
        end=None if end is None else end.replace(second=0, microsecond=0),
        end_offset=draw(st.sampled_from([0, 0, 0, 1, -1, 3])),
    )
