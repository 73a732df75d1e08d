"""The Dagster converter: definitions registered through it get Dagster's own answers.

Runs only where the `dagster` extra is installed (scripts/client_tests.sh makes a separate venv
for it); in CI (CI=true) a missing dagster fails rather than skips.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

try:
    import dagster as dg
except ImportError:  # pragma: no cover - depends on the venv
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("dagster is not installed (pip install '.[dagster]')", allow_module_level=True)

from partition_deps_client import Client, pb
from partition_deps_client.dagster import (
    assets,
    automation_condition,
    partition_mapping,
    partitions_definition,
    register,
)

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


def dagster_upstream(defs: dg.Definitions, child: str, parent: str, key: str) -> list[str]:
    """What Dagster itself says `child` partition `key` needs of `parent`."""
    graph = defs.resolve_asset_graph()
    child_node = graph.get(dg.AssetKey.from_user_string(child))
    parent_node = graph.get(dg.AssetKey.from_user_string(parent))
    mapping = graph.get_partition_mapping(child_node.key, parent_node.key)
    assert child_node.partitions_def is not None
    assert parent_node.partitions_def is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's beta/preview warnings
        result = mapping.get_upstream_mapped_partitions_result_for_partitions(
            child_node.partitions_def.subset_with_partition_keys([key]),
            child_node.partitions_def,
            parent_node.partitions_def,
            current_time=AS_OF,
        )
    needed = set(result.partitions_subset.get_partition_keys())
    # Dagster keeps non-time subsets in a set (its iteration order changes with the hash seed):
    # compare in the definition's own order, which is the order the service answers in.
    return [k for k in parent_node.partitions_def.get_partition_keys(AS_OF) if k in needed]


def service_upstream(
    client: Client, namespace: str, child: str, parent: str, key: str
) -> list[str]:
    answer = client.upstream_partitions(
        namespace, child, [key], upstream_asset_keys=[parent], as_of=AS_OF
    )
    [dependency] = answer.dependencies
    return list(dependency.partitions.partition_keys)


def seed_definitions() -> dg.Definitions:
    @dg.asset(partitions_def=dg.DailyPartitionsDefinition(start_date="2024-01-01"))
    def daily_sales_data() -> None: ...

    @dg.asset(
        partitions_def=dg.WeeklyPartitionsDefinition(start_date="2024-01-01"),
        deps=[daily_sales_data],
    )
    def weekly_sales_summary() -> None: ...

    return dg.Definitions(assets=[daily_sales_data, weekly_sales_summary])


def test_seed_definitions_get_dagsters_upstream_keys(client: Client, namespace: str) -> None:
    defs = seed_definitions()
    expected = dagster_upstream(defs, "weekly_sales_summary", "daily_sales_data", "2024-01-07")
    assert expected == [f"2024-01-{day:02d}" for day in range(7, 14)]

    applied = register(client, namespace, defs)
    assert sorted(a.asset_key for a in applied.assets) == [
        "daily_sales_data",
        "weekly_sales_summary",
    ]
    got = service_upstream(
        client, namespace, "weekly_sales_summary", "daily_sales_data", "2024-01-07"
    )
    assert got == expected


def test_converted_assets_keep_unset_mappings_unset() -> None:
    by_key = {a.asset_key: a for a in assets(seed_definitions())}
    weekly = by_key["weekly_sales_summary"]
    assert weekly.partitions_definition.time_window.cron_schedule == "0 0 * * 0"
    assert weekly.partitions_definition.time_window.start == "2024-01-01T00:00:00"
    [dependency] = weekly.dependencies
    assert dependency.upstream_asset_key == "daily_sales_data"
    assert not dependency.HasField("partition_mapping")  # the service infers Dagster's default


def test_an_observable_source_asset_is_declared_one() -> None:
    @dg.observable_source_asset
    def raw_feed() -> dg.DataVersion:
        return dg.DataVersion("1")

    @dg.asset(deps=[raw_feed])
    def cleaned() -> None: ...

    by_key = {a.asset_key: a for a in assets(dg.Definitions(assets=[raw_feed, cleaned]))}
    assert by_key["raw_feed"].observable_source is True
    assert by_key["cleaned"].observable_source is False


def _pair(
    upstream: dg.PartitionsDefinition[Any],
    downstream: dg.PartitionsDefinition[Any],
    mapping: dg.PartitionMapping | None,
) -> dg.Definitions:
    @dg.asset(name="up", key_prefix=["src"], partitions_def=upstream)
    def up() -> None: ...

    @dg.asset(
        name="down",
        partitions_def=downstream,
        ins={"up": dg.AssetIn(key=dg.AssetKey(["src", "up"]), partition_mapping=mapping)},
    )
    def down(up: None) -> None: ...

    return dg.Definitions(assets=[up, down])


DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01")
REGIONS = dg.StaticPartitionsDefinition(["eu", "us", "apac"])
CASES: dict[str, tuple[dg.Definitions, str]] = {
    "weekly <- daily, previous week": (
        _pair(
            DAILY,
            dg.WeeklyPartitionsDefinition(start_date="2024-01-01"),
            dg.TimeWindowPartitionMapping(start_offset=-1),
        ),
        "2024-01-14",
    ),
    "daily <- hourly in a DST zone": (
        _pair(
            dg.HourlyPartitionsDefinition(start_date="2024-03-01-00:00", timezone="Europe/Berlin"),
            dg.DailyPartitionsDefinition(start_date="2024-03-01", timezone="Europe/Berlin"),
            None,
        ),
        "2024-03-31",
    ),
    "static one-to-many": (
        _pair(
            dg.StaticPartitionsDefinition(["a", "b"]),
            dg.StaticPartitionsDefinition(["x", "y", "z"]),
            dg.StaticPartitionMapping({"a": ["x", "y"], "b": "z"}),
        ),
        "y",
    ),
    "daily x region <- daily": (
        _pair(
            DAILY,
            dg.MultiPartitionsDefinition({"date": DAILY, "region": REGIONS}),
            dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date"),
        ),
        "2024-01-05|us",
    ),
    "all of a static": (_pair(REGIONS, DAILY, dg.AllPartitionMapping()), "2024-01-05"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_converted_definitions_get_dagsters_answers(
    client: Client, namespace: str, case: str
) -> None:
    defs, key = CASES[case]
    register(client, namespace, defs)
    expected = dagster_upstream(defs, "down", "src/up", key)
    assert service_upstream(client, namespace, "down", "src/up", key) == expected


def test_every_mapping_kind_converts() -> None:
    mappings: list[dg.PartitionMapping] = [
        dg.IdentityPartitionMapping(),
        dg.AllPartitionMapping(),
        dg.LastPartitionMapping(),
        dg.TimeWindowPartitionMapping(start_offset=-2, end_offset=1),
        dg.StaticPartitionMapping({"a": "b"}),
        dg.SpecificPartitionsPartitionMapping(["a"]),
        dg.MultiToSingleDimensionPartitionMapping(),
        dg.MultiPartitionMapping(
            {"date": dg.DimensionPartitionMapping("day", dg.IdentityPartitionMapping())}
        ),
    ]
    kinds = {partition_mapping(mapping).WhichOneof("kind") for mapping in mappings}
    assert kinds == {
        "identity",
        "all",
        "last",
        "time_window",
        "static",
        "specific",
        "multi_to_single_dimension",
        "multi",
    }
    dynamic = partitions_definition(dg.DynamicPartitionsDefinition(name="customers"))
    assert dynamic.dynamic.name == "customers"


# ----- automation conditions --------------------------------------------------------------

AUTOMATION_CASES = Path(__file__).resolve().parents[3] / "tests" / "automation" / "cases.jsonl"


def dagster_condition(data: dict[str, Any]) -> dg.AutomationCondition[Any]:
    """A Dagster condition from the automation cases' JSON, with Dagster's own constructors."""
    from dagster._core.definitions.declarative_automation.operators import (
        AndAutomationCondition,
        OrAutomationCondition,
    )

    ac = dg.AutomationCondition
    kind = data["type"]
    if kind in ("and", "or"):
        operator = AndAutomationCondition if kind == "and" else OrAutomationCondition
        return operator(operands=[dagster_condition(child) for child in data["operands"]])
    if kind == "not":
        return ~dagster_condition(data["operand"])
    if kind == "since":
        trigger = dagster_condition(data["trigger"])
        return cast(dg.AutomationCondition[Any], trigger.since(dagster_condition(data["reset"])))
    if kind == "since_last_handled":
        return dagster_condition(data["operand"]).since_last_handled()
    if kind == "newly_true":
        return dagster_condition(data["operand"]).newly_true()
    if kind in ("on_cron", "cron_tick_passed", "all_deps_updated_since_cron"):
        built: dg.AutomationCondition[Any] = getattr(ac, kind)(
            data["cron_schedule"], data["cron_timezone"]
        )
        return built
    if kind == "in_latest_time_window":
        seconds = data.get("lookback_seconds")
        return ac.in_latest_time_window(None if seconds is None else timedelta(seconds=seconds))
    condition: Any = (
        getattr(ac, kind)(dagster_condition(data["operand"]))
        if kind in ("any_deps_match", "all_deps_match")
        else getattr(ac, kind)()
    )
    if data.get("allow") is not None:
        condition = condition.allow(dg.AssetSelection.assets(*data["allow"]))
    if data.get("ignore") is not None:
        condition = condition.ignore(dg.AssetSelection.assets(*data["ignore"]))
    return cast(dg.AutomationCondition[Any], condition)


def api_condition(data: dict[str, Any]) -> pb.automation.AutomationCondition:
    """The same JSON straight into the API's message, field by field."""
    message = pb.automation.AutomationCondition()
    body = getattr(message, data["type"])
    body.SetInParent()
    if "operands" in data:
        body.operands.extend(api_condition(child) for child in data["operands"])
    for name in ("operand", "trigger", "reset"):
        if name in data:
            getattr(body, name).CopyFrom(api_condition(data[name]))
    for name in ("cron_schedule", "cron_timezone", "lookback_seconds"):
        if data.get(name) is not None:
            setattr(body, name, data[name])
    for name in ("allow", "ignore"):
        if data.get(name) is not None:
            getattr(body, name).asset_keys.extend(data[name])
    return message


