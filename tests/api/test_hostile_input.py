"""Input built to hurt (definitions, huge keys): refused with INVALID_ARGUMENT naming the
field, after bounded work, with an error the client can read; never INTERNAL."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import grpc
import pytest
from google.protobuf.message import Message

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import StalenessServiceStub

from .builders import DAILY, asset, keys, time_window, timestamp
from .conftest import Stubs
from .errors import error_info, field_violations

AS_OF = timestamp("2024-03-01T00:00:00+00:00")
# strptime cannot read a format that gives one directive twice (a regex error, not a
# ValueError): every key of such a format is unreadable.
REPEATED_DIRECTIVES = ["%Y-%Y", "%m-%m-%Y", "%H%H", "%Y-%m-%d %d"]

Call = Callable[[Stubs, str, pb.PartitionsDefinition], Message]


def _apply(stubs: Stubs, namespace: str, definition: pb.PartitionsDefinition) -> Message:
    return stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("bad", definition)])
    )


def _upstream(stubs: Stubs, namespace: str, definition: pb.PartitionsDefinition) -> Message:
    return stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=DAILY, downstream=definition, selection=keys("2024-2024"), as_of=AS_OF
        )
    )


def _downstream(stubs: Stubs, namespace: str, definition: pb.PartitionsDefinition) -> Message:
    return stubs.queries.ComputeDownstreamPartitions(
        queries_pb.ComputeDownstreamPartitionsRequest(
            upstream=definition, downstream=DAILY, selection=keys("2024-2024"), as_of=AS_OF
        )
    )


def _listing(stubs: Stubs, namespace: str, definition: pb.PartitionsDefinition) -> Message:
    return stubs.queries.ListPartitions(
        queries_pb.ListPartitionsRequest(
            source=queries_pb.DefinitionSource(partitions_definition=definition), as_of=AS_OF
        )
    )


def _time_window(stubs: Stubs, namespace: str, definition: pb.PartitionsDefinition) -> Message:
    return stubs.queries.GetTimeWindow(
        queries_pb.GetTimeWindowRequest(
            source=queries_pb.DefinitionSource(partitions_definition=definition),
            partition_key="2024-2024",
            as_of=AS_OF,
        )
    )


CALLS: dict[str, tuple[Call, str]] = {
    "ApplyAssets": (_apply, "assets[0].partitions_definition.time_window.fmt"),
    "ComputeUpstreamPartitions": (_upstream, "downstream.time_window.fmt"),
    "ComputeDownstreamPartitions": (_downstream, "upstream.time_window.fmt"),
    "ListPartitions": (_listing, "source.partitions_definition.time_window.fmt"),
    "GetTimeWindow": (_time_window, "source.partitions_definition.time_window.fmt"),
}


@pytest.mark.parametrize("fmt", REPEATED_DIRECTIVES)
@pytest.mark.parametrize("rpc", sorted(CALLS))
def test_a_format_with_a_repeated_directive_is_an_invalid_argument_naming_fmt(
    stubs: Stubs, namespace: str, rpc: str, fmt: str
) -> None:
    call, field = CALLS[rpc]
    with pytest.raises(grpc.RpcError) as raised:
        call(stubs, namespace, time_window("0 0 * * *", fmt=fmt))
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_DEFINITION"
    assert field_violations(error) == [field]


def test_exclusions_that_remove_every_tick_are_refused_after_bounded_work(stubs: Stubs) -> None:
    # Every minute excluded: the walk for a first window used to tabulate each year's
    # 525,600 exclusion ticks up to 2300 (about a minute of CPU and 3.8 GB kept).
    definition = time_window(
        "0 * * * *",
        end="2024-01-10T00:00:00",
        fmt="%Y-%m-%d-%H:%M",
        exclusions=[pb.Exclusion(cron_schedule="* * * * *")],
    )
    with pytest.raises(grpc.RpcError) as raised:
        _listing(stubs, "", definition)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_DEFINITION"
    assert field_violations(error) == ["source.partitions_definition.time_window.exclusions"]


def test_an_error_about_a_huge_key_reaches_the_client_as_itself(stubs: Stubs) -> None:
    # The key was quoted whole, three times over, in the status trailers: past gRPC's 8 KiB
    # metadata limit the client saw RESOURCE_EXHAUSTED instead of the error.
    huge = "2024-01-01" + "x" * 5_000
    with pytest.raises(grpc.RpcError) as raised:
        stubs.queries.ComputeUpstreamPartitions(
            queries_pb.ComputeUpstreamPartitionsRequest(
                upstream=DAILY, downstream=DAILY, selection=keys(huge), as_of=AS_OF
            )
        )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_PARTITION_KEY"
    details: str = error.details() or ""
    assert "2024-01-01xxx" in details
    assert len(details) < 1_000


def _unsigned(values: list[object]) -> str:
    """A token as the service once wrote them: base64 JSON, with nothing to check it by."""
    raw = json.dumps(values).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "token", [_unsigned(["a", True]), _unsigned([True]), _unsigned([10**25]), "x.y", "%%%"]
)
def test_a_forged_page_token_is_an_invalid_argument(
    stubs: Stubs, namespace: str, token: str
) -> None:
    stubs.definitions.AddDynamicPartitions(
        defs_pb.AddDynamicPartitionsRequest(
            namespace=namespace, definition_name="customers", partition_keys=["a", "b"]
        )
    )
    with pytest.raises(grpc.RpcError) as raised:
        stubs.definitions.ListDynamicPartitions(
            defs_pb.ListDynamicPartitionsRequest(
                namespace=namespace, definition_name="customers", page_token=token
            )
        )
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_PAGE_TOKEN"
    assert field_violations(error) == ["page_token"]


def test_a_page_token_continues_only_the_request_it_was_given_for(stubs: Stubs) -> None:
    def listing(as_of: str, page_token: str = "") -> queries_pb.ListPartitionsResponse:
        return stubs.queries.ListPartitions(
            queries_pb.ListPartitionsRequest(
                source=queries_pb.DefinitionSource(partitions_definition=DAILY),
                as_of=timestamp(as_of),
                page_size=10,
                page_token=page_token,
            )
        )

    first = listing("2024-03-01T00:00:00+00:00")
    second = listing("2024-03-01T00:00:00+00:00", first.next_page_token)
    assert second.partition_keys[0] == "2024-01-11"
    with pytest.raises(grpc.RpcError) as raised:
        listing("2024-04-01T00:00:00+00:00", first.next_page_token)
    error = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert error_info(error).reason == "INVALID_PAGE_TOKEN"


def test_a_staleness_page_token_is_signed_and_bound_to_its_request(
    stubs: Stubs, namespace: str
) -> None:
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset("daily", DAILY), asset("other", DAILY)]
        )
    )
    staleness = StalenessServiceStub(stubs.channel)

    def page(asset_key: str, token: str) -> stale_pb.GetStalenessResponse:
        return staleness.GetStaleness(
            stale_pb.GetStalenessRequest(
                namespace=namespace,
                asset_keys=[asset_key],
                as_of=AS_OF,
                page_size=5,
                page_token=token,
            )
        )

    first = page("daily", "")
    assert page("daily", first.next_page_token).partitions
    # An offset past any integer the server takes (it raised OverflowError: INTERNAL), and
    # a real token given to another question.
    for token in (_unsigned([0, 10**25, 1, 0]), first.next_page_token):
        with pytest.raises(grpc.RpcError) as raised:
            page("other", token)
        error = raised.value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
        assert error_info(error).reason == "INVALID_PAGE_TOKEN"


def test_staleness_of_an_hourly_asset_far_in_the_future_is_refused_before_any_work(
    stubs: Stubs, namespace: str
) -> None:
    # 2.4 million partitions at 2299: GetStaleness took 29 s and 2.3 GB, PlanRuns 36 s.
    hourly = time_window("0 * * * *", fmt="%Y-%m-%d-%H:%M")
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(namespace=namespace, assets=[asset("hourly", hourly)])
    )
    staleness = StalenessServiceStub(stubs.channel)
    far = timestamp("2299-12-31T00:00:00+00:00")
    calls: list[Callable[[], object]] = [
        lambda: staleness.GetStaleness(
            stale_pb.GetStalenessRequest(namespace=namespace, as_of=far)
        ),
        lambda: staleness.PlanRuns(
            stale_pb.PlanRunsRequest(namespace=namespace, as_of=far, catch_up=True)
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as raised:
            call()
        error = raised.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
        assert error_info(error).reason == "SELECTION_TOO_LARGE"
    near = stale_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF)
    assert staleness.GetStaleness(near).assets[0].missing_count == 24 * 60


def test_the_size_guard_counts_partitions_up_to_as_of_not_whole_years(
    stubs: Stubs, namespace: str
) -> None:
    # 40 hourly assets of 60 days are 57,600 partitions; counted by whole years (three per
    # asset) they were 1.05 million, and a 1,000-asset namespace's answer was refused.
    hourly = time_window("0 * * * *", fmt="%Y-%m-%d-%H:%M")
    stubs.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace, assets=[asset(f"hourly-{n}", hourly) for n in range(40)]
        )
    )
    answer = StalenessServiceStub(stubs.channel).GetStaleness(
        stale_pb.GetStalenessRequest(namespace=namespace, as_of=AS_OF, page_size=1)
    )
    assert sum(summary.missing_count for summary in answer.assets) == 40 * 24 * 60
