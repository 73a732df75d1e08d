"""docs/errors.md lists every reason the service gives, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from partition_deps.domain.errors import PartitionDepsError

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "service" / "partition_deps" / "api"


def _domain_reasons(kind: type[PartitionDepsError] = PartitionDepsError) -> set[str]:
    reasons = {kind.category.upper()}
    for subclass in kind.__subclasses__():
        reasons |= _domain_reasons(subclass)
    return reasons


def _api_reasons() -> set[str]:
    """Upper-case string literals of the API layer: reasons, less environment variables."""
    literals: set[str] = set()
    for module in API.glob("*.py"):
        literals |= set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', module.read_text()))
    return {literal for literal in literals if not literal.startswith("PD_")}


def test_every_reason_the_service_gives_is_documented_and_no_other() -> None:
    catalogue = (ROOT / "docs" / "errors.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", catalogue, re.MULTILINE))
    assert _domain_reasons() | _api_reasons() == documented
