"""Shared state of the API layer under concurrent calls: the response memo, the per-snapshot memo
behind stored queries, and the metrics interceptor's tables.

Every worker checks that each answer it gets is one a single-threaded run could give: the value
of the key it asked for, never an answer older than a change that finished before it asked, and
the structure's bounds hold at every instant an observer looks. See tests/threads.py.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.metrics import Metrics, MetricsInterceptor
from partition_deps.api.paging import PageTokens
from partition_deps.api.queries_servicer import QueriesServicer
from partition_deps.api.response_memo import ResponseMemo, as_of_field
from partition_deps.server import Server

from ..threads import run_concurrently
from .builders import DAILY, WEEKLY, asset, downstream_request, keys, timestamp, upstream_request
from .conftest import Stubs

# Servicers built here sign page tokens with a key of their own.
TOKENS = PageTokens(lambda: b"a test key")

WORKERS = 16
T0 = datetime(2024, 1, 1, tzinfo=UTC)

# -- the response memo, on its own ---------------------------------------------------------------


def _body(key: int, valid_from: int, valid_until: int, length: int) -> bytes:
    text = f"{key}:{valid_from}:{valid_until};".encode()
    return text + b"x" * max(0, length - len(text))


def _decoded(body: bytes) -> tuple[int, int, int]:
    key, valid_from, valid_until = body.split(b";", 1)[0].split(b":")
    return int(key), int(valid_from), int(valid_until)


@pytest.mark.parametrize(
    ("capacity", "max_bytes"),
    [(40, 48 * 64), (100_000, 48 * 64)],  # bound by entries, then by bytes (48 per answer)
    ids=["entries", "bytes"],
)
def test_the_response_memo_answers_only_valid_entries_of_the_key_within_its_bounds(
    capacity: int, max_bytes: int
) -> None:
    memo = ResponseMemo(capacity, max_bytes=max_bytes)
    keys_count, steps = 400, 6000
    counts_lock = threading.Lock()
    counts = {"puts": 0, "hits": 0}
    done = threading.Event()
    bounds_seen: list[tuple[int, int]] = []

    def worker(seed: int) -> Callable[[], None]:
        def work() -> None:
            puts = hits = 0
            for step in range(steps):
                number = (seed * 7919 + step * 104729) % keys_count
                now = (seed + step) % 50
                as_of = T0 + timedelta(seconds=now)
                if number % 2:  # an explicit as_of: kept for the whole generation
                    key: Any = ("explicit", number)
                    if step % 3 == 0:
                        memo.put(key, _body(number, 0, 0, 5 + step % 45), as_of, True, now, None)
                        puts += 1
                    else:
                        found = memo.get(key, None, 0)
                        if found is not None:
                            hits += 1
                            assert _decoded(found)[0] == number, (key, found)
                else:  # at the server's clock: valid from `now` until `until`
                    key = ("clock", number)
                    if step % 3 == 0:
                        until = now + 1 + step % 7
                        answer = as_of_field(as_of) + _body(number, now, until, step % 30)
                        memo.put(key, answer, as_of, False, now, until)
                        puts += 1
                    else:
                        found = memo.get(key, as_of, now)
                        if found is not None:
                            hits += 1
                            head = as_of_field(as_of)
                            assert found.startswith(head), (key, found)
                            found_key, valid_from, valid_until = _decoded(found[len(head) :])
                            assert found_key == number, (key, found)
                            assert valid_from <= now < valid_until, (key, now, found)
            with counts_lock:
                counts["puts"] += puts
                counts["hits"] += hits

        return work

    def observer() -> None:
        while not done.is_set():
            entries, size = len(memo), memo.size_bytes
            if entries > capacity or size > max_bytes:
                bounds_seen.append((entries, size))

    observers = 4
    workers = [worker(seed) for seed in range(WORKERS - observers)]
    remaining = [len(workers)]
    remaining_lock = threading.Lock()

    def counted(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                work()
            finally:
                with remaining_lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

        return run

    run_concurrently([*(counted(work) for work in workers), *[observer] * observers])

    assert bounds_seen == [], f"bounds exceeded at some instant: {bounds_seen[:5]}"
    assert len(memo) <= capacity
    assert memo.size_bytes <= max_bytes
    assert memo.misses == counts["puts"]
    assert memo.hits == counts["hits"]
    assert counts["hits"] > 0


# -- stored queries: response memo, snapshot memo and definitions cache together -----------------

# Odd generations carry graph A, even ones graph B: an answer says which graph it came from.
GRAPH_A = [asset("daily", DAILY), asset("weekly", WEEKLY, "daily")]
GRAPH_B = [
    asset("daily", DAILY),
    asset(
        "weekly",
        WEEKLY,
        ("daily", pb.PartitionMapping(time_window=pb.TimeWindowMapping(start_offset=-1))),
    ),
]
CLOCK = datetime(2024, 1, 17, 12, tzinfo=UTC)


def _stored_requests(namespace: str) -> list[tuple[str, Message]]:
    as_of = timestamp("2024-01-16T00:00:00+00:00")
    paged = queries_pb.KeyPaging(include_keys=True, page_size=3)

    up = functools.partial(upstream_request, namespace)
    down = functools.partial(downstream_request, namespace)

    return [
        ("up", up("weekly", keys("2024-01-07"))),
        ("up", up("weekly", keys("2024-01-07"), as_of=as_of)),
        ("up", up("weekly", pb.PartitionSelection(all=True), key_paging=paged)),
        ("down", down("daily", keys("2024-01-05"))),
        ("down", down("daily", keys("2024-01-12"), as_of=as_of)),
        ("up", up("nope", keys("2024-01-07"))),
    ]


def _ask(servicer: QueriesServicer, kind: str, request: Message) -> tuple[int, object]:
    """(generation, the answer without its generation), or (-1, what was raised)."""
    call = servicer.get_upstream if kind == "up" else servicer.get_downstream
    try:
        answer = call(request, None)  # type: ignore[arg-type]
    except Exception as error:
        return -1, (type(error).__name__, str(error))
    response_type = (
        queries_pb.GetUpstreamPartitionsResponse
        if kind == "up"
        else queries_pb.GetDownstreamPartitionsResponse
    )
    response = response_type.FromString(answer) if isinstance(answer, bytes) else answer
    generation = int(response.generation)  # type: ignore[attr-defined]
    response.ClearField("generation")
    return generation, response.SerializeToString()


def _apply(stubs: Stubs, namespace: str, graph: list[defs_pb.Asset]) -> int:
    request = defs_pb.ApplyAssetsRequest(namespace=namespace, assets=graph)
    return int(stubs.definitions.ApplyAssets(request).generation)


def test_concurrent_stored_queries_answer_the_current_generation_or_a_newer_one(
    server: Server, stubs: Stubs, namespace: str
) -> None:
    cache = server.definitions_cache
    assert cache is not None
    requests = _stored_requests(namespace)
    fresh = QueriesServicer(cache, TOKENS, None, lambda: CLOCK)
    # What a single-threaded run answers, per graph.
    expected: dict[int, list[object]] = {}
    for generation, graph in ((1, GRAPH_A), (2, GRAPH_B)):
        assert _apply(stubs, namespace, graph) == generation
        expected[generation % 2] = []
        for kind, request in requests:
            answered, answer = _ask(fresh, kind, request)
            assert answered in (generation, -1)
            expected[generation % 2].append(answer)
    assert expected[0] != expected[1]  # the graphs do answer differently

    memo = ResponseMemo(8)  # small: entries are evicted while others are read
    memoised = QueriesServicer(cache, TOKENS, memo, lambda: CLOCK)
    applied_lock = threading.Lock()
    applied = [2]  # the newest generation whose write (and invalidation) has returned

    def writer() -> None:
        for generation in range(3, 11):
            assert _apply(stubs, namespace, GRAPH_A if generation % 2 else GRAPH_B) == generation
            with applied_lock:
                applied[0] = generation

    def reader(seed: int) -> Callable[[], None]:
        def read() -> None:
            for step in range(60):
                index = (seed + step) % len(requests)
                kind, request = requests[index]
                with applied_lock:
                    floor = applied[0]
                generation, answer = _ask(memoised, kind, request)
                if generation == -1:  # an error answer carries no generation
                    assert answer == expected[0][index] == expected[1][index]
                    continue
                assert generation >= floor, (generation, floor, request)
                assert answer == expected[generation % 2][index], (generation, request)

        return read

    run_concurrently([writer, *(reader(seed) for seed in range(WORKERS - 1))])
    assert memo.hits > 0
    assert len(memo) <= memo.capacity


# -- the metrics interceptor ------------------------------------------------------------------


class _Details(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


class _Context:
    """What the timing wrapper reads of a servicer context: no code set (OK)."""

    def code(self) -> None:
        return None


def test_the_metrics_interceptor_counts_every_call_once_under_concurrent_calls() -> None:
    metrics = Metrics()
    interceptor = MetricsInterceptor(metrics)
    methods = [f"/partitiondeps.v1.Test/Method{index}" for index in range(6)]
    # Half the methods keep one handler (reused wrapping); half get a new one per call (auth).
    kept: dict[str, grpc.RpcMethodHandler[int, int]] = {
        method: grpc.unary_unary_rpc_method_handler(lambda request, context: request)
        for method in methods[::2]
    }
    calls = 200

    def caller(seed: int) -> Callable[[], None]:
        def call() -> None:
            for step in range(calls):
                method = methods[(seed + step) % len(methods)]
                handler = kept.get(method) or grpc.unary_unary_rpc_method_handler(
                    lambda request, context: request
                )
                wrapped = interceptor.intercept_service(
                    lambda _, handler=handler: handler,  # type: ignore[misc]
                    _Details(method),
                )
                assert wrapped is not None
                assert wrapped.unary_unary is not None
                assert wrapped.unary_unary(step, _Context()) == step  # type: ignore[arg-type]

        return call

    run_concurrently([caller(seed) for seed in range(WORKERS)])
    for index, method in enumerate(methods):
        expected = sum(
            1
            for seed in range(WORKERS)
            for step in range(calls)
            if (seed + step) % len(methods) == index
        )
        service, _, name = method.lstrip("/").rpartition("/")
        labels = {"grpc_service": service, "grpc_method": name, "grpc_code": "OK"}
        registry = metrics.registry
        assert registry.get_sample_value("grpc_server_handled_total", labels) == expected
        assert registry.get_sample_value("grpc_server_handling_seconds_count", labels) == expected
