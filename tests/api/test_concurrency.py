"""Sixteen callers at once on definitions the server has never seen: every answer stays exact.

The domain compiles each time-window definition into a tick table that the server's threads
share and that grows, backwards and forwards, as questions reach new years. Here 16
callers, released together, ask the first questions on fresh definitions over a real gRPC
channel; then every question is asked again, one at a time, so that damage the concurrent
phase left in a shared table shows as a wrong answer there too.

Every expected answer is computed in this file with datetime arithmetic (the hours of a day,
the seven days of a week, the days between a start and as_of), never by the server.
"""

from __future__ import annotations

import functools
import itertools
import random
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as stale_pb
from partition_deps.api.gen.partitiondeps.v1.staleness_service_pb2_grpc import (
    StalenessServiceStub,
)
from partition_deps.store.database import PoolSettings

from .builders import ALL_KEYS, asset, keys, materialization
from .conftest import MAX_MESSAGE_BYTES, Stubs, serving

CALLERS = 16
# Questions per fresh inline definition pair: a multiple of CALLERS, so that each block of
# CALLERS questions (one per caller) is about one pair.
QUESTIONS_PER_PAIR = 6 * CALLERS
# Every window asked about has ended by then, so every needed partition exists or never will.
AS_OF = datetime(2081, 1, 2, tzinfo=UTC)
FIRST_DAY, LAST_DAY = date(1990, 1, 1), date(2080, 12, 30)
# Downstream definitions start some weeks after EARLY, so every day asked about is a partition;
# upstream ones start some weeks after MIDDLE, so that questions before it grow their tables
# backwards and questions after it forwards. Both are Sundays: weeks start there.
EARLY, MIDDLE = date(1985, 1, 6), date(2035, 1, 7)
HOUR, WEEK = timedelta(hours=1), timedelta(weeks=1)
HOUR_FMT = "%Y-%m-%d-%H:%M"
NEW_YORK = "America/New_York"
NEVER = pb.PARTITION_STATE_NEVER
FRESH, STALE, MISSING = (
    stale_pb.STALE_STATUS_FRESH,
    stale_pb.STALE_STATUS_STALE,
    stale_pb.STALE_STATUS_MISSING,
)
# Materialization times of the staleness setup, in this order: hours, then days, then weeks
# and re-materialized hours, then re-materialized days.
T0, T1, T2, T3 = (datetime(2081, 1, 1, hour, tzinfo=UTC) for hour in range(4))

_fresh_weeks = itertools.count()


def fresh_start(base: date) -> date:
    """A start (a Sunday) that no definition compiled in this process has had, so no compile
    cache holds the definition."""
    return base + timedelta(weeks=next(_fresh_weeks))


@pytest.fixture(scope="module")
def busy(database_url: str) -> Iterator[Stubs]:
    """A server with one worker per caller, so the callers' questions really run at once."""
    with serving(
        database_url,
        # A connection per worker: no caller waits on the pool's acquire timeout.
        pool=PoolSettings(min_size=1, max_size=CALLERS),
        max_message_bytes=MAX_MESSAGE_BYTES,
        workers=CALLERS,
        health_interval_seconds=0.2,
        # No memoised answers: asking again recomputes from the shared tables.
        memo_entries=0,
    ) as server:
        channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
        try:
            yield Stubs.of(channel)
        finally:
            channel.close()


# ----- windows, computed here --------------------------------------------------------------


class Window(NamedTuple):
    key: str
    start: datetime
    end: datetime


def midnight(day: date, zone: tzinfo) -> datetime:
    """The instant (in UTC, so that arithmetic on it is real elapsed time) a day starts."""
    return datetime.combine(day, time(), zone).astimezone(UTC)


def hour_key(instant: datetime, zone: tzinfo) -> str:
    local = instant.astimezone(zone)
    # The second of two equal wall hours (when DST ends) carries its UTC offset in its key.
    return local.strftime(HOUR_FMT) + (local.strftime("%z") if local.fold else "")


