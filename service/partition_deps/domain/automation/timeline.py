"""Timelines in the automation cases' JSON form: the asset graph, then events and ticks.

The form is the one Dagster's answers were recorded in (tests/automation/README.md): events
`materialization`, `observation`, `run_started`, `run_succeeded`, `run_failed`,
`add_dynamic_partitions` and `set_code_version`, each with an ISO `timestamp`. A `Timeline`
applies them to an `EventHistory` in order and evaluates ticks, carrying the state between
them, as a scheduler calling the service would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.automation.conditions import condition_from_json
from partition_deps.domain.automation.engine import TickOutcome, TickState, evaluate_tick
from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.definitions import PartitionsDefinition
from partition_deps.domain.mappings.kinds import PartitionMapping

Json = Mapping[str, Any]


def assets_from_json(
    items: Sequence[Json],
    parse_definition: Callable[[Any], PartitionsDefinition | None],
    parse_mapping: Callable[[Any], PartitionMapping | None],
) -> dict[str, AssetDefinition]:
    """The assets of a timeline, with definitions and mappings parsed by the given codec."""
    assets = {}
    for item in items:
        condition = item["automation_condition"]
        assets[item["key"]] = AssetDefinition(
            key=item["key"],
            partitions=parse_definition(item["partitions"]),
            code_version=item["code_version"],
            dependencies=tuple(
                Dependency(dep["upstream"], parse_mapping(dep["mapping"])) for dep in item["deps"]
            ),
            automation_condition=None if condition is None else condition_from_json(condition),
        )
    return assets


class Timeline:
    """One namespace's history as a timeline builds it, tick after tick."""

    def __init__(self, assets: Mapping[str, AssetDefinition]) -> None:
        self.assets = dict(assets)
        self.history = EventHistory()
        self.dynamic_keys: dict[str, list[str]] = {}
        self.state: TickState | None = None
        # The last event position the previous tick saw.
        self.seen = 0
        self._runs: dict[str, Json] = {}

    def _next(self) -> int:
        return self.history.last_position + 1

    def apply(self, event: Json) -> None:
        kind = event["type"]
        at = datetime.fromisoformat(event["timestamp"]).timestamp()
        history = self.history
        if kind == "materialization":
            history.materialization(
                self._next(),
                event["asset"],
                event["partition_key"],
                at,
                None,
                event["data_version"],
            )
        elif kind == "observation":
            history.observation(
                self._next(), event["asset"], event["partition_key"], at, event["data_version"]
            )
        elif kind == "run_started":
            self._runs[event["run"]] = event
            targets = [(asset, event["partition_key"]) for asset in event["assets"]]
            history.run_started(self._next(), event["run"], targets, at)
        elif kind == "run_succeeded":
            run = self._runs[event["run"]]
            for asset in run["assets"]:
                history.materialization(
                    self._next(), asset, run["partition_key"], at, event["run"], None
                )
            history.run_succeeded(self._next(), event["run"], at)
        elif kind == "run_failed":
            history.run_failed(self._next(), event["run"], at)
        elif kind == "add_dynamic_partitions":
            keys = self.dynamic_keys.setdefault(event["name"], [])
            keys.extend(key for key in event["partition_keys"] if key not in keys)
        elif kind == "set_code_version":
            asset = self.assets[event["asset"]]
            self.assets[asset.key] = dataclasses.replace(asset, code_version=event["code_version"])
        else:
            raise ValueError(f"unknown timeline event type {kind!r}")

    def evaluate(self, evaluation_time: datetime) -> TickOutcome:
        # What the previous tick saw is all the next needs of older updates.
        self.history.compact(self.seen)
        self.history.seen = self.seen
        outcome = evaluate_tick(
            list(self.assets.values()), self.history, self.state, evaluation_time, self.dynamic_keys
        )
        self.state = outcome.state
        self.seen = self.history.last_position
        return outcome


def requested_as_json(outcome: TickOutcome) -> list[dict[str, Any]]:
    """A tick's requests in the timelines' `expected.requested` form."""
    return [
        {"asset": asset, "partition_keys": None if keys is None else list(keys)}
        for asset, keys in outcome.requested.items()
    ]
