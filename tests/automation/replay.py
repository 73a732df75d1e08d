"""Replays a timeline of tests/automation/cases.jsonl through the domain engine."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.automation.conditions import condition_from_json
from partition_deps.domain.automation.engine import TickState, evaluate_tick
from partition_deps.domain.automation.history import EventHistory
from partition_deps.store.codec import definition_from_json, mapping_from_json

CASES_PATH = Path(__file__).with_name("cases.jsonl")


def load_cases() -> list[dict[str, Any]]:
    with CASES_PATH.open() as lines:
        return [json.loads(line) for line in lines]


def assets_of(case: dict[str, Any]) -> dict[str, AssetDefinition]:
    assets = {}
    for item in case["assets"]:
        condition = item["automation_condition"]
        assets[item["key"]] = AssetDefinition(
            key=item["key"],
            partitions=definition_from_json(item["partitions"]),
            code_version=item["code_version"],
            dependencies=tuple(
                Dependency(dep["upstream"], mapping_from_json(dep["mapping"]))
                for dep in item["deps"]
            ),
            automation_condition=None if condition is None else condition_from_json(condition),
        )
    return assets


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


Requested = list[dict[str, Any]]


def replay(case: dict[str, Any]) -> Iterator[tuple[int, Requested, Requested]]:
    """Per tick: its index, the requested list as the file writes it, and the expected one."""
    assets = assets_of(case)
    history = EventHistory()
    dynamic: dict[str, list[str]] = {}
    runs: dict[str, dict[str, Any]] = {}
    state: TickState | None = None
    position = 0
    for index, tick in enumerate(case["ticks"]):
        for event in tick["events"]:
            kind = event["type"]
            at = instant(event["timestamp"]).timestamp()
            if kind == "materialization":
                position += 1
                asset, key = event["asset"], event["partition_key"]
                history.materialization(position, asset, key, at, None, event["data_version"])
            elif kind == "observation":
                position += 1
                history.observation(
                    position, event["asset"], event["partition_key"], at, event["data_version"]
                )
            elif kind == "run_started":
                position += 1
                runs[event["run"]] = event
                history.run_started(
                    position, event["run"], event["assets"], event["partition_key"], at
                )
            elif kind == "run_succeeded":
                run = runs[event["run"]]
                for asset in run["assets"]:
                    position += 1
                    history.materialization(
                        position, asset, run["partition_key"], at, event["run"], None
                    )
                position += 1
                history.run_succeeded(position, event["run"], at)
            elif kind == "run_failed":
                position += 1
                history.run_failed(position, event["run"], at)
            elif kind == "add_dynamic_partitions":
                keys = dynamic.setdefault(event["name"], [])
                keys.extend(k for k in event["partition_keys"] if k not in keys)
            elif kind == "set_code_version":
                assets[event["asset"]] = dataclasses.replace(
                    assets[event["asset"]], code_version=event["code_version"]
                )
            else:
                raise AssertionError(f"unknown event type {kind}")
        outcome = evaluate_tick(
            list(assets.values()), history, state, instant(tick["evaluation_time"]), dynamic
        )
        state = TickState.from_json(json.loads(json.dumps(outcome.state.to_json())))
        got = [
            {"asset": asset, "partition_keys": None if keys is None else list(keys)}
            for asset, keys in outcome.requested.items()
        ]
        yield index, got, tick["expected"]["requested"]
