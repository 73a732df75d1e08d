"""This week's key over a real channel: refused by default, answered with accept_keys_not_yet."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import ALL_KEYS, DAILY, WEEKLY, asset, keys, timestamp, upstream_request
from .conftest import Stubs
from .errors import error_info

WEDNESDAY = timestamp("2024-01-10T12:00:00+00:00")
DAYS_SO_FAR = ["2024-01-07", "2024-01-08", "2024-01-09"]
DAYS_TO_COME = ["2024-01-10", "2024-01-11", "2024-01-12", "2024-01-13"]


def register(stubs: Stubs, namespace: str) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=[asset("daily", DAILY), asset("weekly", WEEKLY, "daily")],
        )
    )


def upstream_of_this_week(
    stubs: Stubs, namespace: str, accept: bool
) -> queries_pb.GetUpstreamPartitionsResponse:
    response: queries_pb.GetUpstreamPartitionsResponse = stubs.queries.GetUpstreamPartitions(
        upstream_request(
            namespace,
            "weekly",
            keys("2024-01-07"),
            as_of=WEDNESDAY,
            key_paging=ALL_KEYS,
            accept_keys_not_yet=accept,
        )
    )
    return response


def test_this_weeks_key_is_refused_by_default_naming_the_key(stubs: Stubs, namespace: str) -> None:
    register(stubs, namespace)
    with pytest.raises(grpc.RpcError) as raised:
        upstream_of_this_week(stubs, namespace, accept=False)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(raised.value)
    assert info.reason == "INVALID_PARTITION_KEY"
    assert info.metadata["field"] == "selection.keys.partition_keys[0]"


def test_this_weeks_key_on_request_is_marked_not_yet_and_mapped(
    stubs: Stubs, namespace: str
) -> None:
    register(stubs, namespace)
    response = upstream_of_this_week(stubs, namespace, accept=True)
    [selected] = response.selected_not_yet
    assert selected.partition_key == "2024-01-07"
    assert selected.state == pb.PARTITION_STATE_NOT_YET
    assert selected.available_time.ToDatetime(tzinfo=UTC) == datetime(2024, 1, 14, tzinfo=UTC)
    [dependency] = response.dependencies
    assert list(dependency.partitions.partition_keys) == DAYS_SO_FAR
    assert list(dependency.required_but_nonexistent.partition_keys) == DAYS_TO_COME
    assert {status.state for status in dependency.nonexistent} == {pb.PARTITION_STATE_NOT_YET}


def test_existing_keys_answer_the_same_with_the_flag_and_list_nothing_not_yet(
    stubs: Stubs, namespace: str
) -> None:
    register(stubs, namespace)
    answers = [
        stubs.queries.GetUpstreamPartitions(
            upstream_request(
                namespace,
                "weekly",
                keys("2024-01-07"),
                as_of=timestamp("2024-01-20T00:00:00+00:00"),
                key_paging=ALL_KEYS,
                accept_keys_not_yet=accept,
            )
        )
        for accept in (False, True)
    ]
    assert answers[0].dependencies == answers[1].dependencies
    assert not answers[1].selected_not_yet


def test_todays_key_inline_on_request_maps_down(stubs: Stubs) -> None:
    result = stubs.queries.ComputeDownstreamPartitions(
        queries_pb.ComputeDownstreamPartitionsRequest(
            upstream=DAILY,
            downstream=DAILY,
            selection=keys("2024-01-10"),
            as_of=WEDNESDAY,
            key_paging=ALL_KEYS,
            accept_keys_not_yet=True,
        )
    )
    assert list(result.result.partitions.partition_keys) == ["2024-01-10"]
    assert [status.partition_key for status in result.selected_not_yet] == ["2024-01-10"]


def test_a_key_that_never_will_be_a_partition_is_refused_on_request_too(stubs: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        stubs.queries.ComputeUpstreamPartitions(
            queries_pb.ComputeUpstreamPartitionsRequest(
                upstream=DAILY,
                downstream=WEEKLY,
                selection=keys("2024-01-08"),  # a Monday: not a week's key
                as_of=WEDNESDAY,
                accept_keys_not_yet=True,
            )
        )
    assert error_info(raised.value).reason == "INVALID_PARTITION_KEY"
