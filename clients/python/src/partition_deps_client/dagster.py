"""Register Dagster definitions with partition-deps (needs the `dagster` extra).

    import dagster as dg
    from partition_deps_client import Client
    from partition_deps_client.dagster import register

    defs = dg.Definitions(assets=[daily_sales_data, weekly_sales_summary])
    with Client("127.0.0.1:50051") as pd:
        register(pd, "analytics", defs)

Each asset of the definitions' asset graph becomes an `Asset`: its key
(`AssetKey.to_user_string()`, so `a/b` for `AssetKey(["a", "b"])`), its partitions definition,
its code version, whether it is an observable source (`@observable_source_asset`), its
automation condition, and one dependency per parent. Only mappings the code states explicitly
are sent; the others stay unset so the service infers Dagster's default, exactly as Dagster
does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from partition_deps_client.client import Client
from partition_deps_client.pb import automation, definitions, partitions


class UnsupportedDefinitionError(ValueError):
    """A Dagster partitions definition, mapping or automation condition the API cannot
    express."""


def _wall_time(value: Any, timezone: str) -> str:
    """A Dagster instant (datetime or TimestampWithTimezone) as a wall time in `timezone`."""
    if isinstance(value, datetime):
        moment = value
    else:  # TimestampWithTimezone
        moment = datetime.fromtimestamp(value.timestamp, ZoneInfo(value.timezone))
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M:%S")


def partitions_definition(
    definition: dg.PartitionsDefinition[Any],
) -> partitions.PartitionsDefinition:
    """The API's form of a Dagster partitions definition."""
    if isinstance(definition, dg.TimeWindowPartitionsDefinition):
        timezone = definition.timezone or "UTC"
        window = partitions.TimeWindowPartitions(
            cron_schedule=definition.cron_schedule,
            start=_wall_time(definition.start, timezone),
            timezone=timezone,
            fmt=definition.fmt,
            end_offset=definition.end_offset,
        )
        if definition.end is not None:
            window.end = _wall_time(definition.end, timezone)
        for exclusion in definition.exclusions or ():
            if isinstance(exclusion, str):
                window.exclusions.add(cron_schedule=exclusion)
            else:
                window.exclusions.add(wall_time=_wall_time(exclusion, timezone))
        return partitions.PartitionsDefinition(time_window=window)
    if isinstance(definition, dg.StaticPartitionsDefinition):
        return partitions.PartitionsDefinition(
            static=partitions.StaticPartitions(partition_keys=definition.get_partition_keys())
        )
    if isinstance(definition, dg.DynamicPartitionsDefinition):
        if definition.name is None:
            raise UnsupportedDefinitionError(
                "a DynamicPartitionsDefinition needs a name (function-based ones are not supported)"
            )
        return partitions.PartitionsDefinition(
            dynamic=partitions.DynamicPartitions(name=definition.name)
        )
    if isinstance(definition, dg.MultiPartitionsDefinition):
        return partitions.PartitionsDefinition(
            multi=partitions.MultiPartitions(
                dimensions=[
                    partitions.Dimension(
                        name=dimension.name,
                        partitions=partitions_definition(dimension.partitions_def),
                    )
                    for dimension in definition.partitions_defs
                ]
            )
        )
    raise UnsupportedDefinitionError(f"unsupported partitions definition: {definition!r}")


