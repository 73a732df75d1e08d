"""Automation conditions on assets over a real channel: every kind is stored and returned as
given, and a bad node anywhere in a tree is INVALID_ARGUMENT naming its path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import automation_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb

from .builders import DAILY, asset, condition
from .conftest import Stubs
from .errors import error_info, field_violations

CASES = Path(__file__).parent.parent / "automation" / "cases.jsonl"

# Every kind at least once, with every optional field both set and unset somewhere.
EVERY_KIND: dict[str, Any] = {
    "type": "or",
    "operands": [
        {"type": "eager"},
        {"type": "on_cron", "cron_schedule": "0 1 * * *", "cron_timezone": "Europe/Berlin"},
        {"type": "on_missing"},
        {
            "type": "and",
            "operands": [
                {"type": "in_latest_time_window"},
                {"type": "in_latest_time_window", "lookback_seconds": 259200.5},
                {"type": "not", "operand": {"type": "in_progress"}},
            ],
        },
        {
            "type": "since",
            "trigger": {
                "type": "cron_tick_passed",
                "cron_schedule": "*/5 * * * *",
                "cron_timezone": "UTC",
            },
            "reset": {"type": "newly_requested"},
        },
        {"type": "since_last_handled", "operand": {"type": "newly_missing"}},
        {"type": "newly_true", "operand": {"type": "missing"}},
        {"type": "any_deps_match", "operand": {"type": "newly_updated"}, "allow": ["a", "b"]},
        {"type": "all_deps_match", "operand": {"type": "run_in_progress"}, "ignore": []},
        {"type": "backfill_in_progress"},
        {"type": "execution_failed"},
        {"type": "any_deps_updated", "allow": ["a"], "ignore": ["b"]},
        {"type": "any_deps_missing"},
        {"type": "any_deps_in_progress", "ignore": ["c"]},
        {
            "type": "all_deps_updated_since_cron",
            "cron_schedule": "0 0 * * 1",
            "cron_timezone": "America/New_York",
        },
        {"type": "initial_evaluation"},
        {"type": "code_version_changed"},
        {"type": "will_be_requested"},
        {"type": "executed_with_root_target"},
        {"type": "data_version_changed"},
    ],
}


def _kinds(data: dict[str, Any]) -> set[str]:
    found = {data["type"]}
    for child in data.get("operands", []):
        found |= _kinds(child)
    for name in ("operand", "trigger", "reset"):
        if name in data:
            found |= _kinds(data[name])
    return found


def _apply(stubs: Stubs, namespace: str, *assets: defs_pb.Asset) -> defs_pb.ApplyAssetsResponse:
    return stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets)
    )


def _with_condition(key: str, data: dict[str, Any]) -> defs_pb.Asset:
    message = asset(key, DAILY)
    message.automation_condition.CopyFrom(condition(data))
    return message


def test_every_kind_is_returned_exactly_as_given(stubs: Stubs, namespace: str) -> None:
    every_field = automation_pb.AutomationCondition.DESCRIPTOR.oneofs_by_name["kind"].fields
    assert _kinds(EVERY_KIND) == {field.name for field in every_field}
    given = condition(EVERY_KIND)
    applied = _apply(stubs, namespace, _with_condition("x", EVERY_KIND), asset("plain", DAILY))

    read = stubs.definitions.GetAsset(defs_pb.GetAssetRequest(namespace=namespace, asset_key="x"))
    listed = stubs.definitions.ListAssets(defs_pb.ListAssetsRequest(namespace=namespace))

    assert applied.assets[0].automation_condition == given
    assert read.asset.automation_condition == given
    assert [a.HasField("automation_condition") for a in listed.assets] == [False, True]
    assert listed.assets[1].automation_condition == given
    # Presence survives: an empty `ignore` list is set, an unset `allow` is not.
    node = getattr(read.asset.automation_condition, "or").operands[8].all_deps_match
    assert node.HasField("ignore")
    assert not node.HasField("allow")
    window = getattr(getattr(read.asset.automation_condition, "or").operands[3], "and")
    assert not window.operands[0].in_latest_time_window.HasField("lookback_seconds")


def test_an_empty_cron_timezone_is_stored_as_utc(stubs: Stubs, namespace: str) -> None:
    applied = _apply(
        stubs, namespace, _with_condition("x", {"type": "on_cron", "cron_schedule": "0 1 * * *"})
    )

    assert applied.assets[0].automation_condition.on_cron.cron_timezone == "UTC"


def test_every_condition_of_the_automation_cases_round_trips(stubs: Stubs, namespace: str) -> None:
    written: list[dict[str, Any]] = []
    for line in CASES.read_text().splitlines():
        for case_asset in json.loads(line)["assets"]:
            data = case_asset["automation_condition"]
            if data is not None and data not in written:
                written.append(data)
    assets = [_with_condition(f"c{index:04d}", data) for index, data in enumerate(written)]

    _apply(stubs, namespace, *assets)
    listed = stubs.definitions.ListAssets(
        defs_pb.ListAssetsRequest(namespace=namespace, page_size=len(assets))
    )

    assert len(written) > 90
    assert [a.automation_condition for a in listed.assets] == [condition(data) for data in written]


def _nested_nots(depth: int) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "missing"}
    for _ in range(depth):
        data = {"type": "not", "operand": data}
    return data


def _unset_operand(kind: str) -> automation_pb.AutomationCondition:
    message = automation_pb.AutomationCondition()
    getattr(message, kind).SetInParent()
    return message


def _with_empty_node() -> automation_pb.AutomationCondition:
    message = condition({"type": "and", "operands": [{"type": "missing"}, {"type": "eager"}]})
    getattr(message, "and").operands.add()
    return message


def _bad_cron_at_depth() -> automation_pb.AutomationCondition:
    return condition(
        {
            "type": "and",
            "operands": [
                {"type": "in_latest_time_window"},
                {"type": "missing"},
                {"type": "cron_tick_passed", "cron_schedule": "0 25 * * *"},
            ],
        }
    )


def _deep_bad_zone() -> automation_pb.AutomationCondition:
    return condition(
        {
            "type": "not",
            "operand": {
                "type": "since",
                "trigger": {"type": "newly_updated"},
                "reset": {
                    "type": "all_deps_match",
                    "operand": {
                        "type": "all_deps_updated_since_cron",
                        "cron_schedule": "0 1 * * *",
                        "cron_timezone": "Mars/Olympus",
                    },
                },
            },
        }
    )


BAD_NODES: list[tuple[str, automation_pb.AutomationCondition, str]] = [
    ("bad cron at depth", _bad_cron_at_depth(), "and.operands[2].cron_tick_passed.cron_schedule"),
    (
        "bad zone at depth",
        _deep_bad_zone(),
        "not.operand.since.reset.all_deps_match.operand.all_deps_updated_since_cron.cron_timezone",
    ),
    ("empty condition", automation_pb.AutomationCondition(), ""),
    ("node without a kind", _with_empty_node(), "and.operands[2]"),
    ("one operand", condition({"type": "or", "operands": [{"type": "missing"}]}), "or.operands"),
    ("no operands", condition({"type": "and", "operands": []}), "and.operands"),
    ("not without operand", _unset_operand("not"), "not.operand"),
    ("since without trigger", _unset_operand("since"), "since.trigger"),
    (
        "since without reset",
        automation_pb.AutomationCondition(
            since=automation_pb.SinceCondition(trigger=condition({"type": "missing"}))
        ),
        "since.reset",
    ),
    ("deps match without operand", _unset_operand("any_deps_match"), "any_deps_match.operand"),
    (
        "negative lookback",
        condition({"type": "in_latest_time_window", "lookback_seconds": -1}),
        "in_latest_time_window.lookback_seconds",
    ),
    (
        "empty key in allow",
        condition({"type": "not", "operand": {"type": "any_deps_missing", "allow": ["a", ""]}}),
        "not.operand.any_deps_missing.allow.asset_keys[1]",
    ),
    ("too deep", condition(_nested_nots(40)), ".".join(["not.operand"] * 32) + ".not"),
    (
        "too many nodes",
        condition({"type": "and", "operands": [{"type": "missing"}] * 300}),
        "",
    ),
]


@pytest.mark.parametrize(
    ("message", "path"), [bad[1:] for bad in BAD_NODES], ids=[bad[0] for bad in BAD_NODES]
)
def test_a_bad_node_is_refused_naming_its_path(
    stubs: Stubs, namespace: str, message: automation_pb.AutomationCondition, path: str
) -> None:
    bad = asset("bad", DAILY)
    bad.automation_condition.CopyFrom(message)

    with pytest.raises(grpc.RpcError) as raised:
        _apply(stubs, namespace, asset("fine", DAILY), bad)

    expected = "assets[1].automation_condition" + (f".{path}" if path else "")
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value).reason == "INVALID_DEFINITION"
    assert field_violations(raised.value) == [expected]
