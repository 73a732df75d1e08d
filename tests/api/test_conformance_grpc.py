"""Every Dagster conformance case through the inline query RPCs over one real channel.

The request messages are built from the case JSON here, independently of the server's
converter, so a converter bug cannot cancel itself out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb

from .builders import definition, mapping, timestamp
from .conftest import Stubs
from .errors import error_info

CASES = [
    json.loads(line)
    for line in (Path(__file__).parent.parent / "conformance" / "cases.jsonl")
    .read_text()
    .splitlines()
]
ALL_KEYS = queries_pb.KeyPaging(include_keys=True, page_size=10_000)


def ask(stubs: Stubs, case: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "selection": pb.PartitionSelection(
            keys=pb.PartitionKeys(partition_keys=case["partition_keys"])
        ),
        "as_of": timestamp(case["as_of"]),
        "dynamic_partitions": {
            name: pb.DynamicPartitionKeys(partition_keys=keys)
            for name, keys in case["dynamic_partitions"].items()
        },
        "key_paging": ALL_KEYS,
    }
    for name, value in (
        ("upstream", definition(case["upstream"])),
        ("downstream", definition(case["downstream"])),
        ("partition_mapping", mapping(case["mapping"])),
    ):
        if value is not None:
            fields[name] = value
    try:
        result: queries_pb.UpstreamPartitions | queries_pb.DownstreamPartitions
        if case["direction"] == "upstream":
            result = stubs.queries.ComputeUpstreamPartitions(
                queries_pb.ComputeUpstreamPartitionsRequest(**fields)
            ).result
            nonexistent = list(result.required_but_nonexistent.partition_keys)
        else:
            result = stubs.queries.ComputeDownstreamPartitions(
                queries_pb.ComputeDownstreamPartitionsRequest(**fields)
            ).result
            nonexistent = []
        assert not result.next_page_token
        if result.whole_asset:
            return {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
        return {
            "partition_keys": list(result.partitions.partition_keys),
            "required_but_nonexistent": nonexistent,
        }
    except grpc.RpcError as error:
        return {"error": error_info(error).reason.lower(), "code": error.code()}


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_case_over_grpc(stubs: Stubs, case: dict[str, Any]) -> None:
    expected = dict(case["expected"])
    if expected.pop("message", None) is not None:
        # Every Dagster refusal is a bad request, never INTERNAL.
        expected["code"] = grpc.StatusCode.INVALID_ARGUMENT
    assert ask(stubs, case) == expected
