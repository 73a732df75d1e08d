"""Per-request limits, in one place. Each refusal names the limit and its value.

The request size itself is bounded by gRPC (`--max-message-bytes`, RESOURCE_EXHAUSTED with
"Received message larger than max (N vs. LIMIT)").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc

from partition_deps.api.errors import ApiError
from partition_deps.domain.cron import Cron, parse_cron
from partition_deps.domain.definitions import (
    DynamicPartitions,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.years import FIRST_TABLE_YEAR, LAST_TABLE_YEAR

# Keys named or selected by one request (explicit keys, and ranges once expanded).
MAX_KEYS_PER_REQUEST = 100_000
# Partitions a range selection (`all`, `key_range`, `time_range`) may scan to find its keys.
MAX_RANGE_EXPANSION = 250_000
MAX_EVENTS_PER_REQUEST = 50_000
MAX_ASSETS_PER_REQUEST = 10_000
MAX_PAGE_SIZE = 10_000
# Partition offsets (time-window mappings, a definition's end_offset): each partition of
# offset costs domain work, and 10,000 daily partitions are already 27 years.
MAX_OFFSET = 10_000
# A run's lease (RunStarted.lease, --run-lease-seconds): a run silent longer is taken for dead.
MAX_RUN_LEASE = timedelta(days=30)


def check_offset(offset: int, field: str) -> None:
    if abs(offset) > MAX_OFFSET:
        raise ApiError(
            f"offset {offset} is beyond the limit of {MAX_OFFSET} partitions either way",
            field,
            reason="OFFSET_TOO_LARGE",
        )


def check_count(count: int, limit: int, what: str, field: str, reason: str) -> None:
    """RESOURCE_EXHAUSTED when `count` exceeds `limit`."""
    if count > limit:
        raise ApiError(
            f"{count} {what}; the limit is {limit} per request",
            field,
            reason=reason,
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )


# Partitions one definition may span (time windows up to now or their end; the product of a
# multi definition's static and time-window dimensions). The domain compiles a time-window
# definition into a table of every tick of the years it spans (about 100 bytes a tick), so an
# every-minute cron started decades ago would cost gigabytes: such a definition is refused.
MAX_DEFINITION_PARTITIONS = 3_000_000
# Partitions one GetStaleness or PlanRuns answer covers, counted at its as_of: 100,000 take
# about 70 ms; the in-memory copies they read cost about 350 bytes a partition.
MAX_STALENESS_PARTITIONS = 1_000_000


def estimated_partitions(definition: PartitionsDefinition, now: datetime) -> int:
    """An upper bound of the ticks the domain tabulates for `definition` (0 if unknown)."""

    def tabulated(time_windows: TimeWindowPartitions, cron: Cron) -> int:
        per_day = len(cron.minutes) * len(cron.hours_of_day)
        per_year = per_day * 366 * (len(cron.months) if cron.months is not None else 12) // 12
        low, high = FIRST_TABLE_YEAR, LAST_TABLE_YEAR
        start = time_windows.start.year
        last = time_windows.end.year if time_windows.end is not None else now.year
        first_year = min(max(start, low), high) - 1
        last_year = min(max(last, start, low), high) + 1
        return per_year * (last_year - first_year + 1)

    return _upper_bound(definition, tabulated)


def partitions_at_most(definition: PartitionsDefinition, as_of: datetime) -> int:
    """An upper bound of the partitions of `definition` that exist at `as_of` (0 if unknown):
    cron ticks per day times the days from its start to `as_of` (or its end), two days more
    for the day in progress and a time zone's shift, plus its end_offset."""

    def existing(time_windows: TimeWindowPartitions, cron: Cron) -> int:
        until = as_of.astimezone(UTC).replace(tzinfo=None)
        if time_windows.end is not None:
            until = min(until, time_windows.end)
        days = max(0, (until - time_windows.start).days) + 2
        per_day = len(cron.minutes) * len(cron.hours_of_day)
        return per_day * days + max(0, time_windows.end_offset)

    return _upper_bound(definition, existing)


def _upper_bound(
    definition: PartitionsDefinition, time_windows: Callable[[TimeWindowPartitions, Cron], int]
) -> int:
    """What both bounds share: a static definition's key count, 0 for dynamic ones (known only
    at query time, keys are added one request at a time), the product over a multi
    definition's dimensions, and `time_windows` of a time-window definition and its cron."""
    if isinstance(definition, StaticPartitions):
        return len(definition.keys)
    if isinstance(definition, DynamicPartitions):
        return 0
    if isinstance(definition, MultiPartitions):
        product = 1
        for dimension in definition.dimensions:
            product *= max(1, _upper_bound(dimension.partitions, time_windows))
        return product
    try:
        cron = parse_cron(definition.cron_schedule)
    except PartitionDepsError:
        return 0  # validation reports the cron
    return time_windows(definition, cron)


def check_definition_size(definition: PartitionsDefinition, field: str) -> None:
    estimate = estimated_partitions(definition, datetime.now(UTC))
    if estimate > MAX_DEFINITION_PARTITIONS:
        raise ApiError(
            f"the definition spans about {estimate} partitions; the limit is"
            f" {MAX_DEFINITION_PARTITIONS} (use a coarser cron, a later start or an end)",
            field,
            reason="DEFINITION_TOO_LARGE",
            code=grpc.StatusCode.RESOURCE_EXHAUSTED,
        )
