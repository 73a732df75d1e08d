"""Disagreements with Dagster found by scripts/differential, fixed, and kept as cases.

Each expected answer was computed by Dagster 1.13.29 through the differential oracle (the same
steps as the conformance README). Known divergences we keep on purpose are listed in
README.md ("Known divergences from Dagster").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.cases import Case, answer, expected, load_cases

CASES = load_cases(Path(__file__).with_name("differential_cases.jsonl"))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_differential_case(case: Case) -> None:
    assert answer(case) == expected(case)
