"""Invariants of the domain core, over generated definitions, keys and instants."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

from hypothesis import assume, given
from hypothesis import strategies as st

from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.subsets import TimeSubset
from tests.domain.strategies import ZONES, as_of_instants, time_definitions


def _existing(definition: TimeWindowPartitions, as_of: datetime) -> TimeSubset:
    subset = all_partitions(definition, Evaluation(as_of))
    assert isinstance(subset, TimeSubset)
    return subset


@given(time_definitions(), as_of_instants(), st.data())
def test_key_window_key_round_trips(
    definition: TimeWindowPartitions, as_of: datetime, data: st.DataObject
) -> None:
    subset = _existing(definition, as_of)
    assume(len(subset) > 0)
    position = data.draw(st.integers(0, min(len(subset), 2000) - 1))
    key = subset.keys(position, 1)[0]
    windows = compile_time_windows(definition)
    now = int(as_of.timestamp())
    index = windows.check_key(key, now)
    window = windows.window(index)
    assert windows.key_at(index) == key
    assert windows.key_for_timestamp(window.start) == key
    assert windows.key_for_timestamp(window.end, end_closed=True) == key
    inside = data.draw(st.integers(window.start, window.end - 1))
    assert windows.key_for_timestamp(inside) == key


@given(time_definitions(), as_of_instants())
def test_listed_partitions_are_ordered_contiguous_and_match_their_runs(
    definition: TimeWindowPartitions, as_of: datetime
) -> None:
    subset = _existing(definition, as_of)
    windows = compile_time_windows(definition)
    keys = subset.keys(0, 3000)
    starts = [windows.start_for_key(key) for key in keys]
    assert starts == sorted(starts)
    assert len(set(starts)) == len(starts)
    spans = [windows.window(windows.index_of_start(start)) for start in starts]
    for earlier, later in itertools.pairwise(spans):
        assert earlier.end == later.start  # no exclusions: no gaps, no overlaps
    runs = subset.runs()
    assert sum(run.count for run in runs) == len(subset)
    if keys:
        assert runs[0].first_key == keys[0]
    if keys and len(subset) <= 3000:
        assert runs[-1].last_key == keys[-1]
        assert list(subset) == keys


@given(time_definitions(), as_of_instants(), st.integers(0, 50), st.integers(1, 40))
def test_pages_concatenate_to_the_whole(
    definition: TimeWindowPartitions, as_of: datetime, offset: int, page: int
) -> None:
    subset = _existing(definition, as_of)
    assume(len(subset) <= 400)
    keys = list(subset)
    pages: list[str] = []
    position = 0
    while position < len(keys):
        pages += subset.keys(position, page)
        position += page
    assert pages == keys
    assert subset.keys(offset, page) == keys[offset : offset + page]


@st.composite
def same_zone_pair(draw: st.DrawFn) -> tuple[TimeWindowPartitions, TimeWindowPartitions]:
    zone = draw(st.sampled_from(ZONES))
    return draw(time_definitions(zone)), draw(time_definitions(zone))


@given(same_zone_pair(), as_of_instants(), st.data())
def test_upstream_and_downstream_are_mirror_images(
    pair: tuple[TimeWindowPartitions, TimeWindowPartitions],
    as_of: datetime,
    data: st.DataObject,
) -> None:
    upstream, downstream = pair
    at = Evaluation(as_of)
    down_keys = _existing(downstream, as_of)
    up_keys = _existing(upstream, as_of)
    assume(len(down_keys) > 0 and len(up_keys) > 0)
    p = down_keys.keys(data.draw(st.integers(0, min(len(down_keys), 500) - 1)), 1)[0]
    q = up_keys.keys(data.draw(st.integers(0, min(len(up_keys), 500) - 1)), 1)[0]
    q_in_up = q in set(upstream_partitions(upstream, downstream, None, [p], at).partitions)
    p_in_down = p in set(downstream_partitions(upstream, downstream, None, [q], at).partitions)
    assert q_in_up == p_in_down


@given(same_zone_pair(), as_of_instants(), st.integers(0, 2**32))
def test_answers_do_not_depend_on_key_order(
    pair: tuple[TimeWindowPartitions, TimeWindowPartitions], as_of: datetime, seed: int
) -> None:
    upstream, downstream = pair
    at = Evaluation(as_of)
    existing = _existing(downstream, as_of)
    assume(len(existing) > 0)
    keys = existing.keys(0, 30)
    shuffled = keys[:]
    random.Random(seed).shuffle(shuffled)
    first = upstream_partitions(upstream, downstream, None, keys, at)
    second = upstream_partitions(upstream, downstream, None, shuffled, at)
    assert list(first.partitions) == list(second.partitions)
    assert list(first.required_but_nonexistent) == list(second.required_but_nonexistent)


def test_ten_years_of_hourly_partitions_is_one_run() -> None:
    hourly = TimeWindowPartitions("0 * * * *", datetime(2015, 1, 1), fmt="%Y-%m-%d-%H:%M")
    subset = _existing(hourly, datetime(2025, 1, 1, tzinfo=UTC))
    runs = subset.runs()
    assert len(runs) == 1
    assert runs[0].count == 87_672
    assert (runs[0].first_key, runs[0].last_key) == ("2015-01-01-00:00", "2024-12-31-23:00")
