"""Questions about one partitions definition of any kind: validity, keys, order, existence."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from partition_deps.domain.compiled_windows import TimeWindows, Window, compile_time_windows
from partition_deps.domain.definitions import (
    Dimension,
    DynamicPartitions,
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import (
    InvalidDefinition,
    InvalidPartitionKey,
    PartitionDepsError,
)
from partition_deps.domain.results import KeyState, KeyStatus, KeySubset, Subset
from partition_deps.domain.subsets import TimeSubset

MULTI_KEY_DELIMITER = "|"
_FORBIDDEN_STATIC_SUBSTRING = "..."
_FORBIDDEN_STATIC_CHARACTERS = frozenset("\a\b\f\n\r\t\v\0")
_FORBIDDEN_DIMENSION_CHARACTERS = frozenset("|,[]")


@dataclass(frozen=True)
class Options:
    """Where we differ from Dagster, the better behaviour is opt-in."""

    max_dimensions: int | None = 2  # Dagster allows exactly two; None allows two or more
    # Dagster refuses a queried key whose partition does not exist yet (a window still in
    # progress, or later); True maps it at the evaluation time as if it existed.
    keys_not_yet: bool = False


DAGSTER = Options()


def now_of(at: Evaluation) -> int:
    return int(at.as_of.timestamp())


def sorted_dimensions(definition: MultiPartitions) -> tuple[Dimension, ...]:
    return tuple(sorted(definition.dimensions, key=lambda dimension: dimension.name))


# ----- validation -------------------------------------------------------------------------


def validate_definition(
    definition: PartitionsDefinition, options: Options = DAGSTER, at: Evaluation | None = None
) -> None:
    """Raise InvalidDefinition (with the field) if Dagster would refuse the definition.

    With `at`, the fmt check runs as Dagster runs it at load time: only when at least two
    partitions exist then. Without it (registration), it always runs.
    """
    if isinstance(definition, TimeWindowPartitions):
        _validate_time_windows(definition, at)
    elif isinstance(definition, StaticPartitions):
        _validate_static(definition)
    elif isinstance(definition, DynamicPartitions):
        if not definition.name:
            raise InvalidDefinition("a dynamic partitions definition needs a name", "name")
    else:
        _validate_multi(definition, options)


def _validate_construction(definition: PartitionsDefinition) -> None:
    """What Dagster checks when it builds a multi dimension: not the fmt (Dagster only runs
    its load-time fmt check on a whole time-window definition, never on a dimension)."""
    if isinstance(definition, TimeWindowPartitions):
        compile_time_windows(definition)  # raises on a bad cron, exclusion or zone
    elif isinstance(definition, StaticPartitions):
        _validate_static(definition)
    elif isinstance(definition, DynamicPartitions) and not definition.name:
        raise InvalidDefinition("a dynamic partitions definition needs a name", "name")


def _validate_static(definition: StaticPartitions) -> None:
    seen: set[str] = set()
    for index, key in enumerate(definition.keys):
        if _FORBIDDEN_STATIC_SUBSTRING in key:
            raise InvalidDefinition(f"static key {key!r} contains '...'", f"keys[{index}]")
        if _FORBIDDEN_STATIC_CHARACTERS & set(key):
            raise InvalidDefinition(
                f"static key {key!r} contains a control character", f"keys[{index}]"
            )
        if key in seen:
            raise InvalidDefinition(f"duplicate static key {key!r}", f"keys[{index}]")
        seen.add(key)


def _validate_multi(definition: MultiPartitions, options: Options) -> None:
    count = len(definition.dimensions)
    if count < 2 or (options.max_dimensions is not None and count > options.max_dimensions):
        allowed = "exactly 2" if options.max_dimensions == 2 else "at least 2"
        raise InvalidDefinition(
            f"a multi partitions definition needs {allowed} dimensions, got {count}",
            "dimensions",
        )
    names = [dimension.name for dimension in definition.dimensions]
    if len(set(names)) != len(names):
        raise InvalidDefinition("dimension names must be unique", "dimensions")
    for index, dimension in enumerate(definition.dimensions):
        field = f"dimensions[{index}].partitions"
        if not isinstance(
            dimension.partitions, TimeWindowPartitions | StaticPartitions | DynamicPartitions
        ):
            raise InvalidDefinition("multi definitions cannot be nested", field)
        try:
            _validate_construction(dimension.partitions)
        except InvalidDefinition as error:
            raise error.at(field) from None
        if isinstance(dimension.partitions, StaticPartitions):
            for key_index, key in enumerate(dimension.partitions.keys):
                if _FORBIDDEN_DIMENSION_CHARACTERS & set(key):
                    raise InvalidDefinition(
                        f"key {key!r} of dimension {dimension.name!r} contains one of | , [ ]",
                        f"{field}.keys[{key_index}]",
                    )


def _validate_time_windows(definition: TimeWindowPartitions, at: Evaluation | None) -> None:
    windows = compile_time_windows(definition)  # raises on a bad cron or zone
    if at is None and definition.end is not None and definition.end < definition.start:
        raise InvalidDefinition("end is before start", "end")
    # Dagster's load-time check: the key after the first must differ from it. It runs on the
    # first partition at load time; a fmt that cannot parse its own keys fails here too.
    first = windows.first_window_index()
    if first is None:
        raise InvalidDefinition(
            "the definition has no window: its cron never fires, or every tick is excluded",
            "exclusions" if definition.exclusions else "cron_schedule",
        )
    last_end: int | None = None
    if at is not None:
        full = windows.full_window(now_of(at))
        if full is None:
            return
        last_end = full.end
    first_key = windows.key_at(first)
    try:
        parsed = windows.parse_instant(first_key)
    except InvalidPartitionKey:
        raise InvalidDefinition(
            f"fmt {definition.fmt!r} cannot parse its own key {first_key!r}", "fmt"
        ) from None
    following_index = windows.next_window_index(windows.window_index_from(parsed))
    if last_end is not None and windows.tick(following_index) >= last_end:
        return
    following = windows.key_at(following_index)
    if following == first_key:
        raise InvalidDefinition(
            f"fmt {definition.fmt!r} is too coarse for cron {definition.cron_schedule!r}: "
            f"several windows share the key {first_key!r}",
            "fmt",
        )


# ----- keys of a definition -----------------------------------------------------------


def time_windows(definition: TimeWindowPartitions) -> TimeWindows:
    return compile_time_windows(definition)


def all_time_subset(windows: TimeWindows, now: int, listing: bool = True) -> TimeSubset:
    """Every partition at `now`: Dagster's listing (`get_partition_keys`) by default, or its
    `subset_with_all_partitions` (`listing=False`). They differ only when the end falls
    before the first window ends: the listing still yields the first window, the subset is
    empty (and the membership test accepts no key)."""
    edges = windows.first_and_last(now)
    if edges is None:
        return TimeSubset(windows, ())
    first, last = edges
    if last.start < first.start:
        return TimeSubset(windows, (first,) if listing else ())
    return TimeSubset(windows, (Window(first.start, last.end),))


def dynamic_keys(definition: DynamicPartitions, at: Evaluation) -> Sequence[str]:
    return at.dynamic_keys.get(definition.name, ())


def _dimension_keys(partitions: PartitionsDefinition, at: Evaluation) -> list[str]:
    keys = list(all_partitions(partitions, at))
    if isinstance(partitions, DynamicPartitions):
        # Dagster drops dynamic keys that would break the multi key syntax.
        keys = [key for key in keys if MULTI_KEY_DELIMITER not in key]
    return keys


def all_partitions(definition: PartitionsDefinition, at: Evaluation) -> Subset:
    """Every partition that exists at `at.as_of`, in the definition's order."""
    if isinstance(definition, TimeWindowPartitions):
        return all_time_subset(compile_time_windows(definition), now_of(at))
    if isinstance(definition, StaticPartitions):
        return KeySubset(definition.keys)
    if isinstance(definition, DynamicPartitions):
        return KeySubset(tuple(dynamic_keys(definition, at)))
    per_dimension = [
        _dimension_keys(dimension.partitions, at) for dimension in sorted_dimensions(definition)
    ]
    return KeySubset(
        tuple(MULTI_KEY_DELIMITER.join(parts) for parts in itertools.product(*per_dimension))
    )