def test_every_condition_of_the_automation_cases_converts_as_written() -> None:
    conditions: list[dict[str, Any]] = []
    for line in AUTOMATION_CASES.read_text().splitlines():
        for item in json.loads(line)["assets"]:
            data = item["automation_condition"]
            if data is not None and data not in conditions:
                conditions.append(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's beta/preview warnings
        converted = [automation_condition(dagster_condition(data)) for data in conditions]
    assert len(conditions) > 90
    assert converted == [api_condition(data) for data in conditions]


def test_register_carries_each_assets_automation_condition(client: Client, namespace: str) -> None:
    @dg.asset(
        partitions_def=dg.DailyPartitionsDefinition("2024-01-01"),
        automation_condition=dg.AutomationCondition.on_cron("0 1 * * *"),
    )
    def daily_sales_data() -> None: ...

    @dg.asset(
        partitions_def=dg.WeeklyPartitionsDefinition("2024-01-01"),
        deps=[daily_sales_data],
        automation_condition=dg.AutomationCondition.eager(),
    )
    def weekly_sales_summary() -> None: ...

    applied = register(
        client, namespace, dg.Definitions(assets=[daily_sales_data, weekly_sales_summary])
    )

    by_key = {asset.asset_key: asset.automation_condition for asset in applied.assets}
    assert by_key["daily_sales_data"] == api_condition(
        {"type": "on_cron", "cron_schedule": "0 1 * * *", "cron_timezone": "UTC"}
    )
    assert by_key["weekly_sales_summary"] == api_condition({"type": "eager"})
