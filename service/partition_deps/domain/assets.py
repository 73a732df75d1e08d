"""Assets as registered: a key, an optional partitions definition, a code version, dependencies,
whether the asset is an observable source, and its automation condition."""

from __future__ import annotations

from dataclasses import dataclass

from partition_deps.domain.automation.conditions import Condition
from partition_deps.domain.definitions import PartitionsDefinition
from partition_deps.domain.mappings.kinds import PartitionMapping


@dataclass(frozen=True)
class Dependency:
    """`mapping=None` means Dagster's inferred default for the two definitions."""

    upstream_key: str
    mapping: PartitionMapping | None = None


@dataclass(frozen=True)
class AssetDefinition:
    key: str
    partitions: PartitionsDefinition | None = None
    code_version: str | None = None
    dependencies: tuple[Dependency, ...] = ()
    # Produced outside and only observed (Dagster's `@observable_source_asset`): every
    # partition is FRESH, observed or not, and nothing plans it.
    observable_source: bool = False
    # How declarative automation decides to request the asset (None: never requested).
    automation_condition: Condition | None = None
