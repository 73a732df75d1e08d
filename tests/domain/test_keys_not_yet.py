"""Queried keys that do not exist yet: refused as Dagster refuses them, or answered on request."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.errors import InvalidPartitionKey
from partition_deps.domain.mappings.kinds import LastMapping
from partition_deps.domain.partitions import Options, keys_not_yet
from partition_deps.domain.results import KeyState
from tests.domain.definitions import DAILY, WEEKLY

# Wednesday noon: the week of Sunday 2024-01-07 is in progress, so is the day 2024-01-10.
WEDNESDAY = Evaluation(datetime(2024, 1, 10, 12, tzinfo=UTC))
ANSWER_NOT_YET = Options(keys_not_yet=True)


def test_this_weeks_key_is_refused_by_default() -> None:
    with pytest.raises(InvalidPartitionKey):
        upstream_partitions(DAILY, WEEKLY, None, ["2024-01-07"], WEDNESDAY)


def test_this_weeks_key_on_request_needs_its_days_so_far_and_the_rest_later() -> None:
    result = upstream_partitions(DAILY, WEEKLY, None, ["2024-01-07"], WEDNESDAY, ANSWER_NOT_YET)
    assert list(result.partitions) == ["2024-01-07", "2024-01-08", "2024-01-09"]
    assert list(result.required_but_nonexistent) == [f"2024-01-{d}" for d in range(10, 14)]
    assert [(s.key, s.state) for s in result.nonexistent][:1] == [("2024-01-10", KeyState.NOT_YET)]
    assert result.nonexistent[0].available_at == datetime(2024, 1, 11, tzinfo=UTC)


def test_a_mapping_on_the_last_partition_takes_the_last_one_at_as_of() -> None:
    result = upstream_partitions(
        DAILY, WEEKLY, LastMapping(), ["2024-01-07"], WEDNESDAY, ANSWER_NOT_YET
    )
    assert list(result.partitions) == ["2024-01-09"]


def test_todays_key_on_request_maps_down_as_usual() -> None:
    # The identity carries today's key over; the week that will use it does not exist yet,
    # and a time-window mapping down leaves out downstream partitions that do not exist.
    same_day = downstream_partitions(DAILY, DAILY, None, ["2024-01-10"], WEDNESDAY, ANSWER_NOT_YET)
    assert list(same_day.partitions) == ["2024-01-10"]
    week = downstream_partitions(DAILY, WEEKLY, None, ["2024-01-10"], WEDNESDAY, ANSWER_NOT_YET)
    assert list(week.partitions) == []


def test_existing_keys_are_answered_the_same_either_way() -> None:
    keys = ["2024-01-07"]
    at = Evaluation(datetime(2024, 1, 20, tzinfo=UTC))
    strict = upstream_partitions(DAILY, WEEKLY, None, keys, at)
    lenient = upstream_partitions(DAILY, WEEKLY, None, keys, at, ANSWER_NOT_YET)
    assert list(lenient.partitions) == list(strict.partitions)
    assert list(lenient.required_but_nonexistent) == list(strict.required_but_nonexistent)


@pytest.mark.parametrize(
    "key",
    [
        "2023-12-31",  # before the first partition: never a partition
        "2024-01-08",  # not a week's key
        "next week",
    ],
)
def test_keys_that_never_will_be_partitions_are_refused_on_request_too(key: str) -> None:
    with pytest.raises(InvalidPartitionKey):
        upstream_partitions(DAILY, WEEKLY, None, [key], WEDNESDAY, ANSWER_NOT_YET)


def test_only_keys_that_will_exist_are_listed_with_their_instants() -> None:
    statuses = keys_not_yet(WEEKLY, ["2023-12-31", "2024-01-07", "2024-01-14", "x"], WEDNESDAY)
    assert [(s.key, s.available_at) for s in statuses] == [
        ("2024-01-07", datetime(2024, 1, 14, tzinfo=UTC)),
        ("2024-01-14", datetime(2024, 1, 21, tzinfo=UTC)),
    ]
