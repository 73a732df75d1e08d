"""A raised error is never changed: naming its field under a prefix gives a new error."""

from __future__ import annotations

from datetime import datetime

import pytest

from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.errors import InvalidDefinition, InvalidPartitionKey


def test_at_returns_a_new_error_of_the_same_kind_and_leaves_the_raised_one_alone() -> None:
    raised = InvalidDefinition("bad cron", "cron_schedule")
    named = raised.at("assets[1].partitions_definition.time_window")
    assert type(named) is InvalidDefinition
    assert named is not raised
    assert (named.message, named.field) == (
        "bad cron",
        "assets[1].partitions_definition.time_window.cron_schedule",
    )
    assert raised.field == "cron_schedule"


def test_at_names_the_prefix_itself_when_the_error_names_no_field() -> None:
    assert InvalidPartitionKey("no such partition").at("selection").field == "selection"


def test_a_time_window_key_refused_in_a_list_names_its_position() -> None:
    daily = TimeWindowPartitions(cron_schedule="0 0 * * *", start=datetime(2024, 1, 1))
    with pytest.raises(InvalidPartitionKey) as refused:
        compile_time_windows(daily).check_keys(["2024-01-01", "2023-06-01"], 1_800_000_000)
    assert refused.value.field == "partition_keys[1]"
