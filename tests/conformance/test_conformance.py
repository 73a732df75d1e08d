"""Every Dagster conformance case through the domain core: same keys, same order, same errors."""

from __future__ import annotations

import pytest

from partition_deps.domain import fast_paths
from partition_deps.domain.dependencies import clear_memos
from tests.conformance.cases import Case, answer, expected, load_cases

CASES = load_cases()


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
