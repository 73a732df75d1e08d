"""Many threads asking first questions on freshly compiled definitions get the answers one
thread gets.

Compiled definitions are shared by every server thread and their tick tables grow on demand
in both directions; this is the test that a table growing under one thread never shows
another thread a half-built or shifted table, and that nothing wrong is remembered.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial

from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.dependencies import (
    clear_memos,
    downstream_partitions,
    upstream_partitions,
)
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.partitions import (
    all_partitions,
    key_for_timestamp,
    time_window_for_key,
)

THREADS = 32
START = datetime(1985, 1, 1)
AS_OF = Evaluation(datetime(2100, 1, 1, tzinfo=UTC))
HOURLY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"

HOURLY_UTC = TimeWindowPartitions("0 * * * *", START, "UTC", HOURLY_FMT)
DAILY_UTC = TimeWindowPartitions("0 0 * * *", START, "UTC", DAILY_FMT)
WEEKLY_UTC = TimeWindowPartitions("0 0 * * 0", START, "UTC", DAILY_FMT)
WEEKDAYS_UTC = TimeWindowPartitions(
    "0 0 * * *", START, "UTC", DAILY_FMT, exclusions=("0 0 * * 6", "0 0 * * 0")
)
HOURLY_NEW_YORK = TimeWindowPartitions("0 * * * *", START, "America/New_York", HOURLY_FMT)
DAILY_NEW_YORK = TimeWindowPartitions("0 0 * * *", START, "America/New_York", DAILY_FMT)
SIX_HOURLY_BERLIN = TimeWindowPartitions("15 */6 * * *", START, "Europe/Berlin", HOURLY_FMT)
DAILY_BERLIN = TimeWindowPartitions("0 0 * * *", START, "Europe/Berlin", DAILY_FMT)

Question = Callable[[], object]


def _answer(question: Question) -> object:
    """A comparable answer, or the error it raised (an error is an answer too)."""
    try:
        return question()
    except PartitionDepsError as error:
        return type(error).__name__, error.message, error.field


def _up(upstream: TimeWindowPartitions, downstream: TimeWindowPartitions, key: str) -> Question:
    def ask() -> object:
        result = upstream_partitions(upstream, downstream, None, [key], AS_OF)
        return (
            list(result.partitions),
            result.partitions.runs(),
            list(result.required_but_nonexistent),
        )

    return ask


def _down(upstream: TimeWindowPartitions, downstream: TimeWindowPartitions, key: str) -> Question:
    def ask() -> object:
        return list(downstream_partitions(upstream, downstream, None, [key], AS_OF).partitions)

    return ask


def _listing(definition: TimeWindowPartitions, as_of: datetime) -> Question:
    def ask() -> object:
        subset = all_partitions(definition, Evaluation(as_of))
        return len(subset), subset.runs()[-1:]

    return ask


def _days(rng: random.Random, count: int) -> Iterator[date]:
    """Days across a century (1990-2080), so tables grow in both directions."""
    first = date(1990, 1, 1).toordinal()
    for _ in range(count):
        yield date.fromordinal(rng.randint(first, date(2080, 12, 31).toordinal()))


def _questions(seed: int) -> list[Question]:
    rng = random.Random(seed)
    questions: list[Question] = []
    for day in _days(rng, 24):
        text = day.isoformat()
        sunday = (day + timedelta(days=6 - day.weekday())).isoformat()
        weekday = (day - timedelta(days=max(0, day.weekday() - 4))).isoformat()
        hour = f"{text}-{rng.randint(0, 23):02d}:00"
        instant = datetime(day.year, day.month, day.day, rng.randint(0, 23), tzinfo=UTC)
        questions += [
            _up(HOURLY_UTC, DAILY_UTC, text),
            _up(DAILY_UTC, WEEKLY_UTC, sunday),
            _up(HOURLY_UTC, WEEKDAYS_UTC, weekday),
            _up(HOURLY_NEW_YORK, DAILY_NEW_YORK, text),
            _up(SIX_HOURLY_BERLIN, DAILY_BERLIN, text),
            _down(HOURLY_UTC, DAILY_UTC, hour),
            _down(DAILY_UTC, WEEKLY_UTC, text),
            _down(HOURLY_NEW_YORK, DAILY_NEW_YORK, f"{text}-12:00"),
            _down(DAILY_BERLIN, SIX_HOURLY_BERLIN, text),
            partial(key_for_timestamp, HOURLY_NEW_YORK, instant),
            partial(key_for_timestamp, WEEKDAYS_UTC, instant),
            partial(key_for_timestamp, SIX_HOURLY_BERLIN, instant, end_closed=True),
            partial(time_window_for_key, WEEKLY_UTC, sunday),
            partial(time_window_for_key, HOURLY_UTC, hour),
            _listing(DAILY_NEW_YORK, instant),
            _listing(WEEKDAYS_UTC, instant),
        ]
    return questions


@contextmanager
def _switching_often() -> Iterator[None]:
    """Switch threads every microsecond, so that interleavings inside one call are likely."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _ask_concurrently(questions: list[Question]) -> dict[int, list[object]]:
    """Each thread asks every question, in an order of its own; answers by question."""
    barrier = threading.Barrier(THREADS)

    def worker(seed: int) -> list[tuple[int, object]]:
        order = list(range(len(questions)))
        random.Random(seed).shuffle(order)
        barrier.wait()
        seen: list[tuple[int, object]] = []
        for index in order[: len(order) // 8]:
            try:
                seen.append((index, _answer(questions[index])))
            except Exception as error:  # an unexpected error is a wrong answer, kept
                seen.append((index, ("unexpected", repr(error))))
        return seen

    answers: dict[int, list[object]] = {}
    with _switching_often(), ThreadPoolExecutor(THREADS) as pool:
        for seen in pool.map(worker, range(THREADS)):
            for index, answer in seen:
                answers.setdefault(index, []).append(answer)
    return answers


def test_thirty_two_threads_on_fresh_definitions_answer_as_one_thread_does() -> None:
    questions = _questions(seed=11)
    clear_memos()
    concurrent = _ask_concurrently(questions)
    # Then the same questions one at a time on the same (shared) state: nothing wrong kept.
    remembered = [_answer(question) for question in questions]
    clear_memos()
    expected = [_answer(question) for question in questions]

    wrong = [
        (index, answer)
        for index, answers in concurrent.items()
        for answer in answers
        if answer != expected[index]
    ]
    kept = [index for index, answer in enumerate(remembered) if answer != expected[index]]
    asked = sum(len(answers) for answers in concurrent.values())
    assert (len(wrong), len(kept)) == (0, 0), (
        f"{len(wrong)} of {asked} concurrent answers wrong, e.g. {wrong[:3]}; "
        f"{len(kept)} of {len(questions)} still wrong one at a time afterwards"
    )
