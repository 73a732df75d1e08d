"""Cron syntax: accepted and refused exactly as Dagster's parser does (found by fuzzing)."""

from __future__ import annotations

import pytest

from partition_deps.domain.cron import parse_cron
from partition_deps.domain.errors import InvalidDefinition

ACCEPTED = [
    "0 0 * * *",
    "@daily",
    "0 0 L * *",
    "0 0 * * 1#1",
    "0 0 * * MON-FRI",
    "0 22-5 * * *",  # a backwards range wraps around
    "0 0 ? * *",  # '?' is a wildcard in day fields
    "0 0 1-L * *",
    "0 0 30,31 2 *",  # only a single impossible February day is refused
]
REFUSED = [
    "0 0 * * * *",
    "61 * * * *",
    "*/ 0 * * *",  # an empty step
    "@daily ",  # an alias must be exact
    "0 0 30 2 *",
    "0 0 15W * *",
    "0 0 * * 5L",
]


@pytest.mark.parametrize("expression", ACCEPTED)
def test_accepted(expression: str) -> None:
    parse_cron(expression)


@pytest.mark.parametrize("expression", REFUSED)
def test_refused(expression: str) -> None:
    with pytest.raises(InvalidDefinition):
        parse_cron(expression)


def test_a_backwards_hour_range_wraps_around_midnight() -> None:
    assert parse_cron("0 22-2 * * *").hours == (0, 1, 2, 22, 23)


def test_hour_wildcard_written_as_a_full_range_repeats_every_hour() -> None:
    assert parse_cron("0 0-23 * * *").repeats_every_hour
