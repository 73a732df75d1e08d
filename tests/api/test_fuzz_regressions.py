"""Requests the fuzzer found answered INTERNAL (or hanging), each now a bad request."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api import limits
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import DAILY, WEEKLY, asset, keys, time_window, timestamp
from .conftest import Stubs
from .errors import error_info

AS_OF = timestamp("2026-01-01T00:00:00+00:00")


def _window_of(stubs: Stubs, key: str) -> queries_pb.GetTimeWindowResponse:
    return stubs.queries.GetTimeWindow(
        queries_pb.GetTimeWindowRequest(
            source=queries_pb.DefinitionSource(partitions_definition=DAILY), partition_key=key
        )
    )


def _upstream(stubs: Stubs, **fields: object) -> queries_pb.ComputeUpstreamPartitionsResponse:
    request = queries_pb.ComputeUpstreamPartitionsRequest(
        upstream=DAILY, downstream=WEEKLY, selection=keys("2024-01-07"), as_of=AS_OF
    )
    for name, value in fields.items():
        getattr(request, name).CopyFrom(value)
    return stubs.queries.ComputeUpstreamPartitions(request)


def _refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        call()  # type: ignore[operator]
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    return raised.value


@pytest.mark.parametrize("seconds", [-(2**63), 2**63 - 1, 253_402_300_800, 10_413_792_000])
def test_a_timestamp_outside_the_calendar_is_invalid(stubs: Stubs, seconds: int) -> None:
    # Was OverflowError (INTERNAL) beyond year 9999, wrong answers before 1900.
    error = _refused(lambda: _upstream(stubs, as_of=Timestamp(seconds=seconds)))
    assert error_info(error).metadata["field"] == "as_of"
    assert "1900-2299" in (error.details() or "")


@pytest.mark.parametrize("key", ["2301-01-01", "9999-12-31"])
def test_a_key_beyond_the_calendar_is_invalid(stubs: Stubs, key: str) -> None:
    # Was IndexError in the domain's tick table (INTERNAL).
    error = _refused(lambda: _window_of(stubs, key))
    assert error_info(error).reason == "OUTSIDE_CALENDAR_RANGE"


def test_a_huge_mapping_offset_is_invalid_not_a_hang(stubs: Stubs) -> None:
    # An offset of 2**31 - 1 kept a worker busy for minutes; 10**6 was IndexError.
    mapping = pb.PartitionMapping(
        time_window=pb.TimeWindowMapping(start_offset=-(2**31), end_offset=2**31 - 1)
    )
    error = _refused(lambda: _upstream(stubs, partition_mapping=mapping))
    assert error_info(error).reason == "OFFSET_TOO_LARGE"
    assert str(limits.MAX_OFFSET) in (error.details() or "")


def test_a_start_outside_the_calendar_is_invalid(stubs: Stubs) -> None:
    ancient = time_window("0 0 * * *", "0001-01-01T00:00:00")
    _refused(lambda: _upstream(stubs, upstream=ancient))


def _event(idempotency_key: str, asset_key: str, partition_key: str) -> events_pb.Event:
    return events_pb.Event(
        idempotency_key=idempotency_key,
        event_time=timestamp("2024-02-01T00:00:00+00:00"),
        materialization=events_pb.Materialization(
            asset_key=asset_key, partition_key=partition_key, run_id="r\x00"
        ),
    )


def test_nul_characters_postgres_cannot_store_are_invalid(stubs: Stubs, namespace: str) -> None:
    # Were CharacterNotInRepertoire / UntranslatableCharacter / DataError (INTERNAL).
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("daily", DAILY)])
    )
    calls = [
        lambda: stubs.events.ReportEvents(
            events_pb.ReportEventsRequest(
                namespace=namespace, events=[_event("e\x00", "daily", "2024-01-01")]
            )
        ),
        lambda: stubs.definitions.AddDynamicPartitions(
            defs_pb.AddDynamicPartitionsRequest(
                namespace=namespace, definition_name="d", partition_keys=["\x00"]
            )
        ),
        lambda: stubs.definitions.ApplyAssets(
            defs_pb.ApplyAssetsRequest(
                namespace=namespace,
                assets=[
                    asset(
                        "dyn", pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="x\x00"))
                    )
                ],
            )
        ),
    ]
    for call in calls:
        _refused(call)
