"""The fast paths give exactly the general path's answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from hypothesis import assume, given
from hypothesis import strategies as st

from partition_deps.domain import dependencies, fast_paths
from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.dependencies import clear_memos, upstream_partitions
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.mappings.kinds import TimeWindowMapping
from partition_deps.domain.partitions import DAGSTER, all_partitions
from partition_deps.domain.results import UpstreamResult
from tests.domain.strategies import ZONES, as_of_instants, preset_definitions, time_definitions


def _general_upstream(
    upstream: TimeWindowPartitions,
    downstream: TimeWindowPartitions,
    keys: list[str],
    at: Evaluation,
) -> UpstreamResult:
    """The answer of the general path, computed afresh (no answer remembered from the fast
    path serves it)."""
    fast_paths.force_general_path(True)
    clear_memos(compiled=False)
    try:
        return upstream_partitions(upstream, downstream, None, keys, at)
    finally:
        fast_paths.force_general_path(False)
        clear_memos(compiled=False)


def _answer(call: Callable[[], UpstreamResult]) -> object:
    try:
        result = call()
    except PartitionDepsError as error:
        return type(error), error.message, error.field
    return (
        list(result.partitions),
        [(run.first_key, run.last_key, run.count) for run in result.partitions.runs()],
        list(result.required_but_nonexistent),
        result.nonexistent,
    )


@st.composite
def pairs(draw: st.DrawFn) -> tuple[TimeWindowPartitions, TimeWindowPartitions]:
    zone = draw(st.sampled_from(ZONES))
    side = preset_definitions(zone) | time_definitions(zone)
    return draw(side), draw(side)


@given(pairs(), as_of_instants(), st.data())
def test_one_run_of_keys_maps_up_as_the_general_path_does(
    pair: tuple[TimeWindowPartitions, TimeWindowPartitions],
    as_of: datetime,
    data: st.DataObject,
) -> None:
    upstream, downstream = pair
    at = Evaluation(as_of)
    existing = list(all_partitions(downstream, at).keys(0, 3000))
    assume(existing)
    first = data.draw(st.integers(0, len(existing) - 1))
    keys = existing[first : first + data.draw(st.sampled_from([1, 1, 2, 7, 30]))]
    if data.draw(st.booleans()):
        keys = [*keys, data.draw(st.sampled_from(existing))]  # a repeat, or a gap
    fast = _answer(lambda: upstream_partitions(upstream, downstream, None, keys, at))
    assert fast == _answer(lambda: _general_upstream(upstream, downstream, keys, at))


@st.composite
def utc_pairs(draw: st.DrawFn) -> tuple[TimeWindowPartitions, TimeWindowPartitions]:
    """UTC pairs with preset formats, where one key maps in one step."""
    return draw(preset_definitions("UTC")), draw(preset_definitions("UTC"))


@given(
    pairs() | utc_pairs(),
    as_of_instants(),
    st.integers(-3, 3) | st.integers(-400, 0),
    st.sampled_from(["key", "key", "odd", "day"]),
)
def test_one_key_maps_up_as_the_general_path_does(
    pair: tuple[TimeWindowPartitions, TimeWindowPartitions],
    as_of: datetime,
    shift: int,
    text: str,
) -> None:
    upstream, downstream = pair
    at = Evaluation(as_of)
    windows = compile_time_windows(downstream)
    bounds = windows.bounds(int(as_of.timestamp()))
    assume(bounds is not None)
    assert bounds is not None
    last = windows.key_at(windows.index_of_start(bounds[1]))
    _answer(lambda: upstream_partitions(upstream, downstream, None, [last], at))  # checks it
    key = windows.key_at(max(windows.index_of_start(bounds[1]) + shift, 0))
    if text == "odd":
        key = key.replace("-", "/", 1)  # not a key: the errors must agree too
    elif text == "day":
        # Canonical text, but of the day after: a key only where windows start daily.
        day = datetime.strptime(key[:10], "%Y-%m-%d") + timedelta(days=1)
        key = day.strftime("%Y-%m-%d") + key[10:]
    fast = _answer(lambda: upstream_partitions(upstream, downstream, None, [key], at))
    assert fast == _answer(lambda: _general_upstream(upstream, downstream, [key], at))


def test_the_weekly_from_daily_question_takes_the_fast_path() -> None:
    daily = TimeWindowPartitions("0 0 * * *", datetime(1972, 1, 1))
    weekly = TimeWindowPartitions("0 0 * * 0", datetime(1972, 1, 1))
    at = Evaluation(datetime(2025, 1, 1, tzinfo=UTC))
    answer = upstream_partitions(daily, weekly, TimeWindowMapping(), ["2024-12-22"], at)
    question = dependencies._question("up", daily, weekly, TimeWindowMapping(), DAGSTER)
    assert question.span is not None
    assert list(answer.partitions) == [f"2024-12-{day}" for day in range(22, 29)]
    assert list(answer.required_but_nonexistent) == []


@given(preset_definitions("UTC") | time_definitions("UTC"))
def test_definitions_marked_all_exact_have_exact_keys_everywhere(
    definition: TimeWindowPartitions,
) -> None:
    windows = compile_time_windows(definition)
    if windows.keys_all_exact:
        assert all(windows._key_is_exact(index) for index in windows.tabulated())


def test_a_tick_table_knows_when_its_ticks_are_evenly_spaced() -> None:
    def step(cron: str, zone: str = "UTC") -> int:
        windows = compile_time_windows(
            TimeWindowPartitions(cron, datetime(2020, 1, 1), timezone=zone)
        )
        return windows.grid_step

    assert step("0 0 * * *") == 86_400
    assert step("0 * * * *") == 3_600
    assert step("0 0 * * 0") == 7 * 86_400
    assert step("0 0 * * *", "America/New_York") == 0  # 23- and 25-hour days
    assert step("0 0 1 * *") == 0  # months
    assert step("0 0 * * 1-5") == 0  # weekends skipped
