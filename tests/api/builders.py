"""Small builders of request messages, so tests read like the scenario they check."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb


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
