"""Automation conditions: their JSON form round-trips, and a bad node is named by its path."""

from __future__ import annotations

from typing import Any

import pytest

from partition_deps.domain.automation.conditions import (
    KINDS,
    Condition,
    condition_from_json,
    condition_to_json,
    validate_condition,
)
from partition_deps.domain.errors import InvalidDefinition
from tests.automation.replay import load_cases


def _every_condition_in_the_cases() -> list[dict[str, Any]]:
    return [
        asset["automation_condition"]
        for case in load_cases()
        for asset in case["assets"]
        if asset["automation_condition"] is not None
    ]


def _kinds(data: Any) -> set[str]:
    if isinstance(data, dict):
        found = {data["type"]} if "type" in data else set()
        for value in data.values():
            found |= _kinds(value)
        return found
    if isinstance(data, list):
        return set().union(*(_kinds(item) for item in data)) if data else set()
    return set()


def test_every_condition_of_the_timelines_round_trips_through_json() -> None:
    conditions = _every_condition_in_the_cases()
    assert len(conditions) > 500
    for data in conditions:
        assert condition_to_json(condition_from_json(data)) == data


def test_the_timelines_use_most_kinds_and_every_kind_is_known() -> None:
    used = set().union(*(_kinds(data) for data in _every_condition_in_the_cases()))
    assert used <= KINDS
    assert {"eager", "on_cron", "on_missing", "and", "not", "since"} <= used


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "sometimes"}, "type"),
        ({"type": "and", "operands": [{"type": "missing"}]}, "and.operands"),
        (
            {
                "type": "and",
                "operands": [
                    {"type": "missing"},
                    {"type": "in_latest_time_window"},
                    {"type": "cron_tick_passed", "cron_schedule": "61 * * * *"},
                ],
            },
            "and.operands[2].cron_tick_passed.cron_schedule",
        ),
        (
            {"type": "on_cron", "cron_schedule": "0 1 * * *", "cron_timezone": "Mars/Olympus"},
            "on_cron.cron_timezone",
        ),
        (
            {"type": "not", "operand": {"type": "since", "trigger": {"type": "missing"}}},
            "not.operand.since.reset",
        ),
        (
            {"type": "in_latest_time_window", "lookback_seconds": -5},
            "in_latest_time_window.lookback_seconds",
        ),
        ({"type": "missing", "allow": ["a"]}, "missing.allow"),
        ({"type": "any_deps_missing", "ignore": [""]}, "any_deps_missing.ignore[0]"),
    ],
)
def test_a_bad_node_is_refused_naming_its_path(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidDefinition) as refused:
        condition_from_json(data)
    assert refused.value.field == field


def test_trees_deeper_than_the_limit_are_refused() -> None:
    node = Condition("missing")
    for _ in range(40):
        node = Condition("not", (node,))
    with pytest.raises(InvalidDefinition) as refused:
        validate_condition(node)
    assert "deeper" in refused.value.message
