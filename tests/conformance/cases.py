"""Reading the Dagster conformance cases (tests/conformance/cases.jsonl) into domain values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from partition_deps.domain.definitions import (
    Dimension,
    DynamicPartitions,
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
    TimeWindowPartitions,
)
from partition_deps.domain.mappings.kinds import (
    AllMapping,
    DimensionMapping,
    IdentityMapping,
    LastMapping,
    MultiMapping,
    MultiToSingleDimensionMapping,
    PartitionMapping,
    SpecificMapping,
    StaticMapping,
    TimeWindowMapping,
)

CASES_PATH = Path(__file__).with_name("cases.jsonl")


@dataclass(frozen=True)
class Case:
    id: str
    raw: Mapping[str, Any]

    @property
    def upstream(self) -> PartitionsDefinition | None:
        return definition_from_json(self.raw["upstream"])

    @property
    def downstream(self) -> PartitionsDefinition | None:
        return definition_from_json(self.raw["downstream"])

    @property
    def mapping(self) -> PartitionMapping | None:
        return mapping_from_json(self.raw["mapping"])

    @property
    def evaluation(self) -> Evaluation:
        return Evaluation(
            as_of=datetime.fromisoformat(self.raw["as_of"]),
            dynamic_keys=self.raw["dynamic_partitions"],
        )


def load_cases() -> list[Case]:
    with CASES_PATH.open() as lines:
        return [Case(raw["id"], raw) for raw in map(json.loads, lines)]


def definition_from_json(data: Mapping[str, Any] | None) -> PartitionsDefinition | None:
    if data is None:
        return None
    kind = data["type"]
    if kind == "time_window":
        return TimeWindowPartitions(
            cron_schedule=data["cron_schedule"],
            start=datetime.fromisoformat(data["start"]),
            timezone=data["timezone"],
            fmt=data["fmt"],
            end=None if data["end"] is None else datetime.fromisoformat(data["end"]),
            end_offset=data["end_offset"],
            exclusions=tuple(_exclusion(item) for item in data["exclusions"]),
        )
    if kind == "static":
        return StaticPartitions(tuple(data["keys"]))
    if kind == "dynamic":
        return DynamicPartitions(data["name"])
    return MultiPartitions(
        tuple(
            Dimension(item["name"], definition_from_json(item["partitions"]))  # type: ignore[arg-type]
            for item in data["dimensions"]
        )
    )


def _exclusion(item: str) -> str | datetime:
    try:
        return datetime.fromisoformat(item)
    except ValueError:
        return item


def mapping_from_json(data: Mapping[str, Any] | None) -> PartitionMapping | None:
    if data is None:
        return None
    kind = data["type"]
    if kind == "identity":
        return IdentityMapping()
    if kind == "all":
        return AllMapping()
    if kind == "last":
        return LastMapping()
    if kind == "time_window":
        return TimeWindowMapping(
            data["start_offset"], data["end_offset"], data["allow_nonexistent_upstream_partitions"]
        )
    if kind == "static":
        table = data["downstream_partition_keys_by_upstream_partition_key"]
        return StaticMapping(
            tuple(
                (key, (value,) if isinstance(value, str) else tuple(value))
                for key, value in table.items()
            )
        )
    if kind == "specific":
        return SpecificMapping(tuple(data["partition_keys"]))
    if kind == "multi_to_single_dimension":
        return MultiToSingleDimensionMapping(data["partition_dimension_name"])
    return MultiMapping(
        tuple(
            DimensionMapping(
                upstream,
                item["dimension_name"],
                mapping_from_json(item["partition_mapping"]),  # type: ignore[arg-type]
            )
            for upstream, item in data["downstream_mappings_by_upstream_dimension"].items()
        )
    )