def partition_mapping(mapping: dg.PartitionMapping) -> partitions.PartitionMapping:
    """The API's form of a Dagster partition mapping."""
    if isinstance(mapping, dg.TimeWindowPartitionMapping):
        return partitions.PartitionMapping(
            time_window=partitions.TimeWindowMapping(
                start_offset=mapping.start_offset,
                end_offset=mapping.end_offset,
                allow_nonexistent_upstream_partitions=mapping.allow_nonexistent_upstream_partitions,
            )
        )
    if isinstance(mapping, dg.IdentityPartitionMapping):
        return partitions.PartitionMapping(identity=partitions.IdentityMapping())
    if isinstance(mapping, dg.AllPartitionMapping):
        return partitions.PartitionMapping(all=partitions.AllMapping())
    if isinstance(mapping, dg.LastPartitionMapping):
        return partitions.PartitionMapping(last=partitions.LastMapping())
    if isinstance(mapping, dg.StaticPartitionMapping):
        table: Mapping[str, str | Iterable[str]] = (
            mapping.downstream_partition_keys_by_upstream_partition_key
        )
        return partitions.PartitionMapping(
            static=partitions.StaticMapping(
                entries=[
                    partitions.StaticMappingEntry(
                        upstream_partition_key=upstream,
                        downstream_partition_keys=[downstream]
                        if isinstance(downstream, str)
                        else list(downstream),
                    )
                    for upstream, downstream in table.items()
                ]
            )
        )
    if isinstance(mapping, dg.SpecificPartitionsPartitionMapping):
        return partitions.PartitionMapping(
            specific=partitions.SpecificMapping(partition_keys=list(mapping.partition_keys))
        )
    if isinstance(mapping, dg.MultiToSingleDimensionPartitionMapping):
        single = partitions.MultiToSingleDimensionMapping()
        if mapping.partition_dimension_name is not None:
            single.dimension_name = mapping.partition_dimension_name
        return partitions.PartitionMapping(multi_to_single_dimension=single)
    if isinstance(mapping, dg.MultiPartitionMapping):
        by_upstream = mapping.downstream_mappings_by_upstream_dimension
        return partitions.PartitionMapping(
            multi=partitions.MultiMapping(
                dimension_mappings=[
                    partitions.DimensionMapping(
                        upstream_dimension=upstream,
                        downstream_dimension=dimension.dimension_name,
                        mapping=partition_mapping(dimension.partition_mapping),
                    )
                    for upstream, dimension in by_upstream.items()
                ]
            )
        )
    raise UnsupportedDefinitionError(f"unsupported partition mapping: {mapping!r}")


# Dagster's condition classes without fields, by class name, and the API's kind for each.
_PLAIN_LEAVES = {
    "MissingAutomationCondition": "missing",
    "NewlyUpdatedCondition": "newly_updated",
    "NewlyRequestedCondition": "newly_requested",
    "RunInProgressAutomationCondition": "run_in_progress",
    "BackfillInProgressAutomationCondition": "backfill_in_progress",
    "ExecutionFailedAutomationCondition": "execution_failed",
    "InitialEvaluationCondition": "initial_evaluation",
    "CodeVersionChangedCondition": "code_version_changed",
    "WillBeRequestedCondition": "will_be_requested",
    "LatestRunExecutedWithRootTargetCondition": "executed_with_root_target",
    "DataVersionChangedCondition": "data_version_changed",
}
# Labels Dagster's constructors give their composite conditions, and the API's kind for each.
_LABELLED = {
    "eager": "eager",
    "on_missing": "on_missing",
    "in_progress": "in_progress",
    "newly_missing": "newly_missing",
    "any_deps_updated": "any_deps_updated",
    "any_deps_missing": "any_deps_missing",
    "any_deps_in_progress": "any_deps_in_progress",
}


def _selection_keys(selection: Any) -> list[str] | None:
    """The keys of `AssetSelection.assets(...)`; None when there is no selection."""
    if selection is None:
        return None
    if type(selection).__name__ != "KeysAssetSelection":
        raise UnsupportedDefinitionError(
            f"only AssetSelection.assets(...) can narrow dependencies, not {selection!r}"
        )
    return [key.to_user_string() for key in selection.selected_keys]


def _set_selections(body: Any, condition: Any) -> None:
    for name, selection in (
        ("allow", condition.allow_selection),
        ("ignore", condition.ignore_selection),
    ):
        keys = _selection_keys(selection)
        if keys is not None:
            getattr(body, name).SetInParent()
            getattr(body, name).asset_keys.extend(keys)


def _cron_of(condition: Any) -> Any:
    """The first `cron_tick_passed` below a cron preset (they all carry the same cron)."""
    if type(condition).__name__ == "CronTickPassedCondition":
        return condition
    for child in condition.children:
        found = _cron_of(child)
        if found is not None:
            return found
    return None


