"""Register Dagster definitions with partition-deps (needs the `dagster` extra).

    import dagster as dg
    from partition_deps_client import Client
    from partition_deps_client.dagster import register

    defs = dg.Definitions(assets=[daily_sales_data, weekly_sales_summary])
    with Client("127.0.0.1:50051") as pd:
        register(pd, "analytics", defs)

Each asset of the definitions' asset graph becomes an `Asset`: its key
(`AssetKey.to_user_string()`, so `a/b` for `AssetKey(["a", "b"])`), its partitions definition,
its code version, whether it is an observable source (`@observable_source_asset`), and one
dependency per parent. Only mappings the code states explicitly are sent; the others stay unset
so the service infers Dagster's default, exactly as Dagster does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from partition_deps_client.client import Client
from partition_deps_client.pb import definitions, partitions


class UnsupportedDefinitionError(ValueError):
    """A Dagster partitions definition or mapping the API cannot express."""


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
