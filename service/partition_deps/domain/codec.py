"""Domain values <-> JSON, in the format of the conformance cases (tests/conformance/cases.jsonl:
definitions, mappings and keys as Dagster's own names and fields).

The one reader and writer of that format: the store keeps definitions and mappings in it, the
conformance tests and the differential fuzzer read whole questions and write answers in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from partition_deps.domain import definitions as defs
from partition_deps.domain.dependencies import downstream_partitions, upstream_partitions
from partition_deps.domain.errors import InvalidDefinition, InvalidMapping, PartitionDepsError
from partition_deps.domain.mappings import kinds

Json = dict[str, Any]
T = TypeVar("T")


def definition_to_json(definition: defs.PartitionsDefinition | None) -> Json | None:
    match definition:
        case None:
            return None
        case defs.TimeWindowPartitions():
            return {
                "type": "time_window",
                "cron_schedule": definition.cron_schedule,
                "start": definition.start.isoformat(),
                "end": None if definition.end is None else definition.end.isoformat(),
                "timezone": definition.timezone,
                "fmt": definition.fmt,
                "end_offset": definition.end_offset,
                "exclusions": [
                    e.isoformat() if isinstance(e, datetime) else e for e in definition.exclusions
                ],
            }
        case defs.StaticPartitions():
            return {"type": "static", "keys": list(definition.keys)}
        case defs.DynamicPartitions():
            return {"type": "dynamic", "name": definition.name}
        case defs.MultiPartitions():
            return {
                "type": "multi",
                "dimensions": [
                    {"name": d.name, "partitions": definition_to_json(d.partitions)}
                    for d in definition.dimensions
                ],
            }


def _wall_time(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError) as error:
        raise InvalidDefinition(f"not an ISO wall time: {text!r}", field) from error
    if value.tzinfo is not None:
        raise InvalidDefinition(f"wall time must not carry an offset: {text!r}", field)
    return value


def _exclusion(entry: str) -> str | datetime:
    """An exclusion is a wall time when it parses as one, otherwise a cron string."""
    try:
        value = datetime.fromisoformat(entry)
    except ValueError:
        return entry
    return value if value.tzinfo is None else entry


def _parsed(
    data: Mapping[str, Any] | None,
    parse: Callable[[Mapping[str, Any]], T],
    error: type[PartitionDepsError],
    what: str,
) -> T | None:
    """`parse(data)`, a missing field or an unknown `type` (None) refused as `error` naming it."""
    if data is None:
        return None
    try:
        parsed = parse(data)
    except KeyError as missing:
        raise error(f"missing field {missing.args[0]!r}", str(missing.args[0])) from missing
    if parsed is None:
        raise error(f"unknown {what} type {data.get('type')!r}", "type")
    return parsed


def definition_from_json(data: Mapping[str, Any] | None) -> defs.PartitionsDefinition | None:
    """Parse one definition; raises InvalidDefinition (with a field) for malformed input."""
    return _parsed(data, _definition, InvalidDefinition, "partitions definition")


def _definition(data: Mapping[str, Any]) -> defs.PartitionsDefinition | None:
    kind = data["type"]
    if kind == "time_window":
        end = data.get("end")
        return defs.TimeWindowPartitions(
            cron_schedule=str(data["cron_schedule"]),
            start=_wall_time(data["start"], "start"),
            timezone=str(data.get("timezone") or "UTC"),
            fmt=str(data.get("fmt") or "%Y-%m-%d"),
            end=None if end is None else _wall_time(end, "end"),
            end_offset=int(data.get("end_offset", 0)),
            exclusions=tuple(_exclusion(str(e)) for e in data.get("exclusions", [])),
        )
    if kind == "static":
        return defs.StaticPartitions(tuple(str(k) for k in data["keys"]))
    if kind == "dynamic":
        return defs.DynamicPartitions(str(data["name"]))
    if kind == "multi":
        dimensions = []
        for index, raw in enumerate(data["dimensions"]):
            inner = definition_from_json(raw["partitions"])
            if inner is None or isinstance(inner, defs.MultiPartitions):
                raise InvalidDefinition(
                    "a multi dimension must be a time-window, static or dynamic definition",
                    f"dimensions[{index}].partitions",
                )
            dimensions.append(defs.Dimension(str(raw["name"]), inner))
        return defs.MultiPartitions(tuple(dimensions))
    return None


def mapping_to_json(mapping: kinds.PartitionMapping | None) -> Json | None:
    match mapping:
        case None:
            return None
        case kinds.IdentityMapping():
            return {"type": "identity"}
        case kinds.AllMapping():
            return {"type": "all"}
        case kinds.LastMapping():
            return {"type": "last"}
        case kinds.TimeWindowMapping():
            return {
                "type": "time_window",
                "start_offset": mapping.start_offset,
                "end_offset": mapping.end_offset,
                "allow_nonexistent_upstream_partitions": (
                    mapping.allow_nonexistent_upstream_partitions
                ),
            }
        case kinds.StaticMapping():
            return {
                "type": "static",
                "downstream_partition_keys_by_upstream_partition_key": {
                    up: list(downs) for up, downs in mapping.downstream_keys_by_upstream_key
                },
            }
        case kinds.SpecificMapping():
            return {"type": "specific", "partition_keys": list(mapping.keys)}
        case kinds.MultiToSingleDimensionMapping():
            return {
                "type": "multi_to_single_dimension",
                "partition_dimension_name": mapping.dimension_name,
            }
        case kinds.MultiMapping():
            return {
                "type": "multi",
                "downstream_mappings_by_upstream_dimension": {
                    d.upstream_dimension: {
                        "dimension_name": d.downstream_dimension,
                        "partition_mapping": mapping_to_json(d.mapping),
                    }
                    for d in mapping.dimensions
                },
            }


def _downstream_keys(downs: str | list[str]) -> tuple[str, ...]:
    """A static mapping's downstream keys: a list, or one key as a bare string (as Dagster's
    StaticPartitionMapping takes it), never a string split into its characters."""
    if isinstance(downs, str):
        return (downs,)
    return tuple(str(d) for d in downs)


def mapping_from_json(data: Mapping[str, Any] | None) -> kinds.PartitionMapping | None:
    """Parse one mapping; raises InvalidMapping (with a field) for malformed input."""
    return _parsed(data, _mapping, InvalidMapping, "partition mapping")


def _mapping(data: Mapping[str, Any]) -> kinds.PartitionMapping | None:
    kind = data["type"]
    if kind == "identity":
        return kinds.IdentityMapping()
    if kind == "all":
        return kinds.AllMapping()
    if kind == "last":
        return kinds.LastMapping()
    if kind == "time_window":
        return kinds.TimeWindowMapping(
            start_offset=int(data.get("start_offset", 0)),
            end_offset=int(data.get("end_offset", 0)),
            allow_nonexistent_upstream_partitions=bool(
                data.get("allow_nonexistent_upstream_partitions", False)
            ),
        )
    if kind == "static":
        table = data["downstream_partition_keys_by_upstream_partition_key"]
        return kinds.StaticMapping(
            tuple((str(up), _downstream_keys(downs)) for up, downs in table.items())
        )
    if kind == "specific":
        return kinds.SpecificMapping(tuple(str(k) for k in data["partition_keys"]))
    if kind == "multi_to_single_dimension":
        name = data.get("partition_dimension_name")
        return kinds.MultiToSingleDimensionMapping(None if name is None else str(name))
    if kind == "multi":
        dimensions = []
        for upstream_dimension, raw in data["downstream_mappings_by_upstream_dimension"].items():
            inner = mapping_from_json(raw["partition_mapping"])
            if inner is None:
                raise InvalidMapping(
                    "a dimension mapping needs a partition_mapping",
                    f"downstream_mappings_by_upstream_dimension.{upstream_dimension}",
                )
            dimensions.append(
                kinds.DimensionMapping(str(upstream_dimension), str(raw["dimension_name"]), inner)
            )
        return kinds.MultiMapping(tuple(dimensions))
    return None


@dataclass(frozen=True)
class Question:
    """One conformance question: which keys of the other asset the given keys map to."""

    id: str
    upstream: defs.PartitionsDefinition | None
    downstream: defs.PartitionsDefinition | None
    mapping: kinds.PartitionMapping | None
    direction: str
    partition_keys: tuple[str, ...]
    evaluation: defs.Evaluation


def question_from_json(data: Mapping[str, Any]) -> Question:
    """Parse one question; raises InvalidDefinition/InvalidMapping for malformed parts."""
    return Question(
        id=str(data.get("id", "")),
        upstream=definition_from_json(data["upstream"]),
        downstream=definition_from_json(data["downstream"]),
        mapping=mapping_from_json(data["mapping"]),
        direction=str(data["direction"]),
        partition_keys=tuple(str(key) for key in data["partition_keys"]),
        evaluation=defs.Evaluation(
            as_of=datetime.fromisoformat(data["as_of"]),
            dynamic_keys=data.get("dynamic_partitions", {}),
        ),
    )


def answer_to_json(data: Mapping[str, Any]) -> Json:
    """The domain core's answer to one question, in the format of a case's `expected`: keys,
    the whole asset, or the error category with its message."""
    try:
        question = question_from_json(data)
        args = (question.upstream, question.downstream, question.mapping)
        if question.direction == "upstream":
            up = upstream_partitions(*args, question.partition_keys, question.evaluation)
            if not up.whole_asset:
                return {
                    "partition_keys": list(up.partitions),
                    "required_but_nonexistent": list(up.required_but_nonexistent),
                }
        else:
            down = downstream_partitions(*args, question.partition_keys, question.evaluation)
            if not down.whole_asset:
                return {"partition_keys": list(down.partitions), "required_but_nonexistent": []}
    except PartitionDepsError as error:
        return {"error": error.category, "message": str(error)}
    return {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