def automation_condition(condition: dg.AutomationCondition[Any]) -> automation.AutomationCondition:
    """The API's form of a Dagster automation condition: Dagster's presets and labelled
    composites (`eager()`, `on_cron(...)`, `any_deps_updated()`, `since_last_handled()`...)
    keep their names, the rest is sent operator by operator."""
    message = automation.AutomationCondition()
    label = condition.get_label()
    name = type(condition).__name__
    node: Any = condition  # the fields of the class `name` names
    if label in _LABELLED:
        body = getattr(message, _LABELLED[label])
        body.SetInParent()
        if name == "AnyDepsCondition":
            _set_selections(body, condition)
        return message
    if label is not None and label.startswith(("on_cron(", "all_deps_updated_since_cron(")):
        kind = label.split("(", 1)[0]
        cron = _cron_of(condition)
        getattr(message, kind).cron_schedule = cron.cron_schedule
        getattr(message, kind).cron_timezone = cron.cron_timezone
        return message
    children = list(condition.children)
    if name == "SinceCondition":
        if children[1].get_label() == "handled":
            message.since_last_handled.operand.CopyFrom(automation_condition(children[0]))
        else:
            message.since.trigger.CopyFrom(automation_condition(children[0]))
            message.since.reset.CopyFrom(automation_condition(children[1]))
    elif name in ("AndAutomationCondition", "OrAutomationCondition"):
        body = getattr(message, "and" if name.startswith("And") else "or")
        body.operands.extend(automation_condition(child) for child in children)
    elif name == "NotAutomationCondition":
        getattr(message, "not").operand.CopyFrom(automation_condition(children[0]))
    elif name == "NewlyTrueCondition":
        message.newly_true.operand.CopyFrom(automation_condition(children[0]))
    elif name in ("AnyDepsCondition", "AllDepsCondition"):
        body = message.any_deps_match if name == "AnyDepsCondition" else message.all_deps_match
        body.operand.CopyFrom(automation_condition(children[0]))
        _set_selections(body, condition)
    elif name == "InLatestTimeWindowCondition":
        message.in_latest_time_window.SetInParent()
        if node.lookback_timedelta is not None:
            message.in_latest_time_window.lookback_seconds = node.lookback_timedelta.total_seconds()
    elif name == "CronTickPassedCondition":
        message.cron_tick_passed.cron_schedule = node.cron_schedule
        message.cron_tick_passed.cron_timezone = node.cron_timezone
    elif name in _PLAIN_LEAVES:
        getattr(message, _PLAIN_LEAVES[name]).SetInParent()
    else:
        raise UnsupportedDefinitionError(f"unsupported automation condition: {condition!r}")
    return message


def assets(defs: dg.Definitions) -> list[definitions.Asset]:
    """Every asset of the definitions' asset graph, in asset-key order, upstreams included."""
    graph = defs.resolve_asset_graph()
    result = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        asset = definitions.Asset(asset_key=key.to_user_string())
        if node.partitions_def is not None:
            asset.partitions_definition.CopyFrom(partitions_definition(node.partitions_def))
        if node.code_version is not None:
            asset.code_version = node.code_version
        # `@observable_source_asset`: observed, never materialized here; FRESH to staleness.
        asset.observable_source = node.is_observable and not node.is_materializable
        if node.automation_condition is not None:
            asset.automation_condition.CopyFrom(automation_condition(node.automation_condition))
        explicit = node.partition_mappings
        for parent in sorted(node.parent_keys, key=lambda k: k.to_user_string()):
            dependency = asset.dependencies.add(upstream_asset_key=parent.to_user_string())
            if parent in explicit:
                dependency.partition_mapping.CopyFrom(partition_mapping(explicit[parent]))
        result.append(asset)
    return result


def register(
    client: Client, namespace: str, defs: dg.Definitions, *, replace_all: bool = False
) -> definitions.ApplyAssetsResponse:
    """Apply every asset of `defs` to `namespace` in one transaction."""
    return client.apply_assets(namespace, assets(defs), replace_all=replace_all)
