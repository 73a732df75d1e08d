"""Every timeline Dagster 1.13.29 evaluated, replayed through the domain engine tick by tick.

`cases.jsonl` is the specification (its format: tests/automation/README.md). Each tick's
requested partitions must equal Dagster's exactly, in Dagster's order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from partition_deps.domain.automation.timeline import Timeline, assets_from_json
from partition_deps.domain.codec import definition_from_json, mapping_from_json
from tests.automation.replay import load_cases, replay

CASES = load_cases()


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_tick_requests_what_dagster_requested(case: dict[str, Any]) -> None:
    for index, got, expected in replay(case):
        assert got == expected, f"tick {index} of {case['id']}"


def test_the_file_holds_every_timeline_and_tick() -> None:
    assert len(CASES) == 271
    assert sum(len(case["ticks"]) for case in CASES) == 3559


def test_run_requests_group_each_tick_by_definition_and_key_as_dagster_does() -> None:
    grouped_together = 0
    for case in CASES:
        timeline = Timeline(
            assets_from_json(case["assets"], definition_from_json, mapping_from_json)
        )
        for tick in case["ticks"]:
            for event in tick["events"]:
                timeline.apply(event)
            outcome = timeline.evaluate(datetime.fromisoformat(tick["evaluation_time"]))
            pairs = [
                (asset, run.partition_key) for run in outcome.run_requests for asset in run.assets
            ]
            expected = {
                (asset, key)
                for asset, keys in outcome.requested.items()
                for key in ((None,) if keys is None else keys)
            }
            assert sorted(pairs, key=str) == sorted(expected, key=str)
            groups = [
                (timeline.assets[run.assets[0]].partitions, run.partition_key)
                for run in outcome.run_requests
            ]
            assert len(groups) == len(set(groups))
            for run in outcome.run_requests:
                assert len({timeline.assets[a].partitions for a in run.assets}) == 1
            keys = [run.partition_key or "" for run in outcome.run_requests]
            assert keys == sorted(keys)
            grouped_together += sum(len(run.assets) > 1 for run in outcome.run_requests)
    assert grouped_together > 0
