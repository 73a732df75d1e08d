"""Every timeline Dagster 1.13.29 evaluated (tests/automation/cases.jsonl), replayed through the
public API over a real channel: ApplyAssets, ReportEvents and AddDynamicPartitions, then
EvaluateAutomation tick by tick. Every tick's requests must equal Dagster's exactly.

The timelines' events map onto the API as follows: `run_started` is RunStarted targeting each
of its assets for its key; `run_succeeded` is one Materialization per asset of the run, under
its run id, in the run's order, then RunSucceeded; `run_failed` is RunFailed;
`set_code_version` is ApplyAssets with the new code version; `add_dynamic_partitions` is
AddDynamicPartitions. Events between two such calls go in one ReportEvents batch.
"""

from __future__ import annotations

from typing import Any

import pytest

from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from tests.automation.replay import load_cases

from .builders import condition, definition, mapping, timestamp
from .conftest import Stubs

CASES = load_cases()
Json = dict[str, Any]


def case_asset(data: Json) -> defs_pb.Asset:
    message = defs_pb.Asset(asset_key=data["key"])
    partitions = definition(data["partitions"])
    if partitions is not None:
        message.partitions_definition.CopyFrom(partitions)
    for dep in data["deps"]:
        added = message.dependencies.add(upstream_asset_key=dep["upstream"])
        dep_mapping = mapping(dep["mapping"])
        if dep_mapping is not None:
            added.partition_mapping.CopyFrom(dep_mapping)
    if data["code_version"] is not None:
        message.code_version = data["code_version"]
    if data["automation_condition"] is not None:
        message.automation_condition.CopyFrom(condition(data["automation_condition"]))
    return message


def _optional_key(message: Any, key: str | None) -> Any:
    if key is not None:
        message.partition_key = key
    return message


class CaseReplay:
    """One timeline's namespace, fed through the API as a scheduler would."""

    def __init__(self, stubs: Stubs, namespace: str, case: Json) -> None:
        self.stubs = stubs
        self.namespace = namespace
        self.assets = {item["key"]: dict(item) for item in case["assets"]}
        self.runs: dict[str, Json] = {}
        self.pending: list[events_pb.Event] = []
        self.sent = 0
        self.apply_assets()

    def apply_assets(self) -> None:
        self.stubs.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=self.namespace,
                assets=[case_asset(item) for item in self.assets.values()],
                replace_all=True,
            )
        )

    def _event(self, at: str, **kind: Any) -> None:
        self.sent += 1
        self.pending.append(
            events_pb.Event(idempotency_key=f"e{self.sent}", event_time=timestamp(at), **kind)
        )

    def flush(self) -> None:
        if self.pending:
            self.stubs.events.ReportEvents(
                events_pb.ReportEventsRequest(namespace=self.namespace, events=self.pending)
            )
            self.pending = []

    def apply(self, event: Json) -> None:
        kind, at = event["type"], event["timestamp"]
        if kind in ("materialization", "observation"):
            fields = {"asset_key": event["asset"], "data_version": event["data_version"] or ""}
            body = (
                events_pb.Materialization(**fields)
                if kind == "materialization"
                else events_pb.Observation(**fields)
            )
            self._event(at, **{kind: _optional_key(body, event["partition_key"])})
        elif kind == "run_started":
            self.runs[event["run"]] = event
            targets = [
                _optional_key(events_pb.PartitionTarget(asset_key=asset), event["partition_key"])
                for asset in event["assets"]
            ]
            self._event(at, run_started=events_pb.RunStarted(run_id=event["run"], targets=targets))
        elif kind == "run_succeeded":
            run = self.runs[event["run"]]
            for asset in run["assets"]:
                body = events_pb.Materialization(asset_key=asset, run_id=event["run"])
                self._event(at, materialization=_optional_key(body, run["partition_key"]))
            self._event(at, run_succeeded=events_pb.RunSucceeded(run_id=event["run"]))
        elif kind == "run_failed":
            self._event(at, run_failed=events_pb.RunFailed(run_id=event["run"]))
        elif kind == "add_dynamic_partitions":
            self.flush()
            self.stubs.definitions.AddDynamicPartitions(
                defs_pb.AddDynamicPartitionsRequest(
                    namespace=self.namespace,
                    definition_name=event["name"],
                    partition_keys=event["partition_keys"],
                )
            )
        else:
            assert kind == "set_code_version", kind
            self.flush()
            self.assets[event["asset"]]["code_version"] = event["code_version"]
            self.apply_assets()

    def evaluate(self, index: int, evaluation_time: str) -> automation_pb.AutomationTick:
        self.flush()
        response = self.stubs.automation.EvaluateAutomation(
            automation_pb.EvaluateAutomationRequest(
                namespace=self.namespace,
                tick_id=f"tick-{index}",
                evaluation_time=timestamp(evaluation_time),
            )
        )
        assert not response.next_page_token
        return response.tick


def requested(tick: automation_pb.AutomationTick) -> list[Json]:
    return [
        {
            "asset": item.asset_key,
            "partition_keys": list(item.partitions.partition_keys)
            if item.HasField("partitions")
            else None,
        }
        for item in tick.requested
    ]


def check_run_requests(tick: automation_pb.AutomationTick) -> None:
    """Every requested asset partition is in exactly one run request, and nothing else is."""
    in_runs = sorted(
        (asset, run.partition_key if run.HasField("partition_key") else None)
        for run in tick.run_requests
        for asset in run.asset_keys
    )
    wanted = sorted(
        (item.asset_key, key)
        for item in tick.requested
        for key in (item.partitions.partition_keys if item.HasField("partitions") else [None])
    )
    assert in_runs == wanted
    assert tick.run_request_count == len(tick.run_requests)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_every_tick_requests_what_dagster_requested(
    stubs: Stubs, namespace: str, case: Json
) -> None:
    replay = CaseReplay(stubs, namespace, case)
    for index, tick in enumerate(case["ticks"]):
        for event in tick["events"]:
            replay.apply(event)
        answer = replay.evaluate(index, tick["evaluation_time"])
        assert requested(answer) == tick["expected"]["requested"], f"tick {index}"
        check_run_requests(answer)