def hours_of(day: date, zone: tzinfo) -> list[Window]:
    """The 23, 24 or 25 hours of a local day."""
    first, stop = midnight(day, zone), midnight(day + timedelta(days=1), zone)
    starts = [first + timedelta(hours=index) for index in range((stop - first) // HOUR + 1)]
    return [Window(hour_key(start, zone), start, end) for start, end in itertools.pairwise(starts)]


def day_window(day: date, zone: tzinfo = UTC) -> Window:
    return Window(day.isoformat(), midnight(day, zone), midnight(day + timedelta(days=1), zone))


def sunday_of(day: date) -> date:
    return day - timedelta(days=(day.weekday() + 1) % 7)


def week_window(sunday: date) -> Window:
    return Window(sunday.isoformat(), midnight(sunday, UTC), midnight(sunday + WEEK, UTC))


def days_of_week(sunday: date) -> list[Window]:
    return [day_window(sunday + timedelta(days=offset)) for offset in range(7)]


@functools.cache
def dst_change_days(zone_name: str) -> tuple[date, ...]:
    """Days of 1990-2080 that are not 24 hours long in the zone."""
    zone = ZoneInfo(zone_name)
    days = (FIRST_DAY + timedelta(days=n) for n in range((LAST_DAY - FIRST_DAY).days))
    return tuple(
        day
        for day in days
        if midnight(day + timedelta(days=1), zone) - midnight(day, zone) != timedelta(days=1)
    )


def spread_days(
    rng: random.Random, count: int, first: date, last: date = LAST_DAY, zone_name: str = "UTC"
) -> list[date]:
    """`count` days from `first` (or 1990) to `last`; a quarter of them DST change days when
    the zone has some."""
    low = max(first, FIRST_DAY)
    changes = [day for day in dst_change_days(zone_name) if low <= day <= last]
    return [
        rng.choice(changes)
        if changes and index % 4 == 0
        else low + timedelta(days=rng.randrange((last - low).days + 1))
        for index in range(count)
    ]


def as_of_near(rng: random.Random) -> datetime:
    """AS_OF or up to a month later: the answers do not change, `now` inside the server does."""
    return AS_OF + rng.randrange(24 * 31) * HOUR


# ----- answers, as comparable values -------------------------------------------------------


class Run(NamedTuple):
    first_key: str
    last_key: str
    partition_count: int
    start: datetime | None
    end: datetime | None


class KeySet(NamedTuple):
    partition_count: int
    runs: tuple[Run, ...]
    keys: tuple[str, ...]


class Needed(NamedTuple):
    upstream_asset_key: str
    mapping: str | None
    whole_asset: bool
    partitions: KeySet
    required_but_nonexistent: KeySet
    # (key, state, whether available_time is set)
    nonexistent: tuple[tuple[str, int, bool], ...]
    next_page_token: str


class Users(NamedTuple):
    downstream_asset_key: str
    mapping: str | None
    whole_asset: bool
    partitions: KeySet
    next_page_token: str


class Answer(NamedTuple):
    as_of: datetime
    generation: int  # 0 for inline questions
    items: tuple[Needed | Users, ...]


class Listing(NamedTuple):
    as_of: datetime
    first_page: tuple[str, ...]
    more_pages: bool
    total_size: int
    runs: tuple[Run, ...]


class Cause(NamedTuple):
    # The cause's message is prose for people; every fact in it is in these fields.
    kind: int
    upstream_asset_key: str
    upstream_partition_key: str | None
    upstream_time: datetime | None
    path: tuple[tuple[str, str | None], ...]


class Status(NamedTuple):
    asset_key: str
    partition_key: str | None
    status: int
    causes: tuple[Cause, ...]


class Summary(NamedTuple):
    asset_key: str
    fresh: int
    stale: int
    missing: int
    stale_runs: tuple[Run, ...]
    missing_runs: tuple[Run, ...]


class Staleness(NamedTuple):
    as_of: datetime
    generation: int
    assets: tuple[Summary, ...]
    partitions: tuple[Status, ...]
    next_page_token: str


def instant(message: Timestamp) -> datetime:
    return message.ToDatetime(tzinfo=UTC)


def run_of(message: pb.PartitionRange) -> Run:
    return Run(
        message.first_partition_key,
        message.last_partition_key,
        message.count,
        instant(message.start_time) if message.HasField("start_time") else None,
        instant(message.end_time) if message.HasField("end_time") else None,
    )


def key_set_of(message: pb.PartitionSet) -> KeySet:
    return KeySet(message.count, tuple(map(run_of, message.ranges)), tuple(message.partition_keys))


def mapping_of(message: pb.PartitionMapping) -> str | None:
    return message.WhichOneof("kind")


def needed_of(message: queries_pb.UpstreamPartitions) -> Needed:
    return Needed(
        message.upstream_asset_key,
        mapping_of(message.partition_mapping),
        message.whole_asset,
        key_set_of(message.partitions),
        key_set_of(message.required_but_nonexistent),
        tuple(
            (status.partition_key, status.state, status.HasField("available_time"))
            for status in message.nonexistent
        ),
        message.next_page_token,
    )


def users_of(message: queries_pb.DownstreamPartitions) -> Users:
    return Users(
        message.downstream_asset_key,
        mapping_of(message.partition_mapping),
        message.whole_asset,
        key_set_of(message.partitions),
        message.next_page_token,
    )


def staleness_of(message: stale_pb.GetStalenessResponse) -> Staleness:
    return Staleness(
        instant(message.as_of),
        message.generation,
        tuple(
            Summary(
                summary.asset_key,
                summary.fresh_count,
                summary.stale_count,
                summary.missing_count,
                tuple(map(run_of, summary.stale_ranges)),
                tuple(map(run_of, summary.missing_ranges)),
            )
            for summary in message.assets
        ),
        tuple(
            Status(
                partition.asset_key,
                partition.partition_key if partition.HasField("partition_key") else None,
                partition.status,
                tuple(
                    Cause(
                        cause.kind,
                        cause.upstream_asset_key,
                        cause.upstream_partition_key
                        if cause.HasField("upstream_partition_key")
                        else None,
                        instant(cause.upstream_time) if cause.HasField("upstream_time") else None,
                        tuple(
                            (
                                hop.asset_key,
                                hop.partition_key if hop.HasField("partition_key") else None,
                            )
                            for hop in cause.path
                        ),
                    )
                    for cause in partition.causes
                ),
            )
            for partition in message.partitions
        ),
        message.next_page_token,
    )


# ----- expected answers ------------------------------------------------------------------


def key_set(windows: Sequence[Window]) -> KeySet:
    """One run of consecutive windows, with every key (the answers asked for keys)."""
    if not windows:
        return KeySet(0, (), ())
    first, last = windows[0], windows[-1]
    run = Run(first.key, last.key, len(windows), first.start, last.end)
    return KeySet(len(windows), (run,), tuple(window.key for window in windows))


def needed(upstream_asset_key: str, windows: Sequence[Window], upstream_start: datetime) -> Needed:
    """The overlapping upstream windows: those before the upstream's start never exist."""
    present = [window for window in windows if window.start >= upstream_start]
    never = [window for window in windows if window.start < upstream_start]
    return Needed(
        upstream_asset_key,
        "time_window",
        False,
        key_set(present),
        key_set(never),
        tuple((window.key, NEVER, False) for window in never),
        "",
    )


def users(downstream_asset_key: str, window: Window) -> Users:
    return Users(downstream_asset_key, "time_window", False, key_set([window]), "")


def listing(as_of: datetime, first: Window, last: Window, count: int) -> Listing:
    """The first page (one key) of `count` partitions from `first` to `last`."""
    run = Run(first.key, last.key, count, first.start, last.end)
    return Listing(as_of, (first.key,), count > 1, count, (run,))


# ----- asking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    kind: str  # what is asked, for the tally of wrong answers
    detail: str  # of which definitions and keys, to reproduce it
    ask: Callable[[], object]
    expected: object


class Problem(NamedTuple):
    kind: str
    error: str | None  # the status code of a failed call, or the exception raised
    text: str


def stamp(value: datetime) -> Timestamp:
    message = Timestamp()
    message.FromDatetime(value)
    return message


def time_window(
    cron: str, start: date, zone: str = "UTC", fmt: str = ""
) -> pb.PartitionsDefinition:
    return pb.PartitionsDefinition(
        time_window=pb.TimeWindowPartitions(
            cron_schedule=cron, start=f"{start.isoformat()}T00:00:00", timezone=zone, fmt=fmt
        )
    )


def short(value: object, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def differences(expected: object, got: object, path: str = "") -> list[str]:
    """Where two answers differ, as `field.path: expected ..., got ...` lines."""
    if expected == got:
        return []
    fields: tuple[str, ...] | None = getattr(type(expected), "_fields", None)
    if fields is not None and type(got) is type(expected):
        assert isinstance(expected, tuple)
        assert isinstance(got, tuple)
        return [
            line
            for name, mine, theirs in zip(fields, expected, got, strict=True)
            for line in differences(mine, theirs, f"{path}.{name}")
        ]
    if isinstance(expected, tuple) and isinstance(got, tuple):
        if len(expected) == len(got):
            return [
                line
                for index, (mine, theirs) in enumerate(zip(expected, got, strict=True))
                for line in differences(mine, theirs, f"{path}[{index}]")
            ]
        # Lists of keys: their lengths and the first item that differs say more than a repr.
        first = next(
            (
                index
                for index, pair in enumerate(zip(expected, got, strict=False))
                if pair[0] != pair[1]
            ),
            min(len(expected), len(got)),
        )
        mine = short(expected[first]) if first < len(expected) else "nothing"
        theirs = short(got[first]) if first < len(got) else "nothing"
        return [
            f"{path.lstrip('.')}: expected {len(expected)} items, got {len(got)};"
            f" [{first}]: expected {mine}, got {theirs}"
        ]
    return [f"{path.lstrip('.')}: expected {short(expected)}, got {short(got)}"]


def check(question: Question) -> Problem | None:
    try:
        got = question.ask()
    except grpc.RpcError as error:
        code = error.code().name if isinstance(error, grpc.Call) else type(error).__name__
        details = error.details() if isinstance(error, grpc.Call) else str(error)
        return Problem(question.kind, code, f"{question.detail}: {code} {details}")
    except Exception as error:  # a broken answer may break the client too: count it
        name = type(error).__name__
        return Problem(question.kind, name, f"{question.detail}: {name} {error}")
    if got == question.expected:
        return None
    found = differences(question.expected, got)
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return Problem(question.kind, None, f"{question.detail}: {'; '.join(found[:3])}{more}")


def summary(phase: str, problems: Sequence[Problem], questions: Sequence[Question]) -> str:
    asked = Counter(question.kind for question in questions)
    wrong = Counter(problem.kind for problem in problems)
    errors = Counter(problem.error for problem in problems if problem.error is not None)
    lines = [f"{phase}: {len(problems)} of {len(questions)} answers wrong or failed"]
    lines += [f"  {kind}: {wrong[kind]} of {count}" for kind, count in asked.items()]
    if errors:
        lines.append("  failed calls: " + ", ".join(f"{n} {code}" for code, n in errors.items()))
    # A few of each: wrong answers tell more than failed calls.
    wrong_answers = [problem for problem in problems if problem.error is None]
    failed_calls = [problem for problem in problems if problem.error is not None]
    lines += [f"  e.g. {problem.text}" for problem in wrong_answers[:4] + failed_calls[:2]]
    return "\n".join(lines)


def deal(pairs: Sequence[Sequence[Question]]) -> list[Question]:
    """One list whose i-th block of CALLERS questions is about one pair, cycling over the pairs:
    dealt round-robin, the callers' first questions all reach the first pair at once, their
    second ones the second pair, and so on."""
    blocks = [
        pair[start : start + CALLERS]
        for start in range(0, max(map(len, pairs)), CALLERS)
        for pair in pairs
    ]
    return [question for block in blocks for question in block]


def ask_at_once_then_alone(questions: Sequence[Question]) -> None:
    """Deal the questions to CALLERS callers released together, then ask each alone again;
    fail with the tally of every wrong answer and failed call of both phases."""
    shares = [questions[caller::CALLERS] for caller in range(CALLERS)]
    barrier = threading.Barrier(CALLERS)

    def caller(share: Sequence[Question]) -> list[Problem]:
        barrier.wait(timeout=60)  # a guard against a hang, not a timing window
        return [problem for question in share if (problem := check(question)) is not None]

    previous = sys.getswitchinterval()
    # Hand the GIL over every microsecond (client and in-process server threads alike), so
    # that one thread's growing a table is likely to be interrupted by another's reading it.
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=CALLERS) as pool:
            futures = [pool.submit(caller, share) for share in shares]
            at_once = [problem for future in futures for problem in future.result()]
    finally:
        sys.setswitchinterval(previous)
    alone = [problem for question in questions if (problem := check(question)) is not None]
    report = "\n".join(
        [
            summary(f"{CALLERS} callers at once", at_once, questions),
            summary("the same questions again, one at a time", alone, questions),
        ]
    )
    assert not at_once, report
    assert not alone, report


# ----- inline questions ---------------------------------------------------------------------


def compute_upstream(
    stubs: Stubs,
    upstream: pb.PartitionsDefinition,
    downstream: pb.PartitionsDefinition,
    key: str,
    as_of: datetime,
) -> Answer:
    response = stubs.queries.ComputeUpstreamPartitions(
        queries_pb.ComputeUpstreamPartitionsRequest(
            upstream=upstream,
            downstream=downstream,
            selection=keys(key),
            as_of=stamp(as_of),
            key_paging=ALL_KEYS,
        )
    )
    return Answer(instant(response.as_of), 0, (needed_of(response.result),))


def compute_downstream(
    stubs: Stubs,
    upstream: pb.PartitionsDefinition,
    downstream: pb.PartitionsDefinition,
    key: str,
    as_of: datetime,
) -> Answer:
    response = stubs.queries.ComputeDownstreamPartitions(
        queries_pb.ComputeDownstreamPartitionsRequest(
            upstream=upstream,
            downstream=downstream,
            selection=keys(key),
            as_of=stamp(as_of),
            key_paging=ALL_KEYS,
        )
    )
    return Answer(instant(response.as_of), 0, (users_of(response.result),))


def daily_from_hourly(stubs: Stubs, rng: random.Random, zone_name: str) -> list[Question]:
    """Fresh hourly and daily definitions in a zone: the hours of days, the day of hours."""
    zone = ZoneInfo(zone_name)
    hourly_start, daily_start = fresh_start(MIDDLE), fresh_start(EARLY)
    hourly = time_window("0 * * * *", hourly_start, zone_name, HOUR_FMT)
    daily = time_window("0 0 * * *", daily_start, zone_name)
    pair = f"{zone_name} hourly from {hourly_start}, daily from {daily_start}"
    questions = []
    for day in spread_days(rng, QUESTIONS_PER_PAIR // 2, daily_start, zone_name=zone_name):
        as_of = as_of_near(rng)
        questions.append(
            Question(
                f"ComputeUpstreamPartitions {zone_name} hours of a day",
                f"{pair}: hours of {day}, as of {as_of}",
                functools.partial(compute_upstream, stubs, hourly, daily, day.isoformat(), as_of),
                Answer(as_of, 0, (needed("", hours_of(day, zone), midnight(hourly_start, zone)),)),
            )
        )
    for day in spread_days(rng, QUESTIONS_PER_PAIR // 2, hourly_start, zone_name=zone_name):
        # 02:00, or 03:00 when DST starts, or the repeated 01:00 when it ends.
        hour = hours_of(day, zone)[2]
        as_of = as_of_near(rng)
        questions.append(
            Question(
                f"ComputeDownstreamPartitions {zone_name} day of an hour",
                f"{pair}: day of {hour.key}, as of {as_of}",
                functools.partial(compute_downstream, stubs, hourly, daily, hour.key, as_of),
                Answer(as_of, 0, (users("", day_window(day, zone)),)),
            )
        )
    rng.shuffle(questions)
    return questions


def weekly_from_daily(stubs: Stubs, rng: random.Random) -> list[Question]:
    """Fresh daily and weekly definitions (UTC): the seven days of weeks, the week of days."""
    daily_start, weekly_start = fresh_start(MIDDLE), fresh_start(EARLY)
    daily = time_window("0 0 * * *", daily_start)
    weekly = time_window("0 0 * * 0", weekly_start)
    pair = f"daily from {daily_start}, weekly from {weekly_start}"
    last = LAST_DAY - WEEK  # the week of a later day has not ended at AS_OF
    questions = []
    for day in spread_days(rng, QUESTIONS_PER_PAIR // 2, weekly_start, last):
        sunday, as_of = sunday_of(day), as_of_near(rng)
        questions.append(
            Question(
                "ComputeUpstreamPartitions days of a week",
                f"{pair}: days of {sunday}, as of {as_of}",
                functools.partial(
                    compute_upstream, stubs, daily, weekly, sunday.isoformat(), as_of
                ),
                Answer(as_of, 0, (needed("", days_of_week(sunday), midnight(daily_start, UTC)),)),
            )
        )
    for day in spread_days(rng, QUESTIONS_PER_PAIR // 2, daily_start, last):
        as_of = as_of_near(rng)
        questions.append(
            Question(
                "ComputeDownstreamPartitions week of a day",
                f"{pair}: week of {day}, as of {as_of}",
                functools.partial(compute_downstream, stubs, daily, weekly, day.isoformat(), as_of),
                Answer(as_of, 0, (users("", week_window(sunday_of(day))),)),
            )
        )
    rng.shuffle(questions)
    return questions


def test_sixteen_callers_asking_first_inline_questions_at_once_all_get_exact_answers(
    busy: Stubs,
) -> None:
    rng = random.Random(20240601)
    pairs = [
        daily_from_hourly(busy, rng, "UTC"),
        daily_from_hourly(busy, rng, NEW_YORK),
        weekly_from_daily(busy, rng),
    ]
    ask_at_once_then_alone(deal(pairs))


# ----- stored questions ---------------------------------------------------------------------


def test_sixteen_callers_asking_first_questions_on_freshly_applied_assets_get_exact_answers(
    busy: Stubs, namespace: str
) -> None:
    rng = random.Random(20240602)
    hourly_start, daily_start, weekly_start = (
        fresh_start(MIDDLE),
        fresh_start(EARLY),
        fresh_start(EARLY),
    )
    # Applying compiles the definitions (validation): their tables hold only the years around
    # their start until the questions below reach other years.
    generation = busy.definitions.ApplyAssets(
        defs_pb.ApplyAssetsRequest(
            namespace=namespace,
            assets=[
                asset("hourly", time_window("0 * * * *", hourly_start, fmt=HOUR_FMT)),
                asset("daily", time_window("0 0 * * *", daily_start), "hourly"),
                asset("weekly", time_window("0 0 * * 0", weekly_start), "daily"),
            ],
        )
    ).generation
    assets = f"hourly from {hourly_start}, daily from {daily_start}, weekly from {weekly_start}"
    hours_from = midnight(hourly_start, UTC)
    staleness = StalenessServiceStub(busy.channel)
    last_week_day = LAST_DAY - WEEK  # the week of a later day has not ended at AS_OF

    def upstream(asset_key: str, key: str, as_of: datetime) -> Answer:
        response = busy.queries.GetUpstreamPartitions(
            queries_pb.GetUpstreamPartitionsRequest(
                namespace=namespace,
                asset_key=asset_key,
                selection=keys(key),
                as_of=stamp(as_of),
                key_paging=ALL_KEYS,
            )
        )
        return Answer(
            instant(response.as_of),
            response.generation,
            tuple(map(needed_of, response.dependencies)),
        )

    def downstream(asset_key: str, key: str, as_of: datetime) -> Answer:
        response = busy.queries.GetDownstreamPartitions(
            queries_pb.GetDownstreamPartitionsRequest(
                namespace=namespace,
                asset_key=asset_key,
                selection=keys(key),
                as_of=stamp(as_of),
                key_paging=ALL_KEYS,
            )
        )
        return Answer(
            instant(response.as_of), response.generation, tuple(map(users_of, response.dependents))
        )

    def listed(asset_key: str, as_of: datetime) -> Listing:
        response = busy.queries.ListPartitions(
            queries_pb.ListPartitionsRequest(
                source=queries_pb.DefinitionSource(
                    asset=queries_pb.AssetReference(namespace=namespace, asset_key=asset_key)
                ),
                as_of=stamp(as_of),
                page_size=1,
            )
        )
        return Listing(
            instant(response.as_of),
            tuple(response.partition_keys),
            bool(response.next_page_token),
            response.total_size,
            tuple(map(run_of, response.ranges)),
        )

    def stale(asset_key: str, key: str, as_of: datetime) -> Staleness:
        return staleness_of(
            staleness.GetStaleness(
                stale_pb.GetStalenessRequest(
                    namespace=namespace,
                    asset_keys=[asset_key],
                    selection=keys(key),
                    as_of=stamp(as_of),
                    include_fresh=True,
                )
            )
        )

    questions: list[Question] = []

    def add(kind: str, detail: str, ask: Callable[[], object], expected: object) -> None:
        questions.append(Question(kind, f"{assets}: {detail}", ask, expected))

    for day in spread_days(rng, 2 * CALLERS, daily_start):
        as_of = as_of_near(rng)
        add(
            "GetUpstreamPartitions hours of a day",
            f"hours of {day}, as of {as_of}",
            functools.partial(upstream, "daily", day.isoformat(), as_of),
            Answer(as_of, generation, (needed("hourly", hours_of(day, UTC), hours_from),)),
        )
    for day in spread_days(rng, CALLERS, weekly_start, last_week_day):
        sunday, as_of = sunday_of(day), as_of_near(rng)
        add(
            "GetUpstreamPartitions days of a week",
            f"days of {sunday}, as of {as_of}",
            functools.partial(upstream, "weekly", sunday.isoformat(), as_of),
            Answer(
                as_of,
                generation,
                (needed("daily", days_of_week(sunday), midnight(daily_start, UTC)),),
            ),
        )
    for day in spread_days(rng, CALLERS, hourly_start):
        hour, as_of = rng.choice(hours_of(day, UTC)), as_of_near(rng)
        add(
            "GetDownstreamPartitions day of an hour",
            f"day of {hour.key}, as of {as_of}",
            functools.partial(downstream, "hourly", hour.key, as_of),
            Answer(as_of, generation, (users("daily", day_window(day)),)),
        )
    for day in spread_days(rng, CALLERS, daily_start, last_week_day):
        as_of = as_of_near(rng)
        add(
            "GetDownstreamPartitions week of a day",
            f"week of {day}, as of {as_of}",
            functools.partial(downstream, "daily", day.isoformat(), as_of),
            Answer(as_of, generation, (users("weekly", week_window(sunday_of(day))),)),
        )

    # ListPartitions at midnights from 1990 (or the start) to 2080: the windows ended by then.
    for day in spread_days(rng, CALLERS // 2, hourly_start + timedelta(days=1)):
        as_of = midnight(day, UTC)
        add(
            "ListPartitions hourly",
            f"hourly partitions as of {as_of}",
            functools.partial(listed, "hourly", as_of),
            listing(
                as_of,
                Window(hour_key(hours_from, UTC), hours_from, hours_from + HOUR),
                Window(hour_key(as_of - HOUR, UTC), as_of - HOUR, as_of),
                (as_of - hours_from) // HOUR,
            ),
        )
    for day in spread_days(rng, CALLERS // 2, daily_start + timedelta(days=1)):
        as_of = midnight(day, UTC)
        add(
            "ListPartitions daily",
            f"daily partitions as of {as_of}",
            functools.partial(listed, "daily", as_of),
            listing(
                as_of,
                day_window(daily_start),
                day_window(day - timedelta(days=1)),
                (day - daily_start).days,
            ),
        )
    for day in spread_days(rng, CALLERS // 2, weekly_start + WEEK):
        as_of, sunday = midnight(day, UTC), sunday_of(day)
        add(
            "ListPartitions weekly",
            f"weekly partitions as of {as_of}",
            functools.partial(listed, "weekly", as_of),
            listing(
                as_of,
                week_window(weekly_start),
                week_window(sunday - WEEK),
                (sunday - weekly_start) // WEEK,
            ),
        )

    # Staleness: days of 2035-2080 whose hours all exist, weeks of 1990-2034, so that no
    # event of one kind of question touches the partitions of the other.
    events: list[events_pb.Event] = []

    def materialize(asset_key: str, key: str, at: datetime) -> None:
        events.append(materialization(f"e{len(events)}", asset_key, key, at.isoformat()))

    def expect_staleness(
        asset_key: str,
        window: Window,
        status: stale_pb.StaleStatus.ValueType,
        causes: tuple[Cause, ...],
    ) -> None:
        run = Run(window.key, window.key, 1, window.start, window.end)
        counts = {FRESH: (1, 0, 0), STALE: (0, 1, 0), MISSING: (0, 0, 1)}[status]
        as_of = as_of_near(rng)
        add(
            f"GetStaleness {asset_key}",
            f"staleness of {asset_key} {window.key}, as of {as_of}",
            functools.partial(stale, asset_key, window.key, as_of),
            Staleness(
                as_of,
                generation,
                (
                    Summary(
                        asset_key,
                        *counts,
                        (run,) if status == STALE else (),
                        (run,) if status == MISSING else (),
                    ),
                ),
                (Status(asset_key, window.key, status, causes),),
                "",
            ),
        )

    never_materialized = Cause(stale_pb.STALE_CAUSE_KIND_NEVER_MATERIALIZED, "", None, None, ())
    statuses = [FRESH, STALE, MISSING] * 3
    staleness_days = sorted(set(spread_days(rng, 3 * len(statuses), hourly_start)))
    for day, status in zip(rng.sample(staleness_days, len(statuses)), statuses, strict=True):
        hours = hours_of(day, UTC)
        for hour in hours:
            materialize("hourly", hour.key, T0)
        if status == MISSING:
            expect_staleness("daily", day_window(day), MISSING, (never_materialized,))
            continue
        materialize("daily", day.isoformat(), T1)
        causes: tuple[Cause, ...] = ()
        if status == STALE:
            changed = rng.choice(hours)
            materialize("hourly", changed.key, T2)
            kind = stale_pb.STALE_CAUSE_KIND_UPSTREAM_UPDATED
            causes = (Cause(kind, "hourly", changed.key, T2, ()),)
        expect_staleness("daily", day_window(day), status, causes)
    early_days = spread_days(rng, 3 * len(statuses), weekly_start, hourly_start - WEEK)
    weeks = sorted({sunday_of(day) for day in early_days})
    for sunday, status in zip(rng.sample(weeks, len(statuses)), statuses, strict=True):
        days = days_of_week(sunday)
        for window in days:
            materialize("daily", window.key, T1)
        if status == MISSING:
            expect_staleness("weekly", week_window(sunday), MISSING, (never_materialized,))
            continue
        materialize("weekly", sunday.isoformat(), T2)
        causes = ()
        if status == STALE:
            changed = rng.choice(days)
            materialize("daily", changed.key, T3)
            kind = stale_pb.STALE_CAUSE_KIND_UPSTREAM_UPDATED
            causes = (Cause(kind, "daily", changed.key, T3, ()),)
        expect_staleness("weekly", week_window(sunday), status, causes)
    busy.events.ReportEvents(events_pb.ReportEventsRequest(namespace=namespace, events=events))

    rng.shuffle(questions)
    ask_at_once_then_alone(questions)
