"""Every timeline Dagster 1.13.29 evaluated, replayed through the domain engine tick by tick.

`cases.jsonl` is the specification (its format: tests/automation/README.md). Each tick's
requested partitions must equal Dagster's exactly, in Dagster's order.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.automation.replay import load_cases, replay

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_tick_requests_what_dagster_requested(case: dict[str, Any]) -> None:
    for index, got, expected in replay(case):
        assert got == expected, f"tick {index} of {case['id']}"


def test_the_file_holds_every_timeline_and_tick() -> None:
    assert len(CASES) == 271
    assert sum(len(case["ticks"]) for case in CASES) == 3559
