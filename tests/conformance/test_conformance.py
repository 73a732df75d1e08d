"""Every Dagster conformance case through the domain core: same keys, same order, same errors."""

from __future__ import annotations

from typing import Any

import pytest

from partition_deps.domain import fast_paths
from partition_deps.domain.dependencies import (
    clear_memos,
    downstream_partitions,
    upstream_partitions,
)
from partition_deps.domain.errors import PartitionDepsError
from tests.conformance.cases import Case, load_cases

CASES = load_cases()


def answer(case: Case) -> dict[str, Any]:
    raw = case.raw
    try:
        if raw["direction"] == "upstream":
            up = upstream_partitions(
                case.upstream, case.downstream, case.mapping, raw["partition_keys"], case.evaluation
            )
            if up.whole_asset:
                return {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
            return {
                "partition_keys": list(up.partitions),
                "required_but_nonexistent": list(up.required_but_nonexistent),
            }
        down = downstream_partitions(
            case.upstream, case.downstream, case.mapping, raw["partition_keys"], case.evaluation
        )
        if down.whole_asset:
            return {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
        return {"partition_keys": list(down.partitions), "required_but_nonexistent": []}
    except PartitionDepsError as error:
        return {"error": error.category}


def expected(case: Case) -> dict[str, Any]:
    result = dict(case.raw["expected"])
    result.pop("message", None)
    return result


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case: Case) -> None:
    assert answer(case) == expected(case)


def test_every_case_answers_the_same_with_the_fast_layer_off() -> None:
    fast_paths.force_general_path(True)
    clear_memos(compiled=False)
    try:
        wrong = [case.id for case in CASES if answer(case) != expected(case)]
    finally:
        fast_paths.force_general_path(False)
        clear_memos(compiled=False)
    assert wrong == []