def check_key(definition: PartitionsDefinition, key: str, at: Evaluation) -> None:
    """Raise InvalidPartitionKey unless `key` is a partition at `at.as_of` (Dagster's rule)."""
    if isinstance(definition, TimeWindowPartitions):
        compile_time_windows(definition).check_key(key, now_of(at))
    elif isinstance(definition, StaticPartitions):
        if key not in static_positions(definition):
            raise InvalidPartitionKey(f"{key!r} is not one of the static keys")
    elif isinstance(definition, DynamicPartitions):
        if key not in at.key_positions(definition.name):
            raise InvalidPartitionKey(
                f"{key!r} has not been added to dynamic partitions {definition.name!r}"
            )
    else:
        parts = key.split(MULTI_KEY_DELIMITER)
        dimensions = sorted_dimensions(definition)
        if len(parts) != len(dimensions):
            raise InvalidPartitionKey(
                f"{key!r} must have {len(dimensions)} parts joined by '|', in the order "
                + ", ".join(dimension.name for dimension in dimensions)
            )
        for part, dimension in zip(parts, dimensions, strict=True):
            try:
                check_key(dimension.partitions, part, at)
            except InvalidPartitionKey as error:
                raise InvalidPartitionKey(
                    f"{key!r}: dimension {dimension.name!r}: {error.message}"
                ) from None


