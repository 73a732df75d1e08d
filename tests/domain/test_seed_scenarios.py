"""The seed scenarios of the design, answered by the domain core alone."""

from __future__ import annotations

from datetime import UTC, datetime

from partition_deps.domain.definitions import (
    DynamicPartitions,
    Evaluation,
    TimeWindowPartitions,
)
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.mappings.kinds import AllMapping, TimeWindowMapping
from partition_deps.domain.results import KeyState, PartitionRun
from tests.domain.definitions import DAILY, DATE_BY_REGION, REGIONS, WEEKLY

MARCH = Evaluation(datetime(2024, 3, 1, tzinfo=UTC))


def test_weekly_partition_needs_its_seven_days_as_one_run() -> None:
    result = upstream_partitions(DAILY, WEEKLY, None, ["2024-01-07"], MARCH)
    assert list(result.partitions) == [f"2024-01-{day:02d}" for day in range(7, 14)]
    assert result.partitions.runs() == [
        PartitionRun(
            "2024-01-07",
            "2024-01-13",
            7,
            datetime(2024, 1, 7, tzinfo=UTC),
            datetime(2024, 1, 14, tzinfo=UTC),
        )
    ]
    assert list(result.required_but_nonexistent) == []


def test_a_day_is_read_by_the_week_that_contains_it() -> None:
    result = downstream_partitions(DAILY, WEEKLY, None, ["2024-01-09"], MARCH)
    assert list(result.partitions) == ["2024-01-07"]


def test_unpartitioned_downstream_of_daily_needs_every_day() -> None:
    up = upstream_partitions(DAILY, None, None, [], MARCH)
    assert [(run.first_key, run.last_key, run.count) for run in up.partitions.runs()] == [
        ("2024-01-01", "2024-02-29", 60)
    ]
    down = downstream_partitions(DAILY, None, None, ["2024-01-09"], MARCH)
    assert down.whole_asset


def test_daily_downstream_of_unpartitioned_needs_the_whole_asset() -> None:
    up = upstream_partitions(None, DAILY, None, ["2024-01-09"], MARCH)
    assert up.whole_asset
    down = downstream_partitions(None, DAILY, None, [], MARCH)
    assert len(down.partitions) == 60


def test_date_by_region_reads_its_day_and_its_region() -> None:
    from_daily = upstream_partitions(DAILY, DATE_BY_REGION, None, ["2024-01-05|eu"], MARCH)
    assert list(from_daily.partitions) == ["2024-01-05"]
    from_regions = upstream_partitions(REGIONS, DATE_BY_REGION, None, ["2024-01-05|eu"], MARCH)
    assert list(from_regions.partitions) == ["eu"]
    readers = downstream_partitions(DAILY, DATE_BY_REGION, None, ["2024-01-05"], MARCH)
    assert list(readers.partitions) == ["2024-01-05|us", "2024-01-05|eu", "2024-01-05|apac"]


def test_dynamic_upstream_whose_keys_change() -> None:
    customers = DynamicPartitions("customers")
    accounts = DynamicPartitions("accounts")  # identity needs dynamic on both sides
    before = Evaluation(MARCH.as_of, {"customers": ["acme"], "accounts": ["globex"]})
    first = upstream_partitions(customers, accounts, None, ["globex"], before)
    assert list(first.partitions) == []
    assert list(first.required_but_nonexistent) == ["globex"]
    assert first.nonexistent[0].state is KeyState.NEVER

    after = Evaluation(MARCH.as_of, {"customers": ["acme", "globex"], "accounts": ["globex"]})
    second = upstream_partitions(customers, accounts, None, ["globex"], after)
    assert list(second.partitions) == ["globex"]
    assert list(second.required_but_nonexistent) == []

    # A daily report over every customer: the answer follows the keys added and deleted.
    report = upstream_partitions(customers, DAILY, AllMapping(), ["2024-01-05"], after)
    assert list(report.partitions) == ["acme", "globex"]
    deleted = Evaluation(MARCH.as_of, {"customers": ["globex"]})
    report = upstream_partitions(customers, DAILY, AllMapping(), ["2024-01-05"], deleted)
    assert list(report.partitions) == ["globex"]


def test_offsets_that_dagster_clamps_are_still_classified() -> None:
    # Dagster drops the future day silently (issue 26935); we keep its Dagster-exact answer
    # and report the day as NOT_YET with the instant it will exist.
    result = upstream_partitions(DAILY, DAILY, TimeWindowMapping(0, 1), ["2024-02-29"], MARCH)
    assert list(result.partitions) == ["2024-02-29"]
    assert list(result.required_but_nonexistent) == []
    assert [(s.key, s.state, s.available_at) for s in result.nonexistent] == [
        ("2024-03-01", KeyState.NOT_YET, datetime(2024, 3, 2, tzinfo=UTC))
    ]


def test_days_before_the_upstream_start_are_never() -> None:
    later = TimeWindowPartitions("0 0 * * *", datetime(2024, 1, 10))
    result = upstream_partitions(later, DAILY, TimeWindowMapping(-1, 0), ["2024-01-05"], MARCH)
    assert list(result.partitions) == []
    assert {s.state for s in result.nonexistent} == {KeyState.NEVER}
