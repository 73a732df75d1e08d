"""Domain errors: each names the offending field and falls into one Dagster error category."""

from __future__ import annotations


class PartitionDepsError(ValueError):
    """A request the domain refuses. `field` is a dotted path to the offending input."""

    category = "invalid_argument"

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def at(self, prefix: str) -> PartitionDepsError:
        """A new error of this kind, its field path under `prefix`: an error once raised is
        never changed, so a caller that catches it to name a field raises this one instead."""
        return type(self)(self.message, f"{prefix}.{self.field}" if self.field else prefix)


class InvalidDefinition(PartitionDepsError):
    """A partitions definition Dagster refuses to build or to load."""

    category = "invalid_definition"


class InvalidMapping(PartitionDepsError):
    """A partition mapping that does not fit the two definitions it connects."""

    category = "invalid_mapping"


class TimezoneMismatch(InvalidMapping):
    """A time-window mapping between definitions in different time zones."""

    category = "timezone_mismatch"


class InvalidPartitionKey(PartitionDepsError):
    """A key that is not a partition of its definition at the evaluation time."""

    category = "invalid_partition_key"


class MappingError(PartitionDepsError):
    """A mapping that loaded but cannot map the keys it was given."""

    category = "mapping_error"


class OutsideCalendar(PartitionDepsError):
    """A question that reaches beyond the years the tick tables cover (`domain/years.py`)."""

    category = "outside_calendar_range"
