"""Automation conditions as given: a tree of named nodes, as plain immutable values.

A condition is stored and returned exactly as the caller wrote it (presets stay presets).
`engine.py` expands the presets and the composite leaves into the primitive operators when it
evaluates them. The kinds and their fields are those of Dagster's `AutomationCondition`
constructors; the JSON form (`condition_from_json`/`condition_to_json`) uses the kind as
`type` and the field names below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from partition_deps.domain.compiled_windows import zone
from partition_deps.domain.cron import parse_cron
from partition_deps.domain.errors import InvalidDefinition, PartitionDepsError

# Kinds taking no field at all.
PLAIN_LEAVES = frozenset(
    {
        "eager",
        "on_missing",
        "missing",
        "newly_missing",
        "newly_updated",
        "newly_requested",
        "in_progress",
        "run_in_progress",
        "backfill_in_progress",
        "execution_failed",
        "initial_evaluation",
        "code_version_changed",
        "will_be_requested",
        "executed_with_root_target",
        "data_version_changed",
    }
)
# Kinds taking a cron schedule and its time zone.
CRON_KINDS = frozenset({"on_cron", "cron_tick_passed", "all_deps_updated_since_cron"})
# Dependency leaves: `any_deps_match` over a fixed operand, with optional allow/ignore.
DEPS_LEAVES = frozenset({"any_deps_updated", "any_deps_missing", "any_deps_in_progress"})
# Operators over a list of two or more operands.
LIST_OPERATORS = frozenset({"and", "or"})
# Operators over one operand.
UNARY_OPERATORS = frozenset({"not", "newly_true", "since_last_handled"})
DEPS_OPERATORS = frozenset({"any_deps_match", "all_deps_match"})
KINDS = (
    PLAIN_LEAVES
    | CRON_KINDS
    | DEPS_LEAVES
    | LIST_OPERATORS
    | UNARY_OPERATORS
    | DEPS_OPERATORS
    | {"since", "in_latest_time_window"}
)
# Deeper trees are refused: evaluation recurses once per level.
MAX_DEPTH = 32
# Larger trees are refused: each node is evaluated (and stored per tick) for every asset.
MAX_NODES = 256


@dataclass(frozen=True)
class Condition:
    """One node. Which fields a node uses depends on its `kind`:

    - `operands`: `and`/`or` (two or more), `not`/`newly_true`/`since_last_handled`/
      `any_deps_match`/`all_deps_match` (exactly one), `since` (trigger then reset);
    - `cron_schedule`, `cron_timezone`: `on_cron`, `cron_tick_passed`,
      `all_deps_updated_since_cron`;
    - `lookback_seconds`: `in_latest_time_window` (None: the latest window only);
    - `allow`, `ignore`: asset keys narrowing the dependencies of the `*_deps_*` kinds
      (None: not given).
    """

    kind: str
    operands: tuple[Condition, ...] = ()
    cron_schedule: str = ""
    cron_timezone: str = ""
    lookback_seconds: float | None = None
    allow: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None

    @property
    def operand(self) -> Condition:
        return self.operands[0]


def validate_condition(condition: Condition) -> None:
    """Raise InvalidDefinition naming the path of the first bad node (`and.operands[2]....`)."""
    count = _validate(condition, "", 1)
    if count > MAX_NODES:
        raise InvalidDefinition(f"the condition has {count} nodes; at most {MAX_NODES} are allowed")


def _validate(node: Condition, path: str, depth: int) -> int:
    here = f"{path}.{node.kind}" if path else node.kind
    if node.kind not in KINDS:
        raise InvalidDefinition(f"unknown condition kind {node.kind[:100]!r}", path)
    if depth > MAX_DEPTH:
        raise InvalidDefinition(f"the condition is nested deeper than {MAX_DEPTH} levels", here)
    expected = _operand_count(node.kind)
    if expected == -1 and len(node.operands) < 2:
        raise InvalidDefinition(f"{node.kind} needs two or more operands", f"{here}.operands")
    if expected >= 0 and len(node.operands) != expected:
        raise InvalidDefinition(
            f"{node.kind} takes {expected} operand(s), got {len(node.operands)}",
            f"{here}.{_operand_field(node.kind, 0) if expected == 1 else 'operands'}",
        )
    if node.kind in CRON_KINDS:
        _validate_cron(node, here)
    lookback = node.lookback_seconds
    if lookback is not None and (not lookback > 0 or lookback > 1e10):
        raise InvalidDefinition(
            "lookback_seconds must be positive (and under 1e10)", f"{here}.lookback_seconds"
        )
    for name, keys in (("allow", node.allow), ("ignore", node.ignore)):
        if keys is None:
            continue
        if node.kind not in DEPS_LEAVES | DEPS_OPERATORS:
            raise InvalidDefinition(f"{node.kind} takes no {name} list", f"{here}.{name}")
        for index, key in enumerate(keys):
            if not key:
                raise InvalidDefinition("an asset key must not be empty", f"{here}.{name}[{index}]")
    count = 1
    for index, child in enumerate(node.operands):
        count += _validate(child, f"{here}.{_operand_field(node.kind, index)}", depth + 1)
    return count


def _operand_count(kind: str) -> int:
    """Operands a kind takes: -1 for two or more."""
    if kind in LIST_OPERATORS:
        return -1
    if kind in UNARY_OPERATORS or kind in DEPS_OPERATORS:
        return 1
    return 2 if kind == "since" else 0


def _operand_field(kind: str, index: int) -> str:
    """The field that holds operand `index`, as the JSON and protobuf forms name it."""
    if kind in LIST_OPERATORS:
        return f"operands[{index}]"
    if kind == "since":
        return ("trigger", "reset")[index]
    return "operand"


def _validate_cron(node: Condition, here: str) -> None:
    try:
        parse_cron(node.cron_schedule)
    except PartitionDepsError as error:
        raise InvalidDefinition(error.message, f"{here}.cron_schedule") from None
    try:
        zone(node.cron_timezone)
    except PartitionDepsError as error:
        raise InvalidDefinition(error.message, f"{here}.cron_timezone") from None


# ----- JSON form ------------------------------------------------------------------------


def condition_from_json(data: Any, path: str = "") -> Condition:
    """A condition from its JSON form; InvalidDefinition names the path of a bad node."""
    if not isinstance(data, Mapping):
        raise InvalidDefinition("a condition must be an object with a 'type'", path)
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in KINDS:
        shown = str(kind)[:100]
        raise InvalidDefinition(f"unknown condition type {shown!r}", f"{path}.type".lstrip("."))
    here = f"{path}.{kind}" if path else kind
    operands: list[Condition] = []
    if kind in LIST_OPERATORS:
        items = data.get("operands")
        if not isinstance(items, list):
            raise InvalidDefinition(f"{kind} needs a list of operands", f"{here}.operands")
        operands = [
            condition_from_json(item, f"{here}.operands[{index}]")
            for index, item in enumerate(items)
        ]
    elif kind == "since":
        operands = [
            condition_from_json(data.get("trigger"), f"{here}.trigger"),
            condition_from_json(data.get("reset"), f"{here}.reset"),
        ]
    elif kind in UNARY_OPERATORS or kind in DEPS_OPERATORS:
        operands = [condition_from_json(data.get("operand"), f"{here}.operand")]
    lookback = data.get("lookback_seconds")
    if isinstance(lookback, bool) or not isinstance(lookback, int | float | None):
        raise InvalidDefinition("lookback_seconds must be a number", f"{here}.lookback_seconds")
    node = Condition(
        kind=kind,
        operands=tuple(operands),
        cron_schedule=_text(data, "cron_schedule", here) if kind in CRON_KINDS else "",
        cron_timezone=_text(data, "cron_timezone", here, "UTC") if kind in CRON_KINDS else "",
        lookback_seconds=None if lookback is None else float(lookback),
        allow=_keys(data, "allow", here),
        ignore=_keys(data, "ignore", here),
    )
    if not path:
        validate_condition(node)
    return node


def _text(data: Mapping[str, Any], name: str, here: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str):
        raise InvalidDefinition(f"{name} must be a string", f"{here}.{name}")
    return value


def _keys(data: Mapping[str, Any], name: str, here: str) -> tuple[str, ...] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidDefinition(f"{name} must be a list of asset keys", f"{here}.{name}")
    return tuple(value)


def condition_to_json(node: Condition) -> dict[str, Any]:
    data: dict[str, Any] = {"type": node.kind}
    if node.kind in LIST_OPERATORS:
        data["operands"] = [condition_to_json(child) for child in node.operands]
    elif node.kind == "since":
        data["trigger"] = condition_to_json(node.operands[0])
        data["reset"] = condition_to_json(node.operands[1])
    elif node.operands:
        data["operand"] = condition_to_json(node.operand)
    if node.kind in CRON_KINDS:
        data["cron_schedule"] = node.cron_schedule
        data["cron_timezone"] = node.cron_timezone
    if node.lookback_seconds is not None:
        data["lookback_seconds"] = node.lookback_seconds
    if node.allow is not None:
        data["allow"] = list(node.allow)
    if node.ignore is not None:
        data["ignore"] = list(node.ignore)
    return data
