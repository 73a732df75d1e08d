"""The answer memo never changes an answer: not across ticks, ends or repeated questions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from partition_deps.domain import dependencies, partitions
from partition_deps.domain.definitions import Evaluation
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.errors import InvalidPartitionKey
from partition_deps.domain.mappings.kinds import TimeWindowMapping
from tests.conformance.cases import load_cases
from tests.domain.definitions import DAILY, HOURLY

MIDNIGHT = datetime(2024, 3, 2, tzinfo=UTC)


def test_memoised_answers_equal_fresh_ones_for_every_conformance_case() -> None:
    for case in load_cases():
        raw = case.raw
        if "error" in raw["expected"] or raw["direction"] != "upstream":
            continue
        args = (case.upstream, case.downstream, case.mapping, raw["partition_keys"])
        first = upstream_partitions(*args, case.evaluation)
        again = upstream_partitions(*args, case.evaluation)
        now = int(case.evaluation.as_of.timestamp())
        situations = (
            dependencies._situation(case.upstream, now),
            dependencies._situation(case.downstream, now),
        )
        question = dependencies._question("up", *args[:3], partitions.DAGSTER)
        fresh = dependencies._upstream(
            question, *args, case.evaluation, partitions.DAGSTER, situations, now
        )
        for answer in (first, again):
            assert list(answer.partitions) == list(fresh.partitions), case.id
            assert list(answer.required_but_nonexistent) == list(fresh.required_but_nonexistent), (
                case.id
            )
            assert answer.nonexistent == fresh.nonexistent, case.id


def test_an_answer_changes_when_now_crosses_a_tick() -> None:
    lag = TimeWindowMapping(0, 1)
    before = Evaluation(MIDNIGHT - timedelta(seconds=1))
    after = Evaluation(MIDNIGHT)
    # At 23:59:59 on 03-01 the last daily partition is 02-29; its next day does not exist yet.
    early = upstream_partitions(DAILY, DAILY, lag, ["2024-02-29"], before)
    assert list(early.partitions) == ["2024-02-29"]
    late = upstream_partitions(DAILY, DAILY, lag, ["2024-02-29"], after)
    assert list(late.partitions) == ["2024-02-29", "2024-03-01"]
    again = upstream_partitions(DAILY, DAILY, lag, ["2024-02-29"], before)
    assert list(again.partitions) == ["2024-02-29"]


def test_a_key_becomes_valid_exactly_when_its_window_ends() -> None:
    with pytest.raises(InvalidPartitionKey):
        downstream_partitions(
            DAILY, HOURLY, None, ["2024-03-01"], Evaluation(MIDNIGHT - timedelta(seconds=1))
        )
    answer = downstream_partitions(DAILY, HOURLY, None, ["2024-03-01"], Evaluation(MIDNIGHT))
    assert len(answer.partitions) == 24
