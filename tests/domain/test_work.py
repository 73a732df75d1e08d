"""Long work stops once its caller gives up, and leaves nothing half-done behind."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from partition_deps.domain.compiled_windows import TimeWindows
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.dependencies import clear_memos
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.work import WorkAbandoned, abandoned_when

AS_OF = Evaluation(datetime(2025, 1, 1, tzinfo=UTC))
# 75 years of hourly partitions: building its tick table takes a while.
HOURLY = TimeWindowPartitions("0 * * * *", datetime(1950, 1, 1), "UTC", "%Y-%m-%d-%H:%M")


def _listing() -> tuple[int, list[str]]:
    subset = all_partitions(HOURLY, AS_OF)
    return len(subset), subset.keys(len(subset) - 3)


def test_a_listing_whose_caller_gave_up_stops_and_the_next_one_is_whole() -> None:
    clear_memos()
    checks = itertools.count()
    with pytest.raises(WorkAbandoned), abandoned_when(lambda: next(checks) >= 5):
        _listing()
    assert next(checks) <= 7  # it stopped at the first check after giving up
    answer = _listing()
    assert answer == (657_456, ["2024-12-31-21:00", "2024-12-31-22:00", "2024-12-31-23:00"])


def test_a_walk_over_excluded_windows_stops_when_its_caller_gives_up() -> None:
    every_tick_excluded = TimeWindowPartitions(
        "0 * * * *", datetime(2020, 1, 1), "UTC", "%Y-%m-%d-%H:%M", exclusions=("* * * * *",)
    )
    windows = TimeWindows(every_tick_excluded)
    with pytest.raises(WorkAbandoned), abandoned_when(lambda: True):
        windows.first_window_index()


def test_without_a_caller_that_gives_up_nothing_is_abandoned() -> None:
    clear_memos()
    assert _listing()[0] == 657_456
