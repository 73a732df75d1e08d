"""Reading the Dagster conformance cases (tests/conformance/cases.jsonl) into domain values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from partition_deps.domain import codec
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition
from partition_deps.domain.mappings.kinds import PartitionMapping

CASES_PATH = Path(__file__).with_name("cases.jsonl")


@dataclass(frozen=True)
class Case:
    id: str
    raw: Mapping[str, Any]

    @property
    def question(self) -> codec.Question:
        return codec.question_from_json(self.raw)

    @property
    def upstream(self) -> PartitionsDefinition | None:
        return self.question.upstream

    @property
    def downstream(self) -> PartitionsDefinition | None:
        return self.question.downstream

    @property
    def mapping(self) -> PartitionMapping | None:
        return self.question.mapping

    @property
    def evaluation(self) -> Evaluation:
        return self.question.evaluation


def load_cases(path: Path = CASES_PATH) -> list[Case]:
    with path.open() as lines:
        return [Case(raw["id"], raw) for raw in map(json.loads, lines)]


def answer(case: Case) -> dict[str, Any]:
    """The domain core's answer without the error message (only the category must match)."""
    result = codec.answer_to_json(case.raw)
    result.pop("message", None)
    return result


def expected(case: Case) -> dict[str, Any]:
    result = dict(case.raw["expected"])
    result.pop("message", None)
    return result
