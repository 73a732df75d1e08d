"""The response memo answers byte for byte what computing afresh answers.

Two servicers over the server's own definitions cache and one controlled clock: one with the
memo, one without. Every request is asked at instants on both sides of cron ticks and of a
definition's end (the horizon), with the clock stepping back too, twice each (a miss, then a
hit), and again after the namespace changes generation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.paging import PageTokens
from partition_deps.api.queries_servicer import QueriesServicer
from partition_deps.api.response_memo import ResponseMemo, as_of_field
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.horizon import valid_until
from partition_deps.server import Server

from .builders import (
    DAILY,
    WEEKLY,
    asset,
    downstream_request,
    keys,
    time_window,
    timestamp,
    upstream_request,
)
from .conftest import Stubs

# Servicers built here sign page tokens with a key of their own.
TOKENS = PageTokens(lambda: b"a test key")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Around the weekly tick of 2024-01-14 (also a daily tick) and the end 2024-01-20 of one
# definition; then backwards (a clock stepped back) and forwards again.
INSTANTS = [
    _at(text)
    for text in (
        "2024-01-13T12:00:00",
        "2024-01-13T23:59:59",
        "2024-01-13T23:59:59.999999",
        "2024-01-14T00:00:00",
        "2024-01-14T00:00:00.5",
        "2024-01-14T00:00:01",
        "2024-01-14T00:00:02",
        "2024-01-13T23:59:58",
        "2024-01-19T23:59:59",
        "2024-01-20T00:00:00",
        "2024-01-20T00:00:01",
        "2024-01-21T00:00:00",
        "2024-01-20T23:59:59",
        "2024-02-01T00:00:00",
    )
]

ASSETS = [
    asset("daily", DAILY),
    asset("weekly", WEEKLY, "daily"),
    asset("weekly_ahead", time_window("0 0 * * 0", end_offset=1), "daily"),
    asset("daily_ended", time_window("0 0 * * *", end="2024-01-20T00:00:00"), "daily"),
    asset(
        "weekly_lagging",
        WEEKLY,
        ("daily", pb.PartitionMapping(time_window=pb.TimeWindowMapping(start_offset=-1))),
    ),
    asset("letters", pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys="ab"))),
]


def _requests(namespace: str) -> list[tuple[str, Message]]:
    up = functools.partial(upstream_request, namespace)
    down = functools.partial(downstream_request, namespace)

    every = pb.PartitionSelection(all=True)
    with_keys = queries_pb.KeyPaging(include_keys=True, page_size=3)
    return [
        ("up", up("weekly", keys("2024-01-07"))),
        ("up", up("weekly", every)),
        ("up", up("weekly", every, key_paging=with_keys)),
        ("up", up("weekly_ahead", every)),
        ("up", up("weekly_ahead", keys("2024-01-14"))),
        ("up", up("daily_ended", every, key_paging=with_keys)),
        ("up", up("weekly_lagging", every)),
        ("up", up("weekly", keys("2024-01-07"), as_of=timestamp("2024-01-15T00:00:00+00:00"))),
        ("up", up("daily", keys("2024-01-10"))),
        ("down", down("daily", keys("2024-01-10"))),
        ("down", down("daily", keys("2024-01-13"), key_paging=with_keys)),
        ("down", down("daily", keys("2024-01-13"), downstream_asset_keys=["weekly_ahead"])),
        ("down", down("daily", every)),
        ("down", down("daily", keys("2024-01-19"), as_of=timestamp("2024-01-19T12:00:00+00:00"))),
        ("up", up("letters", keys("a"))),
        ("up", up("nope", keys("a"))),
    ]


def _answer(servicer: QueriesServicer, kind: str, request: Message) -> object:
    """The serialized answer, or what was raised (type, message, field)."""
    call: Callable[..., Message | bytes] = (
        servicer.get_upstream if kind == "up" else servicer.get_downstream
    )
    try:
        answer = call(request, None)
    except Exception as error:
        return (type(error).__name__, str(error), getattr(error, "field", None))
    return answer if isinstance(answer, bytes) else answer.SerializeToString()


class Clock:
    def __init__(self) -> None:
        self.now = INSTANTS[0]

    def __call__(self) -> datetime:
        return self.now


def _apply(stubs: Stubs, namespace: str, assets: list[defs_pb.Asset]) -> int:
    request = defs_pb.ApplyAssetsRequest(namespace=namespace, assets=assets)
    return stubs.definitions.ApplyAssets(request).generation


def test_memoised_answers_are_the_fresh_bytes_across_ticks_and_generations(
    server: Server, stubs: Stubs, namespace: str
) -> None:
    cache = server.definitions_cache
    assert cache is not None
    clock = Clock()
    memo = ResponseMemo(1024)
    memoised = QueriesServicer(cache, TOKENS, memo, clock)
    fresh = QueriesServicer(cache, TOKENS, None, clock)
    requests = _requests(namespace)

    def check_all() -> dict[tuple[datetime, int], object]:
        seen: dict[tuple[datetime, int], object] = {}
        for instant in INSTANTS:
            clock.now = instant
            for index, (kind, request) in enumerate(requests):
                expected = _answer(fresh, kind, request)
                for _ in range(2):
                    assert _answer(memoised, kind, request) == expected, (instant, request)
                seen[instant, index] = expected
        return seen

    assert _apply(stubs, namespace, ASSETS) == 1
    before = check_all()
    assert memo.hits > len(INSTANTS) * len(requests) // 2
    # Across a tick the answers did change, so the comparison above was not vacuous.
    assert before[INSTANTS[2], 1] != before[INSTANTS[3], 1]
    assert before[INSTANTS[8], 5] != before[INSTANTS[10], 5]

    # A new generation: weekly now reads the previous week too; memoised answers must follow.
    changed = [
        *ASSETS[:1],
        asset(
            "weekly",
            WEEKLY,
            ("daily", pb.PartitionMapping(time_window=pb.TimeWindowMapping(start_offset=-1))),
        ),
        *ASSETS[2:],
    ]
    assert _apply(stubs, namespace, changed) == 2
    after = check_all()
    assert after[INSTANTS[-1], 0] != before[INSTANTS[-1], 0]


def test_the_as_of_field_is_written_as_protobuf_writes_it() -> None:
    edges = ["1970-01-01T00:00:00", "9999-12-31T23:59:59.999999", "0001-01-01T00:00:00"]
    for instant in [*INSTANTS, *map(_at, edges), _at("1969-07-20T20:17:40.000001")]:
        response = queries_pb.GetUpstreamPartitionsResponse(generation=3)
        response.as_of.FromDatetime(instant)
        assert response.SerializeToString().startswith(as_of_field(instant))


def test_a_full_memo_forgets_the_least_recently_used() -> None:
    memo = ResponseMemo(2)
    instant = INSTANTS[0]
    for key in ("a", "b"):
        memo.put(key, key.encode(), instant, True, 0, None)
    assert memo.get("a", instant, 0) == b"a"
    memo.put("c", b"c", instant, True, 0, None)
    assert (memo.get("a", instant, 0), memo.get("b", instant, 0)) == (b"a", None)
    assert len(memo) == 2


@pytest.mark.parametrize(
    ("cron", "end", "now", "expected"),
    [
        ("0 0 * * 0", None, "2024-01-10T00:00:00", "2024-01-14T00:00:00"),
        ("0 0 * * 0", None, "2024-01-14T00:00:00", "2024-01-14T00:00:01"),
        ("0 0 * * *", "2024-01-20T12:00:00", "2024-01-20T06:00:00", "2024-01-20T12:00:00"),
        ("0 0 * * *", "2024-01-20T12:00:00", "2024-01-20T12:00:00", "2024-01-20T12:00:01"),
        ("0 0 * * *", "2024-01-20T12:00:00", "2024-01-20T18:00:00", "2024-01-21T00:00:00"),
    ],
)
def test_an_answer_is_valid_until_the_next_tick_or_end(
    cron: str, end: str | None, now: str, expected: str
) -> None:
    definition = TimeWindowPartitions(
        cron_schedule=cron,
        start=datetime(2024, 1, 1),
        timezone="UTC",
        fmt="%Y-%m-%d",
        end=None if end is None else datetime.fromisoformat(end),
    )
    seconds = int(_at(now).timestamp())
    assert valid_until([definition, None], seconds) == int(_at(expected).timestamp())
    assert valid_until([None], seconds) is None
    assert (_at(expected) - _at(now)) <= timedelta(days=7)


def test_the_memo_is_bounded_in_bytes_too() -> None:
    memo = ResponseMemo(1000, max_bytes=6400)  # answers over 100 bytes are not kept
    instant = INSTANTS[0]
    memo.put(("big", b"request"), b"x" * 200, instant, True, 0, None)
    assert memo.get(("big", b"request"), instant, 0) is None
    for index in range(100):
        memo.put(("small", index), b"y" * 90, instant, True, 0, None)  # 95 bytes with the key
    assert memo.size_bytes <= 6400
    assert len(memo) == 6400 // 95
    assert memo.get(("small", 99), instant, 0) == b"y" * 90  # the most recent stay
    assert memo.get(("small", 0), instant, 0) is None
    memo.put(("small", 99), b"z" * 10, instant, True, 0, None)  # replacing frees the old size
    assert memo.size_bytes == (6400 // 95 - 1) * 95 + 15