def first_bad_key(
    definition: PartitionsDefinition, keys: Sequence[str], at: Evaluation
) -> tuple[int, str] | None:
    """The position of the first key that is not a partition at `at.as_of`, and why; None
    when every key is one. Time-window keys are checked together (runs in one step)."""
    if isinstance(definition, TimeWindowPartitions):
        try:
            compile_time_windows(definition).check_keys(keys, now_of(at))
        except InvalidPartitionKey:
            pass  # which one: below
        else:
            return None
    for position, key in enumerate(keys):
        try:
            check_key(definition, key, at)
        except InvalidPartitionKey as error:
            return position, error.message
    return None


def first_unrecordable_key(
    definition: PartitionsDefinition, keys: Sequence[str], at: Evaluation
) -> tuple[int, str] | None:
    """As `first_bad_key`, but a key that is not a partition yet at `at.as_of` and will be one
    (a time window in progress or to come) is fine: Dagster records events for it (a run
    writing today's partition), and queries read it once its window ends."""
    bad = first_bad_key(definition, keys, at)
    if bad is None or not _partition_later(definition, keys[bad[0]], at):
        return bad
    for position in range(bad[0] + 1, len(keys)):
        key = keys[position]
        reason = _refusal(definition, key, at)
        if reason and not _partition_later(definition, key, at):
            return position, reason
    return None


def _refusal(definition: PartitionsDefinition, key: str, at: Evaluation) -> str:
    """Why `key` is not a partition at `at.as_of`; empty when it is one."""
    try:
        check_key(definition, key, at)
    except InvalidPartitionKey as error:
        return error.message
    return ""


def _partition_later(definition: PartitionsDefinition, key: str, at: Evaluation) -> bool:
    """Whether `key` is not a partition at `at.as_of` only because its time window has not
    ended yet."""
    if isinstance(definition, TimeWindowPartitions):
        return classify_key(definition, key, at).state is KeyState.NOT_YET
    if not isinstance(definition, MultiPartitions):
        return False
    parts = key.split(MULTI_KEY_DELIMITER)
    dimensions = sorted_dimensions(definition)
    return len(parts) == len(dimensions) and all(
        has_key(dimension.partitions, part, at) or _partition_later(dimension.partitions, part, at)
        for dimension, part in zip(dimensions, parts, strict=True)
    )


