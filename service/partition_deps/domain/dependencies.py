"""Entry points: which partitions of one asset depend on which partitions of another.

Each answer is computed the way Dagster computes it at asset-graph level: definitions are
validated, the mapping is inferred when none is given and validated against both sides, the
queried keys are checked at `at.as_of`, then the mapping runs. Unpartitioned sides are
special-cased before the mapping is consulted, as Dagster's asset graph does.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

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
from partition_deps.domain.mappings.engine import map_down, map_up
from partition_deps.domain.mappings.inference import resolve_mapping
from partition_deps.domain.mappings.keysets import Keys, key_list, subset_with_keys
from partition_deps.domain.mappings.kinds import PartitionMapping
from partition_deps.domain.partitions import (
    DAGSTER,
    Options,
    all_partitions,
    check_key,
    classify_key,
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
from partition_deps.domain.timewindow import Window, compile_time_windows

__all__ = [
    "downstream_partitions",
    "resolve_mapping",
    "upstream_partitions",
    "validate_definition",
]


def upstream_partitions(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    downstream_keys: Sequence[str],
    at: Evaluation,
    options: Options = DAGSTER,
) -> UpstreamResult:
    """Upstream partitions that `downstream_keys` (of `downstream`) need, Dagster-exact."""
    now = now_of(at)
    situations = (_situation(upstream, now), _situation(downstream, now))
    memo_key = _answer_key(
        "up", upstream, downstream, mapping, downstream_keys, options, situations
    )
    known = _ANSWERS.get(memo_key) if memo_key is not None else None
    if isinstance(known, UpstreamResult):
        return known
    result = _upstream(upstream, downstream, mapping, downstream_keys, at, options, situations)
    _remember(memo_key, result)
    return result


def _upstream(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    downstream_keys: Sequence[str],
    at: Evaluation,
    options: Options,
    situations: tuple[object, object],
) -> UpstreamResult:
    resolved = _prepare(upstream, downstream, mapping, at, options, situations)
    indices = _check_keys(downstream, downstream_keys, at)
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
    situations = (_situation(upstream, now), _situation(downstream, now))
    memo_key = _answer_key(
        "down", upstream, downstream, mapping, upstream_keys, options, situations
    )
    known = _ANSWERS.get(memo_key) if memo_key is not None else None
    if isinstance(known, DownstreamResult):
        return known
    result = _downstream(upstream, downstream, mapping, upstream_keys, at, options, situations)
    _remember(memo_key, result)
    return result


def _downstream(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    upstream_keys: Sequence[str],
    at: Evaluation,
    options: Options,
    situations: tuple[object, object],
) -> DownstreamResult:
    resolved = _prepare(upstream, downstream, mapping, at, options, situations)
    indices = _check_keys(upstream, upstream_keys, at)
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
_ANSWERS: dict[tuple[object, ...], UpstreamResult | DownstreamResult] = {}
_ANSWER_MEMO_SIZE = 4096


def _answer_key(
    direction: str,
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    keys: Sequence[str],
    options: Options,
    situations: tuple[object, object],
) -> tuple[object, ...] | None:
    if _involves_dynamic(upstream) or _involves_dynamic(downstream):
        return None
    return (direction, upstream, downstream, mapping, tuple(keys), options, situations)


def _involves_dynamic(definition: PartitionsDefinition | None) -> bool:
    if isinstance(definition, DynamicPartitions):
        return True
    if isinstance(definition, MultiPartitions):
        return any(_involves_dynamic(dimension.partitions) for dimension in definition.dimensions)
    return False


def _remember(key: tuple[object, ...] | None, result: UpstreamResult | DownstreamResult) -> None:
    if key is None:
        return
    if len(_ANSWERS) >= _ANSWER_MEMO_SIZE:
        _ANSWERS.clear()
    _ANSWERS[key] = result


def _prepare(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
    at: Evaluation,
    options: Options,
    situations: tuple[object, object],
) -> PartitionMapping:
    key = (upstream, downstream, mapping, options, situations)
    known = _PREPARED.get(key)
    if known is None:
        known = _prepare_uncached(upstream, downstream, mapping, options, now_of(at))
        if len(_PREPARED) > 4096:
            _PREPARED.clear()
        _PREPARED[key] = known
    return known


# Definitions and mappings are immutable values: their checks are memoised (errors are not,
# so a bad definition is re-checked and re-reported each time). The checks depend on `now`
# only through which partitions exist, so the memo is keyed by that, not by `now`.
_PREPARED: dict[tuple[object, ...], PartitionMapping] = {}


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


def _check_keys(
    definition: PartitionsDefinition | None, keys: Sequence[str], at: Evaluation
) -> list[int] | None:
    """Raise on the first key that is not a partition; time keys give their tick indices."""
    if definition is None:
        if keys:
            raise InvalidPartitionKey(
                "the asset is not partitioned: give no partition keys", "partition_keys"
            )
        return None
    if isinstance(definition, TimeWindowPartitions):
        return compile_time_windows(definition).check_keys(keys, now_of(at))
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
