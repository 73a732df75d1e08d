"""Replays a timeline of tests/automation/cases.jsonl through the domain engine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from partition_deps.domain.automation.engine import TickState
from partition_deps.domain.automation.timeline import Timeline, assets_from_json, requested_as_json
from partition_deps.domain.codec import definition_from_json, mapping_from_json

CASES_PATH = Path(__file__).with_name("cases.jsonl")
Requested = list[dict[str, Any]]


def load_cases() -> list[dict[str, Any]]:
    with CASES_PATH.open() as lines:
        return [json.loads(line) for line in lines]


def replay(case: dict[str, Any]) -> Iterator[tuple[int, Requested, Requested]]:
    """Per tick: its index, what was requested (the file's form) and what Dagster requested.

    The state goes through its JSON form between ticks, as it does through Postgres."""
    timeline = Timeline(assets_from_json(case["assets"], definition_from_json, mapping_from_json))
    for index, tick in enumerate(case["ticks"]):
        for event in tick["events"]:
            timeline.apply(event)
        outcome = timeline.evaluate(datetime.fromisoformat(tick["evaluation_time"]))
        timeline.state = TickState.from_json(json.loads(json.dumps(outcome.state.to_json())))
        yield index, requested_as_json(outcome), tick["expected"]["requested"]