def has_key(definition: PartitionsDefinition, key: str, at: Evaluation) -> bool:
    try:
        check_key(definition, key, at)
    except InvalidPartitionKey:
        return False
    return True


# Thread safety: each entry is built whole, then set in one assignment; never changed after.
_LISTED_POSITIONS: dict[tuple[TimeWindows, object], dict[str, int]] = {}


def _listed_positions(windows: TimeWindows, now: int) -> dict[str, int]:
    """Key -> start instant of its first window in Dagster's listing (bounded in size),
    memoised by which partitions exist."""
    memo_key = (windows, windows.bounds(now))
    positions = _LISTED_POSITIONS.get(memo_key)
    if positions is None:
        positions = {}
        subset = all_time_subset(windows, now)
        if len(subset) <= 200_000:
            for key, window in zip(subset, subset.window_list(), strict=True):
                positions.setdefault(key, window.start)
        if len(_LISTED_POSITIONS) > 64:
            _LISTED_POSITIONS.clear()
        _LISTED_POSITIONS[memo_key] = positions
    return positions


# Thread safety: each entry is built whole, then set in one assignment; never changed after.
_STATIC_POSITIONS: dict[StaticPartitions, dict[str, int]] = {}


def forget_listed_positions() -> None:
    """Drop the listing memos, which hold compiled definitions."""
    _LISTED_POSITIONS.clear()


def static_positions(definition: StaticPartitions) -> dict[str, int]:
    positions = _STATIC_POSITIONS.get(definition)
    if positions is None:
        positions = {key: index for index, key in enumerate(definition.keys)}
        if len(_STATIC_POSITIONS) > 1024:
            _STATIC_POSITIONS.clear()
        _STATIC_POSITIONS[definition] = positions
    return positions


def order_keys(definition: PartitionsDefinition, keys: Iterable[str], at: Evaluation) -> list[str]:
    """Keys in the definition's enumeration order at `at`; unknown keys last, by code point."""
    unique = set(keys)
    known: list[tuple[tuple[int, ...], str]] = []
    unknown: list[str] = []
    for key in unique:
        position = _position(definition, key, at)
        if position is None:
            unknown.append(key)
        else:
            known.append((position, key))
    known.sort()
    return [key for _, key in known] + sorted(unknown)


def _position(definition: PartitionsDefinition, key: str, at: Evaluation) -> tuple[int, ...] | None:
    if isinstance(definition, TimeWindowPartitions):
        windows = compile_time_windows(definition)
        now = now_of(at)
        try:
            index = windows.check_key(key, now)
        except InvalidPartitionKey:
            # A coarse fmt lists keys its own membership test refuses; Dagster orders set
            # answers by the listing, so look the key up there.
            listed = _listed_positions(windows, now).get(key)
            return None if listed is None else (listed,)
        return (windows.tick(index),)
    if isinstance(definition, StaticPartitions):
        static_index = static_positions(definition).get(key)
        return None if static_index is None else (static_index,)
    if isinstance(definition, DynamicPartitions):
        dynamic_index = at.key_positions(definition.name).get(key)
        return None if dynamic_index is None else (dynamic_index,)
    parts = key.split(MULTI_KEY_DELIMITER)
    dimensions = sorted_dimensions(definition)
    if len(parts) != len(dimensions):
        return None
    position: tuple[int, ...] = ()
    for part, dimension in zip(parts, dimensions, strict=True):
        part_position = _position(dimension.partitions, part, at)
        if part_position is None:
            return None
        position += part_position
    return position


# ----- three states -----------------------------------------------------------------------


