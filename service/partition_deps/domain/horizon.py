"""How long an answer stays true: the next instant at which the passage of time may change it.

For given definitions and dynamic keys, an answer depends on `as_of` only through which
partitions of each time-window definition (or time dimension) exist then, which changes only
at the definition's cron ticks and its end (see `TimeWindows.next_change`). Static and dynamic
definitions do not change with time (dynamic keys change with the namespace generation).
"""

from __future__ import annotations

from collections.abc import Iterable

from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import (
    MultiPartitions,
    PartitionsDefinition,
    TimeWindowPartitions,
)


def _time_definitions(definition: PartitionsDefinition | None) -> Iterable[TimeWindowPartitions]:
    if isinstance(definition, TimeWindowPartitions):
        yield definition
    elif isinstance(definition, MultiPartitions):
        for dimension in definition.dimensions:
            if isinstance(dimension.partitions, TimeWindowPartitions):
                yield dimension.partitions


def valid_until(definitions: Iterable[PartitionsDefinition | None], now: int) -> int | None:
    """The first instant (UTC seconds) after `now` at which an answer that involves only
    `definitions`, given at `now`, may change; None: never by the passage of time alone.

    An answer given at `now` is the answer at every instant in `[now, valid_until)`.
    """
    changes = [
        change
        for definition in definitions
        for time_definition in _time_definitions(definition)
        if (change := compile_time_windows(time_definition).next_change(now)) is not None
    ]
    return min(changes, default=None)
