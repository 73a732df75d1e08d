"""JSON over HTTP (the Connect protocol's unary calls), with plain urllib against a live server.

Every unary method found in the descriptors is called: the known ones with a request that
checks their answer, any other (an RPC added later) with an empty request, which must reach
its servicer (an answer, or one of its refusals) rather than fail in the gateway.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2

from partition_deps.web.connect import HTTP_STATUS, generated_services

from ..threads import run_concurrently
from .conftest import NAMESPACE_A, TOKEN_A, materializations, post

NAMESPACE = f"web-connect-{uuid.uuid4().hex[:8]}"
DAILY = {
    "time_window": {
        "cron_schedule": "0 0 * * *",
        "start": "2024-01-01T00:00:00",
        "timezone": "UTC",
        "fmt": "%Y-%m-%d",
    }
}
WEEKLY = {"time_window": {**DAILY["time_window"], "cron_schedule": "0 0 * * 0"}}
DAYS = [f"2024-01-{day:02d}" for day in range(7, 14)]
AS_OF = "2024-03-01T00:00:00Z"
KEY_FIELD = "selection.keys.partition_keys[0]"
WEEK = {"keys": {"partition_keys": ["2024-01-07"]}}

Check = Callable[[dict[str, Any]], object]

# In call order: (method, request, a check of the answer).
CASES: list[tuple[str, dict[str, Any], Check]] = [
    (
        "DefinitionsService/ApplyAssets",
        {
            "namespace": NAMESPACE,
            "assets": [
                {"asset_key": "daily", "partitions_definition": DAILY},
                {
                    "asset_key": "weekly",
                    "partitions_definition": WEEKLY,
                    "dependencies": [{"upstream_asset_key": "daily"}],
                },
                {"asset_key": "regional", "partitions_definition": {"dynamic": {"name": "r"}}},
            ],
        },
        lambda answer: answer["generation"] == "1" and len(answer["assets"]) == 3,
    ),
    (
        "DefinitionsService/GetAsset",
        {"namespace": NAMESPACE, "asset_key": "weekly"},
        lambda answer: answer["asset"]["dependencies"] == [{"upstreamAssetKey": "daily"}],
    ),
    (
        "DefinitionsService/ListAssets",
        {"namespace": NAMESPACE},
        lambda answer: [a["assetKey"] for a in answer["assets"]] == ["daily", "regional", "weekly"],
    ),
    (
        "DefinitionsService/AddDynamicPartitions",
        {"namespace": NAMESPACE, "definition_name": "r", "partition_keys": ["eu", "us"]},
        lambda answer: answer["addedCount"] == 2,
    ),
    (
        "DefinitionsService/DeleteDynamicPartitions",
        {"namespace": NAMESPACE, "definition_name": "r", "partition_keys": ["us"]},
        lambda answer: answer["deletedCount"] == 1,
    ),
    (
        "DefinitionsService/ListDynamicPartitions",
        {"namespace": NAMESPACE, "definition_name": "r"},
        lambda answer: [p["partitionKey"] for p in answer["partitions"]] == ["eu"],
    ),
    (
        "EventsService/ReportEvents",
        materializations(NAMESPACE, "daily", DAYS, "2024-02-01T00:00:00Z", "m-"),
        lambda answer: answer["storedCount"] == 7,
    ),
    (
        "QueriesService/GetUpstreamPartitions",
        {"namespace": NAMESPACE, "asset_key": "weekly", "selection": WEEK, "as_of": AS_OF},
        lambda answer: (
            answer["dependencies"][0]["partitions"]["ranges"][0]
            == {
                "firstPartitionKey": "2024-01-07",
                "lastPartitionKey": "2024-01-13",
                "count": "7",
                "startTime": "2024-01-07T00:00:00Z",
                "endTime": "2024-01-14T00:00:00Z",
            }
        ),
    ),
    (
        "QueriesService/GetDownstreamPartitions",
        {
            "namespace": NAMESPACE,
            "asset_key": "daily",
            "selection": {"keys": {"partition_keys": ["2024-01-09"]}},
            "as_of": AS_OF,
            "key_paging": {"include_keys": True},
        },
        lambda answer: answer["dependents"][0]["partitions"]["partitionKeys"] == ["2024-01-07"],
    ),
    (
        "QueriesService/ComputeUpstreamPartitions",
        {"upstream": DAILY, "downstream": WEEKLY, "selection": WEEK, "as_of": AS_OF},
        lambda answer: answer["result"]["partitions"]["count"] == "7",
    ),
    (
        "QueriesService/ComputeDownstreamPartitions",
        {
            "upstream": DAILY,
            "downstream": WEEKLY,
            "selection": {"keys": {"partition_keys": ["2024-01-09"]}},
            "as_of": AS_OF,
        },
        lambda answer: answer["result"]["partitions"]["count"] == "1",
    ),
    (
        "QueriesService/ListPartitions",
        {"source": {"partitions_definition": WEEKLY}, "as_of": AS_OF, "page_size": 2},
        lambda answer: (
            answer["partitionKeys"] == ["2024-01-07", "2024-01-14"] and answer["totalSize"] == "7"
        ),
    ),
    (
        "QueriesService/GetTimeWindow",
        {
            "source": {"asset": {"namespace": NAMESPACE, "asset_key": "weekly"}},
            "partition_key": "2024-01-07",
        },
        lambda answer: (
            answer == {"startTime": "2024-01-07T00:00:00Z", "endTime": "2024-01-14T00:00:00Z"}
        ),
    ),
    (
        "QueriesService/GetPartitionKeyForTimestamp",
        {"source": {"partitions_definition": WEEKLY}, "timestamp": "2024-01-10T12:00:00Z"},
        lambda answer: answer == {"partitionKey": "2024-01-07"},
    ),
    (
        "StalenessService/GetStaleness",
        {"namespace": NAMESPACE, "asset_keys": ["weekly"], "as_of": AS_OF},
        lambda answer: answer["assets"][0]["missingCount"] == "7",
    ),
    (
        "StalenessService/PlanRuns",
        {"namespace": NAMESPACE, "asset_keys": ["weekly"], "as_of": AS_OF, "catch_up": True},
        lambda answer: (
            answer["runs"][0]["range"]["firstPartitionKey"] == "2024-01-07"
            and answer["runs"][0]["ready"]
        ),
    ),
    ("DiagnosticsService/Ping", {}, lambda answer: answer == {}),
    (
        "DefinitionsService/ListNamespaces",
        {"page_size": 10_000},
        lambda answer: (
            {"name": NAMESPACE, "generation": "3", "assetCount": "3"} in answer["namespaces"]
        ),
    ),
    (
        "DefinitionsService/DeleteAsset",
        {"namespace": NAMESPACE, "asset_key": "regional"},
        lambda answer: answer["generation"] == "4",
    ),
]


def _unary_methods() -> set[str]:
    return {
        f"{service.full_name}/{method.name}"
        for service in generated_services()
        for method in service.methods
        if not (method.client_streaming or method.server_streaming)
    }


def _url(base_url: str, method: str) -> str:
    return f"{base_url}/partitiondeps.v1.{method}"


def _error_info(body: dict[str, Any]) -> dict[str, Any]:
    [info] = [d for d in body["details"] if d["type"] == "google.rpc.ErrorInfo"]
    decoded = error_details_pb2.ErrorInfo.FromString(base64.b64decode(info["value"] + "=="))
    assert info["debug"]["reason"] == decoded.reason
    return dict(info["debug"])


def test_every_unary_rpc_answers_json(base_url: str) -> None:
    for method, request, check in CASES:
        reply = post(_url(base_url, method), request)
        assert (reply.status, reply.content_type) == (200, "application/json"), (method, reply)
        assert check(reply.body), (method, reply.body)
    # Methods without a case (added after this test) reach their servicer all the same.
    for method in sorted(_unary_methods() - {f"partitiondeps.v1.{m}" for m, _, _ in CASES}):
        reply = post(f"{base_url}/{method}", {})
        assert reply.content_type == "application/json", (method, reply)
        if reply.status != 200:
            assert reply.body["code"] not in ("unimplemented", "internal", "unknown"), reply


def test_a_bad_request_is_invalid_argument_naming_reason_and_field(base_url: str) -> None:
    reply = post(
        _url(base_url, "QueriesService/ComputeUpstreamPartitions"),
        {
            "upstream": DAILY,
            "downstream": WEEKLY,
            "selection": {"keys": {"partition_keys": ["2024-01-08"]}},
        },
    )
    assert (reply.status, reply.body["code"]) == (400, "invalid_argument")
    info = _error_info(reply.body)
    assert (info["reason"], info["metadata"]["field"]) == ("INVALID_PARTITION_KEY", KEY_FIELD)
    [violations] = [d for d in reply.body["details"] if d["type"] == "google.rpc.BadRequest"]
    assert violations["debug"]["fieldViolations"][0]["field"] == KEY_FIELD


def test_statuses_follow_connect(base_url: str) -> None:
    missing = post(
        _url(base_url, "DefinitionsService/GetAsset"),
        {"namespace": "web-nowhere", "asset_key": "x"},
    )
    assert (missing.status, missing.body["code"]) == (404, "not_found")
    assert _error_info(missing.body)["reason"] == "NAMESPACE_NOT_FOUND"
    assert HTTP_STATUS[grpc.StatusCode.FAILED_PRECONDITION] == 400


def test_a_body_that_is_not_the_request_message_is_malformed(base_url: str) -> None:
    for body in (b"{not json", b'{"namespac": "x"}', b'{"page_size": "many"}'):
        reply = post(_url(base_url, "DefinitionsService/ListAssets"), body)
        assert (reply.status, reply.body["code"]) == (400, "invalid_argument"), body
        assert _error_info(reply.body)["reason"] == "MALFORMED_REQUEST"


def test_binary_bodies_and_unknown_paths(base_url: str) -> None:
    ping = post(_url(base_url, "DiagnosticsService/Ping"), b"", content_type="application/proto")
    assert (ping.status, ping.content_type, ping.body) == (200, "application/proto", b"")
    unknown = post(_url(base_url, "DiagnosticsService/Nothing"), {})
    assert (unknown.status, unknown.body["code"]) == (404, "unimplemented")
    streaming = post(_url(base_url, "EventsService/StreamEvents"), {})
    assert (streaming.status, streaming.body["code"]) == (404, "unimplemented")
    text = post(_url(base_url, "DiagnosticsService/Ping"), b"{}", content_type="text/plain")
    assert text.status == 415


def test_a_deadline_header_bounds_the_call(base_url: str) -> None:
    reply = post(
        _url(base_url, "DiagnosticsService/Ping"), {}, headers={"Connect-Timeout-Ms": "soon"}
    )
    assert _error_info(reply.body)["reason"] == "MALFORMED_REQUEST"
    reply = post(
        _url(base_url, "DiagnosticsService/Ping"), {}, headers={"Connect-Timeout-Ms": "60000"}
    )
    assert reply.status == 200


def test_bearer_tokens_guard_http_as_they_guard_grpc(base_url: str) -> None:
    url = _url(base_url, "DefinitionsService/ListAssets")
    for token in (None, "not-a-token"):
        refused = post(url, {"namespace": NAMESPACE_A}, token=token)
        assert (refused.status, refused.body["code"]) == (401, "unauthenticated")
        assert _error_info(refused.body)["reason"] == "UNAUTHENTICATED"
    other = post(url, {"namespace": "web-b"}, token=TOKEN_A)
    assert (other.status, other.body["code"]) == (403, "permission_denied")
    assert _error_info(other.body) == {
        "reason": "NAMESPACE_NOT_GRANTED",
        "domain": "partitiondeps.v1",
        "metadata": {"field": "namespace"},
    }
    granted = post(url, {"namespace": NAMESPACE_A}, token=TOKEN_A)
    assert granted.status == 404  # granted, and the namespace does not exist
    assert _error_info(granted.body)["reason"] == "NAMESPACE_NOT_FOUND"

    # Namespaces are listed as far as the token grants them.
    apply_url = _url(base_url, "DefinitionsService/ApplyAssets")
    for namespace in (NAMESPACE_A, "web-b"):
        applied = post(apply_url, {"namespace": namespace, "assets": [{"asset_key": "x"}]})
        assert applied.status == 200, applied.body
    list_url = _url(base_url, "DefinitionsService/ListNamespaces")
    mine = post(list_url, {}, token=TOKEN_A)
    assert [n["name"] for n in mine.body["namespaces"]] == [NAMESPACE_A]
    every = post(list_url, {"page_size": 10_000})
    assert {NAMESPACE_A, "web-b"} <= {n["name"] for n in every.body["namespaces"]}


def test_concurrent_calls_each_get_their_own_answer(base_url: str) -> None:
    """The listener serves each connection on a thread; answers never cross."""

    def worker(index: int) -> Callable[[], None]:
        def run() -> None:
            for call in range(10):
                namespace = f"web-concurrent-{index}-{call}"
                reply = post(
                    _url(base_url, "DefinitionsService/GetAsset"),
                    {"namespace": namespace, "asset_key": "x"},
                )
                assert reply.status == 404
                assert f"{namespace!r}" in reply.body["message"]

        return run

    run_concurrently([worker(index) for index in range(8)])
