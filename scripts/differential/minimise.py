"""What a disagreement is: its kind and signature, a smaller case that still shows it, and the
already-reported finding that explains it."""

from __future__ import annotations

import random
import re
import time
from typing import Any

from scripts.differential.oracle import oracle, ours, same, timed


def diff_kind(expected: dict[str, Any], got: dict[str, Any]) -> str:
    e, g = expected.get("error"), got.get("error")
    if e or g:
        return f"{e or 'answer'}->{g or 'answer'}"
    parts = []
    for field in ("partition_keys", "required_but_nonexistent", "whole_asset"):
        if expected.get(field) != got.get(field):
            a, b = expected.get(field) or [], got.get(field) or []
            if isinstance(a, list) and sorted(a) == sorted(b):
                parts.append(f"{field}:order")
            elif isinstance(a, list) and set(a) < set(b):
                parts.append(f"{field}:extra")
            elif isinstance(a, list) and set(b) < set(a):
                parts.append(f"{field}:missing")
            else:
                parts.append(f"{field}:differ")
    return ",".join(parts)


def _summary(data: dict[str, Any] | None) -> str:
    if data is None:
        return "none"
    if data["type"] == "time_window":
        return f"tw[{data['cron_schedule']}]"
    if data["type"] == "multi":
        return "multi(" + ",".join(_summary(d["partitions"]) for d in data["dimensions"]) + ")"
    return str(data["type"])


def _norm(message: str) -> str:
    message = re.sub(r"'[^']*'|`[^`]*`|\d+", "_", message)
    return message[:60]


def signature(case: dict[str, Any], expected: dict[str, Any], got: dict[str, Any]) -> str:
    mapping = case["mapping"]["type"] if case["mapping"] else "inferred"
    kind = diff_kind(expected, got)
    if "error" in expected or "error" in got:
        # error disagreements: group by the two messages' shapes, not by crons
        def shape(d: dict[str, Any] | None) -> str:
            if d is None:
                return "none"
            return "multi" if d["type"] == "multi" else d["type"]

        return " | ".join(
            [
                kind,
                mapping,
                shape(case["upstream"]),
                shape(case["downstream"]),
                _norm(got.get("message", "")),
                _norm(expected.get("message", "")),
            ]
        )
    return " | ".join(
        [kind, mapping, case["direction"], _summary(case["upstream"]), _summary(case["downstream"])]
    )


def disagree(case: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    expected = timed(oracle, case)
    got = timed(ours, case)
    if same(expected, got):
        return None
    return expected, got


def minimise(case: dict[str, Any], kind: str, budget: float = 60.0) -> dict[str, Any]:
    deadline = time.time() + budget

    def still(candidate: dict[str, Any]) -> bool:
        if time.time() > deadline:
            return False
        result = disagree(candidate)
        return result is not None and diff_kind(*result) == kind

    keys = case["partition_keys"]
    if len(keys) > 1:
        order = list(range(len(keys)))
        random.Random(0).shuffle(order)
        singles = [0, len(keys) - 1, *order[:30]]
        for index in singles:
            candidate = dict(case, partition_keys=[keys[index]])
            if still(candidate):
                case = candidate
                break
        else:
            while len(case["partition_keys"]) > 1 and time.time() < deadline:
                k = case["partition_keys"]
                half = len(k) // 2
                for part in (k[:half], k[half:]):
                    candidate = dict(case, partition_keys=part)
                    if still(candidate):
                        case = candidate
                        break
                else:
                    break
    # simplify definitions
    for side in ("upstream", "downstream"):
        data = case[side]
        if not data or data["type"] != "time_window":
            continue
        for field, value in (("exclusions", []), ("end", None), ("end_offset", 0)):
            if data[field] != value:
                candidate = dict(case, **{side: dict(case[side], **{field: value})})
                if still(candidate):
                    case = candidate
    if case["dynamic_partitions"]:
        candidate = dict(case, dynamic_partitions={})
        if still(candidate):
            case = candidate
    return case


def _time_defs(data: dict[str, Any] | None) -> list[dict[str, Any]]:
    if data is None:
        return []
    if data["type"] == "time_window":
        return [data]
    if data["type"] == "multi":
        return [
            d["partitions"] for d in data["dimensions"] if d["partitions"]["type"] == "time_window"
        ]
    return []


def known_pattern(
    case: dict[str, Any], expected: dict[str, Any], got: dict[str, Any]
) -> str | None:
    """Name the already-reported finding that explains a disagreement, if any."""
    message = got.get("message", "")
    defs = _time_defs(case["upstream"]) + _time_defs(case["downstream"])
    multi_dims = [
        d
        for side in ("upstream", "downstream")
        if (case[side] or {}).get("type") == "multi"
        for d in _time_defs(case[side])
    ]
    if "redefinition of group name" in message:
        return "d02"
    if (
        got.get("error") == "invalid_definition"
        and multi_dims
        and ("too coarse" in message or "cannot parse its own key" in message)
    ):
        return "d01"
    if multi_dims and not any("error" in x for x in (expected, got)):
        if any(
            len(set(x.get("partition_keys", []))) != len(x.get("partition_keys", []))
            for x in (expected, got)
        ):
            return "d10"
        if "order" in diff_kind(expected, got):
            return "d08"
    if (
        case["direction"] == "downstream"
        and case["mapping"]
        and case["mapping"]["type"] in ("all", "specific")
        and any(d["end"] for d in _time_defs(case["downstream"]))
    ):
        return "d09"
    if (
        case["direction"] == "upstream"
        and case["mapping"]
        and case["mapping"]["type"] == "identity"
        and any(d["end"] for d in _time_defs(case["upstream"]))
    ):
        return "d09c"
    if expected.get("error") in (
        "invalid_definition",
        "mapping_error",
    ) and "Invariant" in expected.get("message", ""):
        return "d11"
    if any("#" in d["cron_schedule"] and "*," in d["cron_schedule"] for d in defs):
        return "d13"
    if any("/" in f and "-" in f for d in defs for f in d["cron_schedule"].split()[:2]):
        return "d12"
    if got.get("error") == "outside_calendar_range":
        return "d03"
    if any("29 2" in d["cron_schedule"] for d in defs):
        return "d04"
    if (
        got.get("error") == "CRASH"
        and "IndexError" in message
        and any(d["exclusions"] for d in defs)
    ):
        return "d03"
    mappings = [case["mapping"]] if case["mapping"] else []
    if mappings and mappings[0]["type"] == "multi":
        mappings = [
            m["partition_mapping"]
            for m in mappings[0]["downstream_mappings_by_upstream_dimension"].values()
        ]
    if any(m["type"] == "time_window" and m["start_offset"] > m["end_offset"] for m in mappings):
        return "d06"
    if any(
        d["timezone"] == "Australia/Lord_Howe" and d["cron_schedule"].split()[1:2] == ["*"]
        for d in defs
    ):
        return "d07"
    return None
