"""The JSON codec round-trips every definition and mapping of the conformance cases."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from partition_deps.domain import codec
from partition_deps.domain.definitions import TimeWindowPartitions
from partition_deps.domain.errors import InvalidDefinition, InvalidMapping
from partition_deps.domain.mappings.kinds import StaticMapping

CASES = Path(__file__).parent.parent / "conformance" / "cases.jsonl"


def test_every_conformance_definition_and_mapping_round_trips() -> None:
    count = 0
    for line in CASES.read_text().splitlines():
        case = json.loads(line)
        for side in ("upstream", "downstream"):
            definition = codec.definition_from_json(case[side])
            assert codec.definition_to_json(definition) == case[side], case["id"]
        mapping = codec.mapping_from_json(case["mapping"])
        assert codec.mapping_to_json(mapping) == case["mapping"], case["id"]
        count += 1
    assert count == 1091


def test_exclusions_distinguish_wall_times_from_crons() -> None:
    definition = codec.definition_from_json(
        {
            "type": "time_window",
            "cron_schedule": "0 0 * * *",
            "start": "2024-01-01T00:00:00",
            "end": None,
            "timezone": "UTC",
            "fmt": "%Y-%m-%d",
            "end_offset": 0,
            "exclusions": ["0 0 * * 6,0", "2024-02-05T00:00:00"],
        }
    )
    assert isinstance(definition, TimeWindowPartitions)
    assert definition.exclusions == ("0 0 * * 6,0", datetime(2024, 2, 5))


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "time_window", "cron_schedule": "@daily"}, "start"),
        ({"type": "time_window", "cron_schedule": "@daily", "start": "yesterday"}, "start"),
        ({"type": "circle"}, "type"),
        (
            {"type": "multi", "dimensions": [{"name": "a", "partitions": None}]},
            "dimensions[0].partitions",
        ),
    ],
)
def test_malformed_definitions_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidDefinition) as raised:
        codec.definition_from_json(data)
    assert raised.value.field == field


def test_malformed_mapping_names_the_field() -> None:
    with pytest.raises(InvalidMapping) as raised:
        codec.mapping_from_json({"type": "specific"})
    assert raised.value.field == "partition_keys"


def test_a_bare_string_of_static_downstream_keys_is_one_key() -> None:
    mapping = codec.mapping_from_json(
        {
            "type": "static",
            "downstream_partition_keys_by_upstream_partition_key": {"us": "amer", "eu": ["emea"]},
        }
    )
    assert mapping == StaticMapping((("us", ("amer",)), ("eu", ("emea",))))


def test_an_answer_in_the_format_of_a_case() -> None:
    question = {
        "upstream": {"type": "static", "keys": ["us", "eu"]},
        "downstream": {"type": "static", "keys": ["amer", "emea"]},
        "mapping": {
            "type": "static",
            "downstream_partition_keys_by_upstream_partition_key": {"us": "amer", "eu": "emea"},
        },
        "direction": "upstream",
        "partition_keys": ["amer"],
        "as_of": "2024-03-01T00:00:00+00:00",
        "dynamic_partitions": {},
    }
    assert codec.answer_to_json(question) == {
        "partition_keys": ["us"],
        "required_but_nonexistent": [],
    }
    unknown = dict(question, partition_keys=["apac"])
    assert codec.answer_to_json(unknown)["error"] == "invalid_partition_key"
