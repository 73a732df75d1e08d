"""Entry points: which partitions of one asset depend on which partitions of another.

Each answer is computed the way Dagster computes it at asset-graph level: definitions are
validated, the mapping is inferred when none is given and validated against both sides, the
queried keys are checked at `at.as_of`, then the mapping runs. Unpartitioned sides are
special-cased before the mapping is consulted, as Dagster's asset graph does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from partition_deps.domain import fast_paths
from partition_deps.domain.compiled_windows import TimeWindows, Window, compile_time_windows
from partition_deps.domain.definitions import (
    DynamicPartitions,
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import (
    InvalidDefinition,
    InvalidPartitionKey,
    MappingError,
    PartitionDepsError,
)
from partition_deps.domain.fast_paths import SpanMapping
from partition_deps.domain.mappings.engine import map_down, map_up
from partition_deps.domain.mappings.inference import resolve_mapping
from partition_deps.domain.mappings.keysets import Keys, key_list, subset_with_keys
from partition_deps.domain.mappings.kinds import PartitionMapping, TimeWindowMapping
from partition_deps.domain.partitions import (
    DAGSTER,
    Options,
    all_partitions,
    check_key,
    classify_key,
    forget_listed_positions,
    keys_not_yet,
    now_of,
    order_keys,
    validate_definition,
)
from partition_deps.domain.results import (
    DownstreamResult,
    KeyState,
    KeySubset,
    Subset,
    UpstreamResult,
)
from partition_deps.domain.subsets import TimeSubset

__all__ = [
    "clear_memos",
    "downstream_partitions",
    "involves_dynamic",
    "resolve_mapping",
    "upstream_partitions",
    "validate_definition",
]


class _Question:
    """One kind of question: a direction, the two definitions, the mapping and the options.

    Interned by value, so that what depends only on them (the checks, the fast path) is
    decided once, and the per-question memo keys hash this object by identity instead of
    hashing definitions again on every question.

    Thread safety: shared by every thread asking this kind of question. Each field holds a
    value built whole and replaced in one assignment (`checked`, `bounds`, `span`), or is a
    dict whose entries are set whole (`prepared`); `span` is set before the `prepared` entry
    that lets the one-key path use it.
    """

    __slots__ = ("bounds", "checked", "direction", "memoised", "prepared", "span", "windows")

    def __init__(
        self, direction: str, memoised: bool, windows: tuple[TimeWindows, TimeWindows] | None
    ) -> None:
        self.direction = direction
        self.memoised = memoised
        # Upstream and downstream compiled, when both are time-window definitions.
        self.windows = windows
        # The checked mapping, by which partitions exist (errors are not memoised, so a bad
        # definition is re-checked and re-reported each time).
        self.prepared: dict[tuple[object, object], PartitionMapping] = {}
        # The situations last found checked, compared by identity (`bounds` hands out one
        # object while a situation holds): cheaper than a lookup in `prepared`.
        self.checked: tuple[object, object] = (_UNCHECKED, _UNCHECKED)
        # Both sides' bounds and the instants `[from, until)` over which they both hold.
        self.bounds: tuple[int, int, tuple[int, int] | None, tuple[int, int] | None] = (
            1,
            0,
            None,
            None,
        )
        # The fast path for one run of keys (None: none), decided once the checks passed.
        self.span: SpanMapping | None = None


_UNCHECKED = object()
# Thread safety: entries set whole (two threads may intern one question twice: both work).
_QUESTIONS: dict[tuple[object, ...], _Question] = {}
# The last kind of question asked, with its identity-compared parts: a service asks about
# the same dependency again and again, and comparing identities costs less than hashing.
_last_question: tuple[object, ...] = ("", None, None, None, None, _Question("", False, None))


def _question(
    direction: str,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    options: Options,
) -> _Question:
    global _last_question  # one tuple, swapped whole: safe to read from any thread
    last = _last_question
    if (
        last[0] is direction
        and last[1] is upstream
        and last[2] is downstream
        and last[3] is mapping
        and last[4] is options
    ):
        return last[5]  # type: ignore[return-value]
    key = (direction, upstream, downstream, mapping, options)
    known = _QUESTIONS.get(key)
    if known is None:
        dynamic = involves_dynamic(upstream) or involves_dynamic(downstream)
        windows = None
        if isinstance(upstream, TimeWindowPartitions) and isinstance(
            downstream, TimeWindowPartitions
        ):
            # Raises on a bad cron or zone, as the first look at which partitions exist did.
            windows = (compile_time_windows(upstream), compile_time_windows(downstream))
        known = _Question(direction, not dynamic, windows)
        if len(_QUESTIONS) >= 256:  # they hold compiled definitions: keep memory flat
            _QUESTIONS.clear()
        _QUESTIONS[key] = known
    _last_question = (*key, known)
    return known


def upstream_partitions(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    downstream_keys: Sequence[str],
    at: Evaluation,
    options: Options = DAGSTER,
) -> UpstreamResult:
    """Upstream partitions that `downstream_keys` (of `downstream`) need, Dagster-exact."""
    now = int(at.as_of.timestamp())  # `now_of`, inline on the hottest path
    question = _question("up", upstream, downstream, mapping, options)
    windows = question.windows
    if windows is None:
        situations = _situations(question, upstream, downstream, now)
    else:
        # A time-window side's situation is its bounds; both hold a while (`bounds_holding`).
        held = question.bounds
        if not held[0] <= now < held[1]:
            up_held, down_held = windows[0].bounds_holding(now), windows[1].bounds_holding(now)
            held = (
                max(up_held[0], down_held[0]),
                min(up_held[1], down_held[1]),
                up_held[2],
                down_held[2],
            )
            question.bounds = held
        up_bounds, down_bounds = held[2], held[3]
        situations = (up_bounds, down_bounds)
        span = question.span
        if span is not None and len(downstream_keys) == 1 and fast_paths.enabled():
            checked = question.checked
            is_checked = checked[0] is up_bounds and checked[1] is down_bounds
            if not is_checked and situations in question.prepared:
                question.checked, is_checked = situations, True
            if is_checked:
                # One key of a checked question with a fast path: answered directly and not
                # memoised, since remembering an answer costs about what answering it does.
                partitions = span.upstream_of_key(downstream_keys[0], now, up_bounds, down_bounds)
                if partitions is not None:
                    return UpstreamResult(partitions, span.nothing)
    memo_key = (question, tuple(downstream_keys), situations) if question.memoised else None
    if memo_key is not None:
        known = _ANSWERS.get(memo_key)
        if isinstance(known, UpstreamResult):
            return known
    result = _upstream(
        question, upstream, downstream, mapping, downstream_keys, at, options, situations, now
    )
    _remember(memo_key, result)
    return result


def _upstream(
    question: _Question,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    downstream_keys: Sequence[str],
    at: Evaluation,
    options: Options,
    situations: tuple[object, object],
    now: int,
) -> UpstreamResult:
    resolved = question.prepared.get(situations)
    if resolved is None:
        resolved = _prepare(question, upstream, downstream, mapping, options, now, situations)
    windows = question.windows
    checked_at = _keys_checked_at(downstream, downstream_keys, at, options)
    checked_now = now if checked_at is at else now_of(checked_at)
    if windows is None:
        indices = _check_keys(downstream, downstream_keys, checked_at, checked_now)
    else:
        indices = windows[1].check_keys(downstream_keys, checked_now)
        span = question.span
        if span is not None and indices and fast_paths.enabled():
            fast = _upstream_of_one_run(span, indices, now, situations[0])  # type: ignore[arg-type]
            if fast is not None:
                return fast
    if upstream is None:
        return UpstreamResult(whole_asset=True)
    source = (
        None if downstream is None else _source_subset(downstream, downstream_keys, indices, at)
    )
    try:
        mapped = map_up(resolved, downstream, source, upstream, at)
    except (MappingError, InvalidPartitionKey) as error:
        raise MappingError(error.message, "mapping") from None
    missing = _as_subset(upstream, mapped.required_but_nonexistent, at)
    statuses = mapped.statuses
    if not statuses and len(missing):
        statuses = tuple(classify_key(upstream, key, at) for key in missing)
    return UpstreamResult(
        partitions=_as_subset(upstream, mapped.partitions, at),
        required_but_nonexistent=missing,
        nonexistent=tuple(status for status in statuses if status.state is not KeyState.EXISTS),
    )


def _span_mapping(
    windows: tuple[TimeWindows, TimeWindows], mapping: PartitionMapping
) -> SpanMapping | None:
    """The fast path of a checked question, if it has one: a time-window mapping without
    offsets between time-window definitions without exclusions."""
    upstream, downstream = windows
    if (
        not isinstance(mapping, TimeWindowMapping)
        or mapping.start_offset != 0
        or mapping.end_offset != 0
        or upstream.has_exclusions
        or downstream.has_exclusions
    ):
        return None
    return SpanMapping(downstream, upstream)


def _upstream_of_one_run(
    span: SpanMapping, indices: list[int], now: int, bounds: tuple[int, int] | None
) -> UpstreamResult | None:
    """The answer for checked keys (their tick indices) that are one run of consecutive
    windows whose upstream windows all exist, as the general path gives it; None for any
    other question."""
    first, last = min(indices), max(indices)
    if len(indices) > 1 and len(set(indices)) != last - first + 1:
        return None
    partitions = span.upstream(first, last + 1, now, bounds)
    return None if partitions is None else UpstreamResult(partitions, span.nothing)


def _situations(
    question: _Question,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    now: int,
) -> tuple[object, object]:
    """Which partitions exist on each side at `now`: all that `now` changes in an answer."""
    windows = question.windows
    if windows is not None:
        return windows[0].bounds(now), windows[1].bounds(now)
    return _situation(upstream, now), _situation(downstream, now)


def downstream_partitions(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    upstream_keys: Sequence[str],
    at: Evaluation,
    options: Options = DAGSTER,
) -> DownstreamResult:
    """Downstream partitions that use `upstream_keys` (of `upstream`), Dagster-exact."""
    now = now_of(at)
    question = _question("down", upstream, downstream, mapping, options)
    situations = _situations(question, upstream, downstream, now)
    memo_key = (question, tuple(upstream_keys), situations) if question.memoised else None
    known = _ANSWERS.get(memo_key) if memo_key is not None else None
    if isinstance(known, DownstreamResult):
        return known
    result = _downstream(
        question, upstream, downstream, mapping, upstream_keys, at, options, situations
    )
    _remember(memo_key, result)
    return result


def _downstream(
    question: _Question,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    upstream_keys: Sequence[str],
    at: Evaluation,
    options: Options,
    situations: tuple[object, object],
) -> DownstreamResult:
    now = now_of(at)
    resolved = _prepare(question, upstream, downstream, mapping, options, now, situations)
    checked_at = _keys_checked_at(upstream, upstream_keys, at, options)
    checked_now = now if checked_at is at else now_of(checked_at)
    indices = _check_keys(upstream, upstream_keys, checked_at, checked_now)
    if downstream is None:
        return DownstreamResult(whole_asset=True)
    if upstream is None:
        return DownstreamResult(partitions=all_partitions(downstream, at))
    source = _source_subset(upstream, upstream_keys, indices, at)
    try:
        mapped = map_down(resolved, upstream, source, downstream, at)
    except (MappingError, InvalidPartitionKey) as error:
        raise MappingError(error.message, "mapping") from None
    return DownstreamResult(partitions=_as_subset(downstream, mapped, at))


# Answers are pure functions of the definitions, mapping, keys and options, and of `now` only
# through which partitions exist: a question asked again (schedulers poll) is answered from
# this memo until a tick or an end is crossed. Dynamic keys come with each request, so answers
# that involve dynamic definitions are never memoised.
# Thread safety: entries set whole; answers are never changed after they are built.
_ANSWERS: dict[tuple[object, ...], UpstreamResult | DownstreamResult] = {}
_ANSWER_MEMO_SIZE = 4096


def involves_dynamic(definition: PartitionsDefinition | None) -> bool:
    if isinstance(definition, DynamicPartitions):
        return True
    if isinstance(definition, MultiPartitions):
        return any(involves_dynamic(dimension.partitions) for dimension in definition.dimensions)
    return False


def clear_memos(compiled: bool = True) -> None:
    """Forget every interned question and remembered answer, and with `compiled` every
    compiled definition: the next question starts from nothing, as on a new server (tests
    compare such first answers, and the fast and general paths)."""
    global _last_question
    _QUESTIONS.clear()
    _ANSWERS.clear()
    _last_question = ("", None, None, None, None, _Question("", False, None))
    if compiled:
        compile_time_windows.cache_clear()
        forget_listed_positions()


def _remember(key: tuple[object, ...] | None, result: UpstreamResult | DownstreamResult) -> None:
    if key is None:
        return
    if len(_ANSWERS) >= _ANSWER_MEMO_SIZE:
        _ANSWERS.clear()
    _ANSWERS[key] = result


def _prepare(
    question: _Question,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    options: Options,
    now: int,
    situations: tuple[object, object],
) -> PartitionMapping:
    # The checks depend on `now` only through which partitions exist: memoised by that.
    known = question.prepared.get(situations)
    if known is None:
        known = _prepare_uncached(upstream, downstream, mapping, options, now)
        if question.windows is not None and question.direction == "up":
            question.span = _span_mapping(question.windows, known)
        if len(question.prepared) > 64:
            question.prepared.clear()
        question.prepared[situations] = known
    return known


def _situation(definition: PartitionsDefinition | None, now: int) -> object:
    if isinstance(definition, TimeWindowPartitions):
        return compile_time_windows(definition).bounds(now)
    if isinstance(definition, MultiPartitions):
        return tuple(_situation(dimension.partitions, now) for dimension in definition.dimensions)
    return None


def _prepare_uncached(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    options: Options,
    now: int,
) -> PartitionMapping:
    at = Evaluation(datetime.fromtimestamp(now, UTC))
    for field, definition in (("upstream", upstream), ("downstream", downstream)):
        if definition is not None:
            try:
                validate_definition(definition, options, at)
            except InvalidDefinition as error:
                raise error.at(field) from None
    return resolve_mapping(upstream, downstream, mapping)


def _keys_checked_at(
    definition: PartitionsDefinition | None,
    keys: Sequence[str],
    at: Evaluation,
    options: Options,
) -> Evaluation:
    """When the queried keys must be partitions: at `at` (the same object, so callers reuse its
    `now_of`), or with `options.keys_not_yet` once the last of them that does not exist yet
    will (they are still mapped at `at`)."""
    if not options.keys_not_yet or definition is None:
        return at
    instants = [s.available_at for s in keys_not_yet(definition, keys, at) if s.available_at]
    if not instants or max(instants) <= at.as_of:
        return at
    return Evaluation(max(instants), at.dynamic_keys)


def _check_keys(
    definition: PartitionsDefinition | None, keys: Sequence[str], at: Evaluation, now: int
) -> list[int] | None:
    """Raise on the first key that is not a partition; time keys give their tick indices."""
    if definition is None:
        if keys:
            raise InvalidPartitionKey(
                "the asset is not partitioned: give no partition keys", "partition_keys"
            )
        return None
    if isinstance(definition, TimeWindowPartitions):
        return compile_time_windows(definition).check_keys(keys, now)
    for index, key in enumerate(keys):
        try:
            check_key(definition, key, at)
        except PartitionDepsError as error:
            raise InvalidPartitionKey(error.message, f"partition_keys[{index}]") from None
    return None


def _source_subset(
    definition: PartitionsDefinition,
    keys: Sequence[str],
    indices: list[int] | None,
    at: Evaluation,
) -> Keys:
    """The queried (already checked) keys as the subset Dagster builds from them."""
    if not isinstance(definition, TimeWindowPartitions) or indices is None:
        return subset_with_keys(definition, keys, at)
    windows = compile_time_windows(definition)
    if not windows.has_exclusions:
        # Without exclusions Dagster's merge joins exactly the touching windows: runs of
        # consecutive tick indices.
        ordered = sorted(set(indices))
        spans: list[Window] = []
        run_start = previous = ordered[0] if ordered else 0
        for index in ordered[1:]:
            if index != previous + 1:
                spans.append(Window(windows.tick(run_start), windows.window(previous).end))
                run_start = index
            previous = index
        if ordered:
            spans.append(Window(windows.tick(run_start), windows.window(previous).end))
        return TimeSubset(windows, spans)
    parts = [windows.window(index) for index in indices]
    if len(parts) == 1:
        return TimeSubset(windows, parts)
    return TimeSubset.from_key_windows(windows, parts)


def _as_subset(definition: PartitionsDefinition, keys: Keys, at: Evaluation) -> Subset:
    if isinstance(keys, TimeSubset):
        return keys
    if isinstance(keys, tuple):
        return KeySubset(keys)
    return KeySubset(tuple(order_keys(definition, key_list(keys), at)))