def classify_time_key(windows: TimeWindows, index: int, now: int) -> KeyStatus:
    """Why the window at tick `index` is not a partition at `now`, and when it will be."""
    window = windows.window(index)
    key = windows.key_at(index)
    first = windows.window(windows.window_index_from(windows.start_ts))
    if window.start < first.start:
        return KeyStatus(key, KeyState.NEVER, "before the first partition")
    if windows.end_ts is not None and window.end > windows.end_ts:
        return KeyStatus(key, KeyState.NEVER, "after the end of the partitions definition")
    bounds = windows.bounds(now)
    if bounds is not None and bounds[0] <= window.start <= bounds[1]:
        return KeyStatus(key, KeyState.EXISTS, "")
    available = _available_at(windows, index)
    return KeyStatus(
        key,
        KeyState.NOT_YET,
        "the window has not ended yet" if windows.end_offset <= 0 else "not yet in range",
        datetime.fromtimestamp(available, UTC),
    )


def _available_at(windows: TimeWindows, index: int) -> int:
    offset = windows.end_offset
    if offset == 0:
        return windows.window(index).end
    if offset > 0:
        for _ in range(offset - 1):
            index = windows.prev_window_index(index)
        return windows.window(index).start
    for _ in range(-offset):
        index = windows.next_window_index(index)
    return windows.window(index).end


def statuses_in(windows: TimeWindows, span: Window, now: int) -> list[KeyStatus]:
    """Status of every non-partition window starting in `span`."""
    statuses = [classify_time_key(windows, index, now) for index in windows.keys_in_window(span)]
    return [status for status in statuses if status.state is not KeyState.EXISTS]


def classify_key(definition: PartitionsDefinition, key: str, at: Evaluation) -> KeyStatus:
    """Status of a key that a non-time mapping asked for."""
    if has_key(definition, key, at):
        return KeyStatus(key, KeyState.EXISTS, "")
    if isinstance(definition, TimeWindowPartitions):
        windows = compile_time_windows(definition)
        try:
            instant = windows.parse_instant(key)
        except InvalidPartitionKey:
            return KeyStatus(key, KeyState.NEVER, "not a key of this definition")
        index = windows.window_index_from(instant)
        if windows.key_at(index) == key:
            return classify_time_key(windows, index, now_of(at))
        return KeyStatus(key, KeyState.NEVER, "not a key of this definition")
    if isinstance(definition, DynamicPartitions):
        return KeyStatus(key, KeyState.NEVER, "not added to (or deleted from) the dynamic set")
    return KeyStatus(key, KeyState.NEVER, "not a key of this definition")


def keys_not_yet(
    definition: PartitionsDefinition, keys: Sequence[str], at: Evaluation
) -> tuple[KeyStatus, ...]:
    """The keys of a time-window definition that are not partitions at `at` but will be, each
    with the instant it will exist; every other key (a partition, or one that never will be)
    is left out."""
    if not isinstance(definition, TimeWindowPartitions):
        return ()
    statuses = (classify_key(definition, key, at) for key in dict.fromkeys(keys))
    return tuple(status for status in statuses if status.state is KeyState.NOT_YET)


# ----- key <-> time -----------------------------------------------------------------------


def _time_windows_of(definition: PartitionsDefinition) -> TimeWindows:
    if not isinstance(definition, TimeWindowPartitions):
        raise PartitionDepsError("only time-window partitions have time windows", "definition")
    return compile_time_windows(definition)


def time_window_for_key(definition: PartitionsDefinition, key: str) -> tuple[datetime, datetime]:
    """The `[start, end)` instants of a key, whether or not the partition exists yet."""
    windows = _time_windows_of(definition)
    instant = windows.parse_instant(key)
    index = windows.window_index_from(instant)
    if windows.key_at(index) != key:
        raise InvalidPartitionKey(
            f"{key!r} is not a partition key: the window starting then is {windows.key_at(index)!r}"
        )
    window = windows.window(index)
    return datetime.fromtimestamp(window.start, UTC), datetime.fromtimestamp(window.end, UTC)


def key_for_timestamp(
    definition: PartitionsDefinition, timestamp: datetime, end_closed: bool = False
) -> str:
    """The key of the window containing `timestamp` (the previous one on a boundary when
    `end_closed`), as Dagster's `get_partition_key_for_timestamp`."""
    windows = _time_windows_of(definition)
    return windows.key_for_timestamp(int(timestamp.timestamp()), end_closed)
