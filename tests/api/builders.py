"""Small builders of request messages, so tests read like the scenario they check."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import automation_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb


def timestamp(text: str) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(datetime.fromisoformat(text).astimezone(UTC))
    return value


def time_window(
    cron: str, start: str = "2024-01-01T00:00:00", **fields: object
) -> pb.PartitionsDefinition:
    return pb.PartitionsDefinition(
        time_window=pb.TimeWindowPartitions(cron_schedule=cron, start=start, **fields)  # type: ignore[arg-type]
    )


DAILY = time_window("0 0 * * *")
WEEKLY = time_window("0 0 * * 0")


def asset(
    key: str,
    partitions: pb.PartitionsDefinition | None = None,
    *upstream: str | tuple[str, pb.PartitionMapping],
) -> defs_pb.Asset:
    message = defs_pb.Asset(asset_key=key)
    if partitions is not None:
        message.partitions_definition.CopyFrom(partitions)
    for dependency in upstream:
        if isinstance(dependency, tuple):
            message.dependencies.add(
                upstream_asset_key=dependency[0], partition_mapping=dependency[1]
            )
        else:
            message.dependencies.add(upstream_asset_key=dependency)
    return message


# Seed scenario 1: daily sales feed a weekly summary.
SALES = (
    asset("daily_sales_data", DAILY),
    asset("weekly_sales_summary", WEEKLY, "daily_sales_data"),
)


def materialization(
    idempotency_key: str,
    asset_key: str,
    partition_key: str | None,
    at: str = "2024-02-01T00:00:00+00:00",
) -> events_pb.Event:
    body = events_pb.Materialization(
        asset_key=asset_key, run_id="run-1", data_version=f"v-{idempotency_key}", code_version="1"
    )
    if partition_key is not None:
        body.partition_key = partition_key
    return events_pb.Event(
        idempotency_key=idempotency_key, event_time=timestamp(at), materialization=body
    )


def keys(*partition_keys: str) -> pb.PartitionSelection:
    return pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=partition_keys))


# Definitions and mappings in the JSON of the conformance cases (shared/conformance/README.md),
# built here independently of the server's converter, so a converter bug cannot cancel itself out.
ALL_KEYS = queries_pb.KeyPaging(include_keys=True)


def upstream_request(
    namespace: str, asset_key: str, selection: pb.PartitionSelection, **fields: Any
) -> queries_pb.GetUpstreamPartitionsRequest:
    return queries_pb.GetUpstreamPartitionsRequest(
        namespace=namespace, asset_key=asset_key, selection=selection, **fields
    )


def downstream_request(
    namespace: str, asset_key: str, selection: pb.PartitionSelection, **fields: Any
) -> queries_pb.GetDownstreamPartitionsRequest:
    return queries_pb.GetDownstreamPartitionsRequest(
        namespace=namespace, asset_key=asset_key, selection=selection, **fields
    )


def definition(data: dict[str, Any] | None) -> pb.PartitionsDefinition | None:
    if data is None:
        return None
    kind = data["type"]
    if kind == "time_window":
        window = pb.TimeWindowPartitions(
            cron_schedule=data["cron_schedule"],
            start=data["start"],
            timezone=data["timezone"],
            fmt=data["fmt"],
            end_offset=data["end_offset"],
        )
        if data["end"] is not None:
            window.end = data["end"]
        for exclusion in data["exclusions"]:
            if exclusion[:1].isdigit() and "T" in exclusion and "-" in exclusion:
                window.exclusions.add(wall_time=exclusion)
            else:
                window.exclusions.add(cron_schedule=exclusion)
        return pb.PartitionsDefinition(time_window=window)
    if kind == "static":
        return pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=data["keys"]))
    if kind == "dynamic":
        return pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name=data["name"]))
    assert kind == "multi"
    return pb.PartitionsDefinition(
        multi=pb.MultiPartitions(
            dimensions=[
                pb.Dimension(name=d["name"], partitions=definition(d["partitions"]))
                for d in data["dimensions"]
            ]
        )
    )


def mapping(data: dict[str, Any] | None) -> pb.PartitionMapping | None:
    if data is None:
        return None
    kind = data["type"]
    if kind in ("identity", "all", "last"):
        message = pb.PartitionMapping()
        getattr(message, kind).SetInParent()
        return message
    if kind == "time_window":
        return pb.PartitionMapping(
            time_window=pb.TimeWindowMapping(
                start_offset=data["start_offset"],
                end_offset=data["end_offset"],
                allow_nonexistent_upstream_partitions=data["allow_nonexistent_upstream_partitions"],
            )
        )
    if kind == "static":
        table = data["downstream_partition_keys_by_upstream_partition_key"]
        return pb.PartitionMapping(
            static=pb.StaticMapping(
                entries=[
                    pb.StaticMappingEntry(
                        upstream_partition_key=up, downstream_partition_keys=downs
                    )
                    for up, downs in table.items()
                ]
            )
        )
    if kind == "specific":
        return pb.PartitionMapping(
            specific=pb.SpecificMapping(partition_keys=data["partition_keys"])
        )
    if kind == "multi_to_single_dimension":
        return pb.PartitionMapping(
            multi_to_single_dimension=pb.MultiToSingleDimensionMapping(
                dimension_name=data["partition_dimension_name"]
            )
        )
    assert kind == "multi"
    return pb.PartitionMapping(
        multi=pb.MultiMapping(
            dimension_mappings=[
                pb.DimensionMapping(
                    upstream_dimension=upstream_dimension,
                    downstream_dimension=inner["dimension_name"],
                    mapping=mapping(inner["partition_mapping"]),
                )
                for upstream_dimension, inner in data[
                    "downstream_mappings_by_upstream_dimension"
                ].items()
            ]
        )
    )


def condition(data: dict[str, Any]) -> automation_pb.AutomationCondition:
    """An automation condition from the JSON of the automation cases (`{"type": "and", ...}`),
    built field by field here, independently of the server's converter."""
    message = automation_pb.AutomationCondition()
    kind = data["type"]
    body = getattr(message, kind)
    body.SetInParent()
    if "operands" in data:
        body.operands.extend(condition(operand) for operand in data["operands"])
    for name in ("operand", "trigger", "reset"):
        if name in data:
            getattr(body, name).CopyFrom(condition(data[name]))
    for name in ("cron_schedule", "cron_timezone", "lookback_seconds"):
        if data.get(name) is not None:
            setattr(body, name, data[name])
    for name in ("allow", "ignore"):
        if data.get(name) is not None:
            getattr(body, name).asset_keys.extend(data[name])
    return message
