"""Differential fuzzer: our domain core against real Dagster 1.13.29.

Runs only inside the Dagster venv (Dagster is never a runtime dependency of the service):

    /work/dagster-venv/bin/pip install -e /work/main --no-deps
    /work/dagster-venv/bin/pip install pendulum
    /work/dagster-venv/bin/python scripts/differential.py --check-oracle  # oracle vs cases.jsonl
    /work/dagster-venv/bin/python scripts/differential.py --cases 2000 --seed 1   # random cases
    /work/dagster-venv/bin/python scripts/differential.py --cron-syntax --cases 5000 --seed 1
    /work/dagster-venv/bin/python scripts/differential.py --cron-ticks --cases 300 --seed 1

The oracle computes an answer for a case dict in exactly the tests/conformance/cases.jsonl
format, following /work/shared/conformance/README.md ("How each answer was computed").
Each disagreement is printed as one JSON line: the case (with Dagster's answer as `expected`)
plus `ours`. `--findings FILE` appends new distinct patterns to a findings file.
"""

from __future__ import annotations

import argparse
import faulthandler
import functools
import json
import logging
import random
import signal
import sys
import time
import traceback
import warnings
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "service"))

warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)

import dagster as dg  # noqa: E402
from dagster._core.definitions.partitions.subset.all import AllPartitionsSubset  # noqa: E402
from dagster._core.definitions.partitions.subset.time_window import (  # noqa: E402
    TimeWindowPartitionsSubset,
)
from dagster._utils.schedules import is_valid_cron_schedule  # noqa: E402

from partition_deps.domain import codec  # noqa: E402

# --------------------------------------------------------------------------------------------
# Dagster oracle
# --------------------------------------------------------------------------------------------


class _Reject(Exception):
    def __init__(self, category: str, error: BaseException) -> None:
        super().__init__(category)
        self.category = category
        self.error = error


def _dg_definition(data: dict[str, Any] | None) -> Any:
    if data is None:
        return None
    kind = data["type"]
    if kind == "time_window":
        exclusions = []
        for item in data["exclusions"]:
            try:
                exclusions.append(datetime.fromisoformat(item))
            except ValueError:
                exclusions.append(item)
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=data["cron_schedule"],
            start=datetime.fromisoformat(data["start"]),
            end=None if data["end"] is None else datetime.fromisoformat(data["end"]),
            timezone=data["timezone"],
            fmt=data["fmt"],
            end_offset=data["end_offset"],
            exclusions=exclusions or None,
        )
    if kind == "static":
        return dg.StaticPartitionsDefinition(list(data["keys"]))
    if kind == "dynamic":
        return dg.DynamicPartitionsDefinition(name=data["name"])
    return dg.MultiPartitionsDefinition(
        {item["name"]: _dg_definition(item["partitions"]) for item in data["dimensions"]}
    )


def _dg_mapping(data: dict[str, Any] | None) -> Any:
    if data is None:
        return None
    kind = data["type"]
    if kind == "identity":
        return dg.IdentityPartitionMapping()
    if kind == "all":
        return dg.AllPartitionMapping()
    if kind == "last":
        return dg.LastPartitionMapping()
    if kind == "time_window":
        return dg.TimeWindowPartitionMapping(
            start_offset=data["start_offset"],
            end_offset=data["end_offset"],
            allow_nonexistent_upstream_partitions=data["allow_nonexistent_upstream_partitions"],
        )
    if kind == "static":
        table = data["downstream_partition_keys_by_upstream_partition_key"]
        return dg.StaticPartitionMapping(
            {k: (v if isinstance(v, str) else set(v)) for k, v in table.items()}
        )
    if kind == "specific":
        return dg.SpecificPartitionsPartitionMapping(list(data["partition_keys"]))
    if kind == "multi_to_single_dimension":
        return dg.MultiToSingleDimensionPartitionMapping(
            partition_dimension_name=data["partition_dimension_name"]
        )
    return dg.MultiPartitionMapping(
        {
            upstream: dg.DimensionPartitionMapping(
                dimension_name=item["dimension_name"],
                partition_mapping=_dg_mapping(item["partition_mapping"]),
            )
            for upstream, item in data["downstream_mappings_by_upstream_dimension"].items()
        }
    )


def _chain_text(error: BaseException) -> str:
    parts = []
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def _ordered(subset: Any, definition: Any) -> list[str]:
    keys = list(subset.get_partition_keys())
    if isinstance(subset, (TimeWindowPartitionsSubset, AllPartitionsSubset)):
        return keys  # Dagster's own (chronological / enumeration) order
    if not keys:
        return []
    enumeration = {key: index for index, key in enumerate(definition.get_partition_keys())}
    known = sorted((k for k in keys if k in enumeration), key=enumeration.__getitem__)
    unknown = sorted(k for k in keys if k not in enumeration)
    return known + unknown


def oracle(case: dict[str, Any]) -> dict[str, Any]:
    """Dagster's answer for one case, in the cases.jsonl `expected` format."""
    try:
        return _oracle(case)
    except _Reject as reject:
        return {"error": reject.category, "message": _chain_text(reject.error)[:500]}


def _oracle(case: dict[str, Any]) -> dict[str, Any]:
    as_of = datetime.fromisoformat(case["as_of"])
    instance = dg.DagsterInstance.ephemeral()
    for name, keys in case["dynamic_partitions"].items():
        for key in keys:
            instance.add_dynamic_partitions(name, [key])
    with dg.partition_loading_context(effective_dt=as_of, dynamic_partitions_store=instance):
        # 1. build
        try:
            up_def = _dg_definition(case["upstream"])
            down_def = _dg_definition(case["downstream"])
        except Exception as error:
            raise _Reject("invalid_definition", error) from None
        try:
            mapping = _dg_mapping(case["mapping"])
        except Exception as error:
            raise _Reject("invalid_mapping", error) from None
        # 2. validate definitions, upstream first
        for definition in (up_def, down_def):
            if definition is not None:
                try:
                    definition.validate_partition_definition()
                except Exception as error:
                    raise _Reject("invalid_definition", error) from None
        # 3. load
        try:

            @dg.asset(name="up", partitions_def=up_def)
            def _up() -> None: ...

            dep = (
                dg.AssetDep("up", partition_mapping=mapping)
                if mapping is not None
                else dg.AssetDep("up")
            )

            @dg.asset(name="down", partitions_def=down_def, deps=[dep])
            def _down() -> None: ...

            defs = dg.Definitions(assets=[_up, _down])
            dg.Definitions.validate_loadable(defs)
            graph = defs.resolve_asset_graph()
            resolved = graph.get_partition_mapping(dg.AssetKey("down"), dg.AssetKey("up"))
        except Exception as error:
            text = _chain_text(error)
            category = "timezone_mismatch" if "don't match" in text else "invalid_mapping"
            raise _Reject(category, error) from None
        # 4. keys
        keys = case["partition_keys"]
        queried = down_def if case["direction"] == "upstream" else up_def
        context = dg.partition_loading_context  # noqa: F841
        from dagster._core.definitions.partitions.context import _current_ctx

        ctx = _current_ctx.get()
        if queried is not None:
            for key in keys:
                try:
                    queried.validate_partition_key(key, ctx)
                except Exception as error:
                    raise _Reject("invalid_partition_key", error) from None
        # 5. map
        whole = {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
        try:
            if case["direction"] == "upstream":
                if up_def is None:
                    return whole
                subset = None if down_def is None else down_def.subset_with_partition_keys(keys)
                result = resolved.get_upstream_mapped_partitions_result_for_partitions(
                    subset, down_def, up_def
                )
                return {
                    "partition_keys": _ordered(result.partitions_subset, up_def),
                    "required_but_nonexistent": _ordered(
                        result.required_but_nonexistent_subset, up_def
                    ),
                }
            if down_def is None:
                return whole
            if up_def is None:
                return {
                    "partition_keys": list(down_def.get_partition_keys()),
                    "required_but_nonexistent": [],
                }
            subset = up_def.empty_subset().with_partition_keys(keys)
            result = resolved.get_downstream_partitions_for_partitions(subset, up_def, down_def)
            return {"partition_keys": _ordered(result, down_def), "required_but_nonexistent": []}
        except _Reject:
            raise
        except Exception as error:
            raise _Reject("mapping_error", error) from None


# --------------------------------------------------------------------------------------------
# Random case generator
# --------------------------------------------------------------------------------------------

DST_ZONES = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Europe/London",
    "America/Santiago",
    "Pacific/Auckland",
    "Asia/Tehran",
    "Australia/Lord_Howe",
]
ZONE_WEIGHTS = [6, 5, 5, 4, 4, 2, 3, 3, 3, 2, 2]

# (cron, grain); grain decides spans and fmts.
CRONS = [
    ("0 * * * *", "hour"),
    ("15 * * * *", "hour"),
    ("30 * * * *", "hour"),
    ("45 * * * *", "hour"),
    ("*/15 * * * *", "sub"),
    ("*/30 * * * *", "sub"),
    ("0,30 * * * *", "sub"),
    ("*/20 * * * *", "sub"),
    ("0 */2 * * *", "hour"),
    ("0 */6 * * *", "hour"),
    ("0 0,12 * * *", "hour"),
    ("0 1-5 * * *", "hour"),
    ("30 */3 * * *", "hour"),
    ("@hourly", "hour"),
    ("0 0-23/4 * * *", "hour"),
    ("0 0 * * *", "day"),
    ("30 0 * * *", "day"),
    ("30 1 * * *", "day"),
    ("30 2 * * *", "day"),
    ("0 3 * * *", "day"),
    ("0 23 * * *", "day"),
    ("0 2 * * *", "day"),
    ("0 1 * * *", "day"),
    ("45 2 * * *", "day"),
    ("@daily", "day"),
    ("@midnight", "day"),
    ("0 0 * * 1-5", "day"),
    ("0 9 * * MON-FRI", "day"),
    ("30 2 * * 1-5", "day"),
    ("0 0 * * mon,wed,fri", "day"),
    ("0 12 * * 0,3", "day"),
    ("0 0 */2 * *", "day"),
    ("0 0 1-7 * *", "day"),
    ("0 0 * * 0", "week"),
    ("0 0 * * 1", "week"),
    ("0 6 * * 0", "week"),
    ("30 2 * * 0", "week"),
    ("0 2 * * SUN", "week"),
    ("0 0 * * 6", "week"),
    ("@weekly", "week"),
    ("0 1 * * 7", "week"),
    ("0 0 * * 1#1", "month"),
    ("0 2 * * 0#2", "month"),
    ("0 0 * * 5#5", "month"),
    ("0 0 1 * *", "month"),
    ("0 0 15 * *", "month"),
    ("0 0 28 * *", "month"),
    ("0 0 31 * *", "month"),
    ("0 0 L * *", "month"),
    ("0 2 L * *", "month"),
    ("@monthly", "month"),
    ("0 5 1 * *", "month"),
    ("30 2 1 * *", "month"),
    ("0 0 1,15 * *", "month"),
    ("0 0 1 */3 *", "quarter"),
    ("0 0 1 JAN,JUL *", "quarter"),
    ("0 0 1 1 *", "year"),
    ("@yearly", "year"),
    ("0 0 29 2 *", "year"),
    ("0 2 * 3,11 0", "month"),
    ("0 0 10-12 * *", "month"),
    ("0 0 1 * 1", "day"),
    ("0 0 15W * *", "month"),
    ("0 0 L * 5", "week"),
    ("0 9-17 * * 1-5", "hour"),
    ("*/5 * * * *", "sub"),
    ("0 0 * * 1,3,5", "day"),
    ("0 */8 * * *", "hour"),
    ("30 1,13 * * *", "hour"),
    ("0 2,3 * * *", "hour"),
    ("0 1-3 * * *", "hour"),
    ("30 1-3 * * 0", "day"),
    ("0 0 1 1,4,7,10 *", "quarter"),
    ("0 3 L * *", "month"),
    ("0 2 1 * *", "month"),
    ("0 1 * * 0", "week"),
    ("0 0 * * 0#1", "month"),
    ("0 2 8-14 * 0", "day"),
    ("15,45 * * * *", "sub"),
    ("0 0-23/3 * * *", "hour"),
    ("0 12 * * *", "day"),
    ("0 0 * 1-6 *", "day"),
    ("0 22-2 * * *", "hour"),
    ("0 0 * * 5-1", "day"),
    ("0 0 28-3 * *", "day"),
    ("0 0 ? * *", "day"),
    ("0 0 1-L/2 * *", "day"),
    ("0 0 5-L * *", "day"),
    ("0 0 29 * *", "month"),
    ("0 0 30 * *", "month"),
    ("0 0 * * 1#1,3#3", "week"),
]
GRAIN_HOURS = {
    "sub": 0.25,
    "hour": 1,
    "day": 24,
    "week": 168,
    "month": 730,
    "quarter": 2190,
    "year": 8760,
}
FMTS = {
    "sub": ["%Y-%m-%d-%H:%M"] * 6
    + ["%Y-%m-%d-%H:%M%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M", "%Y%m%d%H", "%Y-%m-%d-%H"],
    "hour": ["%Y-%m-%d-%H:%M"] * 6
    + ["%Y-%m-%d-%H:%M%z"] * 2
    + ["%Y%m%d%H", "%Y-%m-%dT%H", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d-%H%z"],
    "day": ["%Y-%m-%d"] * 8
    + [
        "%Y%m%d",
        "%d.%m.%Y",
        "%Y-%m-%d-%H:%M",
        "%Y-%j",
        "%Y-%m",
        "%Y-%m-%d%z",
        "%Y-%m-%d-%H:%M%z",
        "%Y/%m/%d",
    ],
    "week": ["%Y-%m-%d"] * 6 + ["%Y-W%W-%a", "%Y%m%d", "%Y-%m", "%Y-%m-%d-%H:%M", "%G-W%V"],
    "month": ["%Y-%m-%d"] * 5 + ["%Y-%m", "%b %Y", "%Y", "%Y-%m-%d-%H:%M"],
    "quarter": ["%Y-%m-%d"] * 3 + ["%Y-%m", "%Y"],
    "year": ["%Y-%m-%d", "%Y", "%Y-%m"],
}
EXCLUSION_CRONS = [
    "0 0 * * 6,0",
    "0 0 * * 0",
    "0 0 1 * *",
    "0 0 * * 1-5",
    "0 * * * 6,0",
    "0 2 * * *",
    "0 0 * * SAT",
    "*/30 * * * *",
    "0 12 * * *",
    "0 0 L * *",
    "0 3 * * *",
    "30 2 * * *",
    "0 0 15 * *",
]


class Gen:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.counter = 0

    # ---- time helpers
    @staticmethod
    @functools.lru_cache(maxsize=512)
    def transitions(zone: str, year: int) -> list[datetime]:
        tz = ZoneInfo(zone)
        out = []
        t = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC)
        prev = t.astimezone(tz).utcoffset()
        step = timedelta(hours=6)
        while t < end:
            n = t + step
            off = n.astimezone(tz).utcoffset()
            if off != prev:
                lo, hi = t, n
                while hi - lo > timedelta(minutes=1):
                    mid = lo + (hi - lo) / 2
                    mid = mid.replace(second=0, microsecond=0)
                    if mid <= lo:
                        break
                    if mid.astimezone(tz).utcoffset() == prev:
                        lo = mid
                    else:
                        hi = mid
                out.append(hi)
                prev = off
            t = n
        return out

    def zone(self) -> str:
        if self.r.random() < 0.08:
            return "UTC"
        return self.r.choices(DST_ZONES, ZONE_WEIGHTS)[0]

    def as_of(self, zone: str) -> datetime:
        r = self.r
        year = r.randint(2016, 2025)
        trans = self.transitions(zone, year)
        if trans and r.random() < 0.85:
            base = r.choice(trans)
            delta = timedelta(
                hours=r.choice(
                    [
                        r.uniform(-30, 30),
                        r.uniform(-24 * 3, 24 * 40),
                        r.choice([-1, 0, 1, 2, 3, 24, 25, 23, 48]),
                    ]
                )
            )
            t = base + delta
        else:
            t = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=r.uniform(0, 365))
        choice = r.random()
        if choice < 0.5:
            t = t.replace(minute=r.choice([0, 0, 0, 15, 30, 45]), second=0, microsecond=0)
        elif choice < 0.8:
            t = t.replace(second=0, microsecond=0)
        else:
            t = t.replace(microsecond=0)
        return t

    def fmt_as_of(self, t: datetime, zone: str) -> str:
        r = self.r.random()
        if r < 0.4:
            return t.astimezone(UTC).isoformat()
        if r < 0.8:
            return t.astimezone(ZoneInfo(zone)).isoformat()
        off = timedelta(minutes=self.r.choice([-600, -300, -180, 60, 330, 345, 540, 780]))
        return t.astimezone(timezone(off)).isoformat()

    # ---- definitions
    def cron(self, grain: str | None = None) -> tuple[str, str]:
        options = [c for c in CRONS if grain is None or c[1] == grain]
        return self.r.choice(options)

    def time_def(
        self, zone: str, as_of: datetime, cron: str, grain: str, start_local: datetime | None = None
    ) -> dict[str, Any]:
        r = self.r
        hours = GRAIN_HOURS[grain]
        if start_local is None:
            count = (
                r.choice([3, 10, 30, 60, 120, 300])
                if hours >= 24
                else r.choice([5, 24, 72, 200, 500])
            )
            span = timedelta(hours=hours * count * r.uniform(0.5, 1.5))
            if hours <= 1:
                span = min(span, timedelta(days=25))
            elif hours <= 24:
                span = min(span, timedelta(days=800))
            else:
                span = min(span, timedelta(days=365 * 6))
            local = (as_of - span).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
            style = r.random()
            if style < 0.55:
                local = local.replace(hour=0, minute=0, second=0, microsecond=0)
            elif style < 0.75:
                local = local.replace(minute=0, second=0, microsecond=0)
            elif style < 0.85:
                local = local.replace(
                    hour=r.choice([1, 2, 3]), minute=r.choice([0, 30]), second=0, microsecond=0
                )
            else:
                local = local.replace(minute=r.choice([0, 15, 30, 45]), second=0, microsecond=0)
            if grain in ("month", "quarter", "year") and r.random() < 0.6:
                local = local.replace(day=1, hour=0, minute=0)
            start_local = local
        fmt = r.choice(FMTS[grain])
        end = None
        if r.random() < 0.15:
            end_local = (
                (as_of + timedelta(hours=hours * r.uniform(-10, 3)))
                .astimezone(ZoneInfo(zone))
                .replace(tzinfo=None, second=0, microsecond=0)
            )
            if r.random() < 0.6:
                end_local = end_local.replace(minute=0)
            if end_local > start_local:
                end = end_local.isoformat()
        exclusions: list[str] = []
        if r.random() < 0.12:
            exclusions.append(r.choice(EXCLUSION_CRONS))
        if r.random() < 0.08:
            t = as_of - timedelta(hours=hours * r.randint(1, 10))
            wall = t.astimezone(ZoneInfo(zone)).replace(tzinfo=None, second=0, microsecond=0)
            wall = wall.replace(hour=0, minute=0) if hours >= 24 else wall.replace(minute=0)
            exclusions.append(wall.isoformat())
        if any(not _is_instant(e) for e in exclusions) and _excludes_all(
            cron, [e for e in exclusions if not _is_instant(e)], start_local
        ):
            exclusions = [e for e in exclusions if _is_instant(e)]
        return {
            "type": "time_window",
            "cron_schedule": cron,
            "start": start_local.isoformat(),
            "end": end,
            "timezone": zone,
            "fmt": fmt,
            "end_offset": r.choices([0, 1, -1, 2, -2], [10, 3, 3, 1, 1])[0],
            "exclusions": exclusions,
        }

    def static_def(self) -> dict[str, Any]:
        pools = [
            ["us", "eu", "apac"],
            ["a", "b", "c", "d", "e"],
            ["red", "green", "blue"],
            ["x", "y", "z", "w"],
            ["p1", "p2", "p3", "p10"],
            ["é", "a|b", "k.1", "2024-01-01"],
        ]
        keys = list(self.r.choice(pools))
        if self.r.random() < 0.3:
            self.r.shuffle(keys)
        return {"type": "static", "keys": keys}

    def dynamic_def(self, dyn: dict[str, list[str]]) -> dict[str, Any]:
        name = self.r.choice(["dyn_a", "dyn_b", "customers"])
        if name not in dyn and self.r.random() < 0.9:
            keys = self.r.sample(
                ["alpha", "z9", "m", "p2", "acme", "globex", "b", "a"], self.r.randint(1, 6)
            )
            dyn[name] = keys
        return {"type": "dynamic", "name": name}

    def multi_def(
        self,
        zone: str,
        as_of: datetime,
        dyn: dict[str, list[str]],
        time_part: dict[str, Any] | None = None,
        names: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        r = self.r
        names = names or r.choice(
            [("date", "region"), ("time", "color"), ("a_date", "z_key"), ("z_date", "a_key")]
        )
        if time_part is None:
            cron, grain = self.cron(r.choice(["day", "day", "hour", "month", "week"]))
            time_part = self.time_def(zone, as_of, cron, grain)
        other = self.dynamic_def(dyn) if r.random() < 0.2 else self.static_def()
        dims = [
            {"name": names[0], "partitions": time_part},
            {"name": names[1], "partitions": other},
        ]
        if r.random() < 0.5:
            dims.reverse()
        return {"type": "multi", "dimensions": dims}

    # ---- mappings
    def tw_mapping(self) -> dict[str, Any]:
        r = self.r
        a = r.randint(-3, 3)
        b = r.randint(-3, 3)
        if r.random() < 0.8 and a > b:
            a, b = b, a
        if r.random() < 0.3:
            a, b = r.choice([(0, 0), (-1, -1), (-1, 0), (0, 1), (1, 1), (-7, 0), (-2, 0)])
        return {
            "type": "time_window",
            "start_offset": a,
            "end_offset": b,
            "allow_nonexistent_upstream_partitions": r.random() < 0.35,
        }

    # ---- keys
    def dg_keys(self, data: dict[str, Any] | None, case: dict[str, Any]) -> list[str]:
        if data is None:
            return []
        try:
            instance = _instance_for(case["dynamic_partitions"])
            with dg.partition_loading_context(
                effective_dt=datetime.fromisoformat(case["as_of"]),
                dynamic_partitions_store=instance,
            ):
                return list(_dg_definition(data).get_partition_keys())
        except Exception:
            return []

    def invalid_keys(self, data: dict[str, Any], valid: list[str], zone: str) -> list[str]:
        r = self.r
        out = ["garbage", "2024-13-45", ""]
        if data["type"] != "time_window":
            return [*out, "nope", "a|zz"]
        fmt = data["fmt"]
        tz = ZoneInfo(data["timezone"])
        year = datetime.fromisoformat(data["start"]).year
        trans = [
            t for y in (year, year + 1, year + 2) for t in self.transitions(data["timezone"], y)
        ]
        for t in r.sample(trans, min(4, len(trans))):
            before = (t - timedelta(minutes=1)).astimezone(tz)
            after = t.astimezone(tz)
            for wall in (before.replace(tzinfo=None), after.replace(tzinfo=None)):
                for minute in (0, 30):
                    w = wall.replace(minute=minute, second=0)
                    for fold in (0, 1):
                        aware = w.replace(tzinfo=tz, fold=fold)
                        out.append(aware.strftime(fmt))
                        out.append(aware.strftime(fmt) + aware.strftime("%z"))
        if valid:
            k = r.choice(valid)
            out += [k + "x", k.replace("-0", "-"), " " + k]
        return out

    def pick_keys(self, valid: list[str], invalid: list[str]) -> list[str]:
        r = self.r
        if not valid:
            return [r.choice(invalid)] if invalid and r.random() < 0.5 else []
        mode = r.random()
        if mode < 0.45:
            keys = [r.choice(valid[-40:] if r.random() < 0.6 else valid)]
        elif mode < 0.75:
            n = r.randint(2, 10)
            if r.random() < 0.5:
                i = r.randint(0, max(0, len(valid) - n))
                keys = valid[i : i + n]
            else:
                keys = r.sample(valid, min(n, len(valid)))
        else:
            n = r.randint(100, 400)
            if r.random() < 0.6:
                i = r.randint(0, max(0, len(valid) - n))
                keys = valid[i : i + n]
            else:
                keys = r.sample(valid, min(n, len(valid)))
        if invalid and r.random() < 0.15:
            keys = list(keys)
            keys.insert(r.randint(0, len(keys)), r.choice(invalid))
        elif invalid and r.random() < 0.12:
            keys = [r.choice(invalid[3:] or invalid)]  # a lone DST-edge key, valid or not
        return list(keys)

    # ---- whole cases
    def case(self) -> dict[str, Any]:
        r = self.r
        self.counter += 1
        zone = self.zone()
        as_of = self.as_of(zone)
        dyn: dict[str, list[str]] = {}
        kind = r.choices(
            ["tw", "multi_single", "multi_multi", "keyed", "unpart", "mixed"], [62, 10, 7, 8, 6, 7]
        )[0]
        mapping: dict[str, Any] | None = None
        up: dict[str, Any] | None
        down: dict[str, Any] | None
        if kind == "tw":
            up_cron, up_grain = self.cron()
            same = r.random() < 0.3
            down_cron, down_grain = (up_cron, up_grain) if same else self.cron()
            # prefer downstream coarser than upstream
            if r.random() < 0.6 and not same and GRAIN_HOURS[down_grain] < GRAIN_HOURS[up_grain]:
                up_cron, up_grain, down_cron, down_grain = (
                    down_cron,
                    down_grain,
                    up_cron,
                    up_grain,
                )
            up = self.time_def(zone, as_of, up_cron, up_grain)
            if r.random() < 0.5:
                down = self.time_def(
                    zone, as_of, down_cron, down_grain, datetime.fromisoformat(up["start"])
                )
            else:
                down = self.time_def(zone, as_of, down_cron, down_grain)
            if r.random() < 0.05:
                down["timezone"] = self.zone()
            mapping = r.choices(
                [
                    None,
                    self.tw_mapping(),
                    {"type": "identity"},
                    {"type": "all"},
                    {"type": "last"},
                    "specific",
                ],
                [35, 45, 6, 4, 5, 5],
            )[0]
        elif kind == "multi_single":
            cron, grain = self.cron(r.choice(["day", "hour", "week", "month"]))
            t = self.time_def(zone, as_of, cron, grain)
            multi = self.multi_def(zone, as_of, dyn, time_part=dict(t))
            single = t if r.random() < 0.7 else self.time_def(zone, as_of, *self.cron("day"))
            if r.random() < 0.15:
                single = self.static_def()
            up, down = (multi, single) if r.random() < 0.5 else (single, multi)
            names = [d["name"] for d in multi["dimensions"]]
            mapping = r.choice(
                [
                    None,
                    None,
                    {
                        "type": "multi_to_single_dimension",
                        "partition_dimension_name": r.choice([*names, None, "x"]),
                    },
                    {"type": "all"},
                    {"type": "last"},
                    "specific",
                ]
            )
        elif kind == "multi_multi":
            names = r.choice([("date", "region"), ("time", "color")])
            cron, grain = self.cron(r.choice(["day", "hour", "week", "month"]))
            up = self.multi_def(
                zone, as_of, dyn, names=names, time_part=self.time_def(zone, as_of, cron, grain)
            )
            cron2, grain2 = (
                (cron, grain) if r.random() < 0.5 else self.cron(r.choice(["day", "week", "month"]))
            )
            down = self.multi_def(
                zone, as_of, dyn, names=names, time_part=self.time_def(zone, as_of, cron2, grain2)
            )
            if r.random() < 0.6:
                table: dict[str, Any] = {}
                if r.random() < 0.85:
                    table[names[0]] = {
                        "dimension_name": names[0],
                        "partition_mapping": r.choice(
                            [self.tw_mapping(), {"type": "identity"}, {"type": "all"}]
                        ),
                    }
                if r.random() < 0.7:
                    table[names[1]] = {
                        "dimension_name": names[1],
                        "partition_mapping": r.choice([{"type": "identity"}, {"type": "all"}]),
                    }
                mapping = {"type": "multi", "downstream_mappings_by_upstream_dimension": table}
        elif kind == "keyed":

            def one() -> dict[str, Any]:
                return self.dynamic_def(dyn) if r.random() < 0.35 else self.static_def()

            up, down = one(), one()
            if r.random() < 0.25:
                tcron, tgrain = self.cron("day")
                tdef = self.time_def(zone, as_of, tcron, tgrain)
                if r.random() < 0.5:
                    up = tdef
                else:
                    down = tdef
            choice = r.random()
            if choice < 0.3 and up["type"] == "static" and down["type"] == "static":
                table = {}
                for k in up["keys"]:
                    if r.random() < 0.8:
                        v = r.sample(down["keys"], r.randint(1, min(2, len(down["keys"]))))
                        table[k] = v[0] if len(v) == 1 and r.random() < 0.5 else v
                mapping = {
                    "type": "static",
                    "downstream_partition_keys_by_upstream_partition_key": table,
                }
            else:
                mapping = r.choice(
                    [None, {"type": "identity"}, {"type": "all"}, {"type": "last"}, "specific"]
                )
        elif kind == "unpart":
            cron, grain = self.cron()
            other = r.choice(
                [
                    self.time_def(zone, as_of, cron, grain),
                    self.static_def(),
                    self.multi_def(zone, as_of, dyn),
                ]
            )
            up, down = (None, other) if r.random() < 0.5 else (other, None)
            mapping = r.choice(
                [
                    None,
                    {"type": "all"},
                    {"type": "last"},
                    {"type": "identity"},
                    self.tw_mapping(),
                    "specific",
                ]
            )
        else:
            # mismatched kinds and odd pairs
            cron, grain = self.cron()
            a = self.time_def(zone, as_of, cron, grain)
            b = r.choice(
                [
                    self.static_def(),
                    self.dynamic_def(dyn),
                    self.time_def(self.zone(), as_of, *self.cron()),
                ]
            )
            up, down = (a, b) if r.random() < 0.5 else (b, a)
            mapping = r.choice(
                [None, {"type": "identity"}, self.tw_mapping(), "specific", {"type": "last"}]
            )
        case: dict[str, Any] = {
            "id": f"fz{self.counter:06d}-{kind}",
            "category": kind,
            "upstream": up,
            "downstream": down,
            "mapping": None,
            "direction": "upstream" if r.random() < 0.6 else "downstream",
            "partition_keys": [],
            "as_of": self.fmt_as_of(as_of, zone),
            "dynamic_partitions": dyn,
        }
        up_keys = self.dg_keys(up, case)
        if mapping == "specific":
            pool = up_keys or ["a", "zz"]
            keys = r.sample(pool, min(len(pool), r.randint(1, 3)))
            if r.random() < 0.2:
                keys.append(r.choice(["zz", "2024-01-01", "b"]))
            mapping = {"type": "specific", "partition_keys": keys}
        case["mapping"] = mapping
        queried = down if case["direction"] == "upstream" else up
        if queried is None:
            case["partition_keys"] = []
        else:
            valid = up_keys if queried is up else self.dg_keys(queried, case)
            invalid = self.invalid_keys(queried, valid, zone)
            case["partition_keys"] = self.pick_keys(valid, invalid)
        return case


def _is_instant(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
        return True
    except ValueError:
        return False


def _excludes_all(cron: str, exclusions: list[str], start: datetime) -> bool:
    """Whether the exclusion crons cover the cron's next ticks (Dagster then searches to 9999)."""
    from dagster._vendored.croniter import croniter

    try:
        it = croniter(cron, start)
        for _ in range(60):
            tick = it.get_next(datetime)
            if not any(croniter.match(e, tick) for e in exclusions):
                return False
        return True
    except Exception:
        return True


@functools.lru_cache(maxsize=64)
def _instance_cached(frozen: tuple[tuple[str, tuple[str, ...]], ...]) -> Any:
    instance = dg.DagsterInstance.ephemeral()
    for name, keys in frozen:
        for key in keys:
            instance.add_dynamic_partitions(name, [key])
    return instance


def _instance_for(dyn: dict[str, list[str]]) -> Any:
    return _instance_cached(tuple((k, tuple(v)) for k, v in sorted(dyn.items())))


# --------------------------------------------------------------------------------------------
# Our core
# --------------------------------------------------------------------------------------------


def ours(raw: dict[str, Any]) -> dict[str, Any]:
    try:
        answer = codec.answer_to_json(raw)
    except Exception as error:  # a crash in our core is a finding too
        return {"error": "CRASH", "message": f"{type(error).__name__}: {error}"[:300]}
    if "message" in answer:
        answer["message"] = answer["message"][:300]
    return answer


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a = {k: v for k, v in a.items() if k != "message"}
    b = {k: v for k, v in b.items() if k != "message"}
    return a == b


# --------------------------------------------------------------------------------------------
# Oracle check against the recorded cases
# --------------------------------------------------------------------------------------------


def check_oracle(path: Path, limit: int | None) -> int:
    bad = 0
    total = 0
    start = time.time()
    with path.open() as lines:
        for line in lines:
            case = json.loads(line)
            total += 1
            got = oracle(case)
            if not same(got, case["expected"]):
                bad += 1
                print(
                    json.dumps({"id": case["id"], "expected": case["expected"], "oracle": got})[
                        :1500
                    ]
                )
            if limit and total >= limit:
                break
    print(f"oracle: {total - bad}/{total} agree ({time.time() - start:.0f}s)", file=sys.stderr)
    return bad


# --------------------------------------------------------------------------------------------
# Differential run, minimisation, findings
# --------------------------------------------------------------------------------------------


class _Timeout(BaseException):
    pass


def _alarm(_signum: int, _frame: Any) -> None:
    raise _Timeout()


def timed(fn: Any, case: dict[str, Any], seconds: int = 30) -> dict[str, Any]:
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        return fn(case)
    except _Timeout:
        return {"error": "TIMEOUT"}
    finally:
        signal.alarm(0)


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
    return data["type"]


def _norm(message: str) -> str:
    import re

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


def run_random(count: int, seed: int, findings: Path | None, show: bool) -> None:
    gen = Gen(seed)
    seen: dict[str, int] = {}
    # patterns of findings that still differ are counted, not re-reported
    open_findings: set[str] = set()
    findings_file = REPO / "scripts" / "differential-findings.jsonl"
    if findings_file.exists():
        for line in findings_file.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                if item.get("status", "differs") == "differs":
                    open_findings.add(item["id"])
    if findings and findings.exists():
        for line in findings.read_text().splitlines():
            if line.strip():
                seen[json.loads(line).get("signature", "")] = 0
    started = time.time()
    bad = 0
    for n in range(count):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(30)
        try:
            case = gen.case()
        except _Timeout:
            print(f"generator timeout at {n}", file=sys.stderr)
            continue
        except Exception:
            traceback.print_exc()
            continue
        finally:
            signal.alarm(0)
        case["id"] = f"fz-s{seed}-{n:05d}"
        if show and n % 50 == 0:
            print(f"  .. {n} {time.time() - started:.0f}s", file=sys.stderr, flush=True)
        result = disagree(case)
        if result is None:
            continue
        bad += 1
        expected, got = result
        if "TIMEOUT" in (expected.get("error"), got.get("error")):
            print(
                json.dumps(
                    {"signature": "TIMEOUT", "case": dict(case, expected=expected), "ours": got}
                )[:3000],
                file=sys.stderr,
            )
            continue
        known = known_pattern(case, expected, got)
        if known and any(fid.startswith(known) for fid in open_findings):
            seen[f"known {known}"] = seen.get(f"known {known}", 0) + 1
            continue
        sig = signature(case, expected, got)
        if sig in seen:
            seen[sig] += 1
            continue
        seen[sig] = 1
        small = minimise(case, diff_kind(expected, got))
        small_result = disagree(small) or result
        record = dict(small, expected=small_result[0])
        line = {"signature": sig, "case": record, "ours": small_result[1]}
        print(json.dumps(line), flush=True)
        if findings:
            with (findings.with_suffix(".raw.jsonl")).open("a") as out:
                out.write(json.dumps(line) + "\n")
        if show:
            print(f"  [{n}] {sig}", file=sys.stderr, flush=True)
    print(
        f"ran {count} cases seed {seed}: {bad} disagreements, {len(seen)} signatures, "
        f"{time.time() - started:.0f}s",
        file=sys.stderr,
    )
    for sig, hits in sorted(seen.items(), key=lambda item: -item[1]):
        if hits:
            print(f"  {hits:5d}  {sig}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Cron syntax and tick sequences
# --------------------------------------------------------------------------------------------

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_LIMITS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def _rand_case(r: random.Random, word: str) -> str:
    return r.choice([word, word.upper(), word.capitalize()])


def random_cron_field(r: random.Random, field: int) -> str:
    low, high = _LIMITS[field]

    def number() -> str:
        roll = r.random()
        if roll < 0.8:
            return str(r.randint(low, high))
        if roll < 0.9:
            return str(r.choice([low - 1, high + 1, high + 2, 99, 100]))
        return r.choice(["00", "07", "-1", "1.5", "x", ""])

    def atom() -> str:
        roll = r.random()
        if field == 3 and roll < 0.25:
            return _rand_case(r, r.choice(_MONTHS))
        if field == 4 and roll < 0.25:
            return _rand_case(r, r.choice(_DAYS))
        return number()

    def item() -> str:
        roll = r.random()
        if roll < 0.25:
            body = "*"
        elif roll < 0.45:
            body = f"{atom()}-{atom()}"
        elif roll < 0.5 and field in (2, 4):
            body = r.choice(["L", "l", "?", "LW", "15W", "W", "L-2", "1W", "31W", "5L", "0L"])
        elif roll < 0.57 and field == 4:
            body = f"{atom()}#{r.choice(['1', '2', '5', '0', '6', 'x', '1,2'])}"
        elif roll < 0.6:
            body = r.choice(["?", "L", "W", "#", "**", "*/", "/2", "-", "H", "H/5"])
        else:
            body = atom()
        if r.random() < 0.25:
            step = r.choice(
                ["0", "1", "2", "3", "5", "7", "15", "30", "59", "60", "61", "100", "x", "", "-1"]
            )
            body = f"{body}/{step}"
        return body

    count = 1 if r.random() < 0.75 else r.randint(2, 4)
    text = ",".join(item() for _ in range(count))
    if r.random() < 0.02:
        text = text + ","
    return text


def random_cron(r: random.Random) -> str:
    roll = r.random()
    if roll < 0.07:
        alias = r.choice(
            [
                "@daily",
                "@hourly",
                "@weekly",
                "@monthly",
                "@yearly",
                "@annually",
                "@midnight",
                "@reboot",
                "@every",
                "@DAILY",
                "@Weekly",
                "@minutely",
            ]
        )
        return r.choice(["", " ", "\t"]) + alias + r.choice(["", " ", "\n"])
    fields = [random_cron_field(r, i) for i in range(5)]
    # keep most fields simple so that one odd field decides
    for i in range(5):
        if r.random() < 0.45:
            fields[i] = r.choice(["*", "0", "1", "*"]) if i != 2 else r.choice(["*", "1", "15"])
    roll = r.random()
    if roll < 0.06:
        fields = [*fields, r.choice(["*", "0", "2024", "?"])]
    elif roll < 0.09:
        fields = fields[:4]
    elif roll < 0.1:
        fields = [*fields, "*", "2024"]
    sep = r.choice([" "] * 8 + ["  ", "\t"])
    text = sep.join(fields)
    if r.random() < 0.05:
        text = r.choice([" ", "\t", "\n"]) + text + r.choice([" ", "\n"])
    return text


def ours_accepts(cron: str) -> str:
    from partition_deps.domain.cron import parse_cron
    from partition_deps.domain.errors import InvalidDefinition

    try:
        parse_cron(cron)
        return "accept"
    except InvalidDefinition:
        return "reject"
    except Exception as error:
        return f"CRASH {type(error).__name__}: {error}"


def dagster_accepts(cron: str) -> str:
    try:
        return "accept" if is_valid_cron_schedule(cron) else "reject"
    except Exception as error:
        return f"reject ({type(error).__name__})"


def _cron_shape(cron: str) -> str:
    import re

    text = re.sub(r"\d+", "N", cron.strip())
    text = re.sub(r"[A-Za-z]{3}", "A", text)
    return re.sub(r"\s+", " ", text)


def run_cron_syntax(count: int, seed: int) -> list[dict[str, Any]]:
    r = random.Random(seed)
    found: dict[str, dict[str, Any]] = {}
    mismatches = 0
    for _ in range(count):
        cron = random_cron(r)
        dag, us = dagster_accepts(cron), ours_accepts(cron)
        if dag.split()[0] == us.split()[0]:
            continue
        mismatches += 1
        key = f"{dag.split()[0]}/{us.split()[0]} {_cron_shape(cron)}"
        if key not in found:
            found[key] = {"cron": cron, "dagster": dag, "ours": us, "count": 0}
            print(json.dumps(found[key]), flush=True)
        found[key]["count"] += 1
    print(
        f"cron syntax: {count} strings, {mismatches} mismatches, {len(found)} shapes",
        file=sys.stderr,
    )
    return list(found.values())


TICK_CRONS = [c for c, _ in CRONS] + [
    "0 0 * * 1-5",
    "*/10 * * * *",
    "5 4 * * sun",
    "0 22 * * 1-5",
    "0 0,12 1 */2 *",
    "0 4 8-14 * *",
    "0 0 1,15 * 3",
    "23 0-20/2 * * *",
    "0 0 * * 1#2",
    "0 0 L * *",
    "0 0 L 2 *",
    "30 1 * * *",
    "0 1,2,3 * * *",
    "30 1-3 * * *",
    "0 2 * * 6#1",
    "59 23 * * *",
    "0 12 L * *",
    "0 0 1 * 1-5",
    "15 2 * * *",
    "0 3 * * 0",
    "*/45 * * * *",
    "0 */5 * * *",
    "0 0 * 3 0",
    "0 2 25-31 3 0",
    "0 1 1-7 11 0",
    "45 1 * * *",
    "30 3 * * *",
    "0 0 29 * *",
    "0 0 30 * *",
    "0 2 * * *",
    "0 0-3 * * *",
    "0,30 1-3 * * *",
    "0 22-2 * * *",
    "0 0 * * 5-1",
    "0 0 28-3 * *",
    "0 0 1 11-2 *",
    "0 0 ? * *",
    "0 0 1-L * *",
    "0 0 5-L * *",
    "0 0 * * ?",
    "30 23-1 * * *",
    "0 0 L,15 * *",
    "0 0 * * 1#1,3#3",
    "0 0 * * *,1#1",
    "50-10/5 * * * *",
    "0 20-4/3 * * *",
]


def run_cron_ticks(count: int, seed: int) -> list[dict[str, Any]]:
    from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
    from partition_deps.domain.partitions import all_partitions

    r = random.Random(seed)
    gen = Gen(seed)
    found = []
    differing = 0
    for _n in range(count):
        cron = r.choice(TICK_CRONS)
        zone = gen.zone()
        as_of = gen.as_of(zone)
        grain = dict(CRONS).get(cron, "day")
        days = {
            "sub": 6,
            "hour": 20,
            "day": 120,
            "week": 400,
            "month": 1200,
            "quarter": 2000,
            "year": 4000,
        }[grain]
        start = (as_of - timedelta(days=r.uniform(1, days))).astimezone(ZoneInfo(zone))
        start = start.replace(tzinfo=None, minute=r.choice([0, 0, 30]), second=0, microsecond=0)
        if r.random() < 0.5:
            start = start.replace(hour=0, minute=0)
        fmt = r.choice(["%Y-%m-%d-%H:%M", "%Y-%m-%d-%H:%M", "%Y-%m-%d-%H:%M%z"])
        end_offset = r.choice([0, 0, 0, 1, -1])
        data = {
            "type": "time_window",
            "cron_schedule": cron,
            "start": start.isoformat(),
            "end": None,
            "timezone": zone,
            "fmt": fmt,
            "end_offset": end_offset,
            "exclusions": [],
        }
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(30)
        try:
            try:
                with dg.partition_loading_context(effective_dt=as_of):
                    theirs = list(_dg_definition(data).get_partition_keys())
            except _Timeout:
                raise
            except Exception as error:
                theirs = [f"ERROR {type(error).__name__}: {error}"]
            try:
                defn = TimeWindowPartitions(
                    cron_schedule=cron, start=start, timezone=zone, fmt=fmt, end_offset=end_offset
                )
                mine = list(all_partitions(defn, Evaluation(as_of=as_of)))
            except _Timeout:
                raise
            except Exception as error:
                mine = [f"ERROR {type(error).__name__}: {error}"]
        except _Timeout:
            print(f"tick timeout {cron} {zone}", file=sys.stderr)
            continue
        finally:
            signal.alarm(0)
        if theirs == mine and theirs and not theirs[0].startswith("ERROR"):
            # same enumeration: also compare key validity on a sample of keys
            sample = sorted(
                set(
                    [0, 1, len(theirs) - 1, len(theirs) - 2]
                    + [r.randrange(len(theirs)) for _ in range(8)]
                )
            )
            sample = [theirs[i] for i in sample if 0 <= i < len(theirs)]
            with dg.partition_loading_context(effective_dt=as_of):
                tdef = _dg_definition(data)
                verdicts = [(k, tdef.has_partition_key(k)) for k in sample]
            from partition_deps.domain.partitions import check_key

            for key, valid in verdicts:
                try:
                    check_key(defn, key, Evaluation(as_of=as_of))
                    ok = True
                except Exception:
                    ok = False
                if ok != valid:
                    item = {
                        "definition": data,
                        "as_of": as_of.isoformat(),
                        "key": key,
                        "dagster_has_partition_key": valid,
                        "ours_accepts": ok,
                    }
                    found.append(item)
                    print(json.dumps(item), flush=True)
                    break
            continue
        if theirs == mine or (
            theirs[:1]
            and mine[:1]
            and theirs[0].startswith("ERROR")
            and mine[0].startswith("ERROR")
        ):
            continue
        differing += 1
        i = next(
            (i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b),
            min(len(theirs), len(mine)),
        )
        item = {
            "definition": data,
            "as_of": as_of.isoformat(),
            "first_difference": i,
            "dagster": theirs[max(0, i - 2) : i + 4],
            "ours": mine[max(0, i - 2) : i + 4],
            "dagster_len": len(theirs),
            "ours_len": len(mine),
        }
        found.append(item)
        print(json.dumps(item), flush=True)
    print(f"cron ticks: {count} definitions, {differing} differ", file=sys.stderr)
    return found


SWEEP_CRONS = [
    "0 * * * *",
    "15 * * * *",
    "30 * * * *",
    "*/30 * * * *",
    "*/15 * * * *",
    "0 */2 * * *",
    "0 1-3 * * *",
    "30 1 * * *",
    "30 2 * * *",
    "0 0 * * *",
    "0 1 * * *",
    "0 2 * * *",
    "0 3 * * *",
    "0 23 * * *",
    "30 0 * * *",
    "0 0 * * 0",
    "0 2 * * 0",
    "0 2 1 * *",
    "30 1-3 * * *",
    "0 0,12 * * *",
]
SWEEP_FMTS = ["%Y-%m-%d-%H:%M", "%Y-%m-%d-%H:%M%z"]


def run_dst_sweep(count: int, seed: int) -> None:
    """Around real DST transitions: enumeration, key validity and key windows, ours vs Dagster."""
    from partition_deps.domain.definitions import Evaluation
    from partition_deps.domain.partitions import all_partitions, check_key, time_window_for_key

    r = random.Random(seed)
    gen = Gen(seed)
    problems = 0
    seen: set[str] = set()
    for _n in range(count):
        zone = r.choice([z for z in DST_ZONES if z != "Asia/Kolkata"])
        year = r.randint(2016, 2025)
        trans = gen.transitions(zone, year)
        if not trans:
            continue
        t = r.choice(trans)
        cron = r.choice(SWEEP_CRONS)
        fmt = (
            r.choice(SWEEP_FMTS)
            if " * * *" in cron and cron.split()[1] != "0"
            else r.choice([*SWEEP_FMTS, "%Y-%m-%d"])
        )
        tz = ZoneInfo(zone)
        start = (
            (t - timedelta(days=r.choice([1, 2, 8])))
            .astimezone(tz)
            .replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        )
        as_of = t + timedelta(days=r.choice([1, 3, 9]))
        data = {
            "type": "time_window",
            "cron_schedule": cron,
            "start": start.isoformat(),
            "end": None,
            "timezone": zone,
            "fmt": fmt,
            "end_offset": 0,
            "exclusions": [],
        }
        defn = codec.definition_from_json(data)
        at = Evaluation(as_of=as_of)
        report: list[str] = []
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(60)
        try:
            with dg.partition_loading_context(effective_dt=as_of):
                tdef = _dg_definition(data)
                theirs = list(tdef.get_partition_keys())
                try:
                    mine = list(all_partitions(defn, at))
                except Exception as error:
                    mine = [f"CRASH {error}"]
                if theirs != mine:
                    i = next(
                        (i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b),
                        min(len(theirs), len(mine)),
                    )
                    report.append(
                        f"enumeration differs at {i}: dagster {theirs[max(0, i - 2) : i + 3]}"
                        f" ours {mine[max(0, i - 2) : i + 3]}"
                    )
                # candidate keys: every quarter hour around the transition, both folds, +- suffix
                candidates: list[str] = []
                local = t.astimezone(tz).replace(tzinfo=None)
                for minutes in range(-180, 181, 15):
                    wall = (local + timedelta(minutes=minutes)).replace(second=0)
                    for fold in (0, 1):
                        aware = wall.replace(tzinfo=tz, fold=fold)
                        key = aware.strftime(fmt)
                        candidates += [key, key + aware.strftime("%z")]
                their_set = set(theirs)
                for key in dict.fromkeys(candidates):
                    dag_ok = tdef.has_partition_key(key)
                    try:
                        check_key(defn, key, at)
                        our_ok = True
                    except Exception:
                        our_ok = False
                    if dag_ok != our_ok:
                        report.append(f"key {key!r}: dagster valid={dag_ok} ours valid={our_ok}")
                    elif dag_ok and key in their_set:
                        w = tdef.time_window_for_partition_key(key)
                        try:
                            ws, we = time_window_for_key(defn, key)
                            if (ws.timestamp(), we.timestamp()) != (
                                w.start.timestamp(),
                                w.end.timestamp(),
                            ):
                                report.append(
                                    f"key {key!r}: window dagster {w.start.isoformat()}"
                                    f"..{w.end.isoformat()} ours {ws.isoformat()}.."
                                    f"{we.isoformat()}"
                                )
                        except Exception as error:
                            report.append(f"key {key!r}: ours window failed {error}")
        except _Timeout:
            print(f"sweep timeout {cron} {zone}", file=sys.stderr)
            continue
        finally:
            signal.alarm(0)
        if report:
            problems += 1
            shape = f"{zone} {cron} {fmt} {report[0].split(':')[0][:3]}"
            if shape in seen:
                continue
            seen.add(shape)
            print(
                json.dumps(
                    {
                        "definition": data,
                        "as_of": as_of.isoformat(),
                        "problems": report[:6],
                        "count": len(report),
                    }
                ),
                flush=True,
            )
    print(f"dst sweep: {count} definitions, {problems} with differences", file=sys.stderr)


def replay(path: Path) -> None:
    """Re-run each case of a file: print whether ours and Dagster still disagree."""
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        case = item.get("case", item)
        expected = timed(oracle, case)
        got = timed(ours, case)
        status = "AGREE" if same(expected, got) else "DIFFER"
        print(
            f"{status} {case.get('id')}: dagster={json.dumps(expected)[:200]} "
            f"ours={json.dumps(got)[:200]}"
        )


def refresh_findings(path: Path) -> None:
    """Recompute `case.expected` (Dagster) and `ours` for every finding; mark fixed ones."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        if "cron" in item:  # a cron-syntax finding
            item["dagster"] = dagster_accepts(item["cron"])
            item["ours"] = ours_accepts(item["cron"])
            differs = item["dagster"].split()[0] != item["ours"].split()[0]
            item["status"] = "differs" if differs else "agrees now"
            print(f"{item['status']:10s} {item['id']}", file=sys.stderr)
            lines.append(json.dumps(item, ensure_ascii=False))
            continue
        case = {k: v for k, v in item["case"].items() if k != "expected"}
        expected = timed(oracle, case, 300)
        got = timed(ours, case)
        item["case"] = dict(case, expected=expected)
        item["ours"] = got
        item["status"] = "agrees now" if same(expected, got) else "differs"
        print(f"{item['status']:10s} {item['id']}", file=sys.stderr)
        lines.append(json.dumps(item, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    faulthandler.register(signal.SIGUSR1)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-oracle", action="store_true")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", default=None, help="append raw new patterns next to FILE")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--refresh-findings",
        default=None,
        metavar="FILE",
        help="recompute Dagster's and our answers for each finding in FILE",
    )
    parser.add_argument(
        "--replay",
        default=None,
        help="re-run the cases of a jsonl file (lines with `case` or bare cases)",
    )
    parser.add_argument(
        "--dst-sweep",
        action="store_true",
        help="keys, validity and windows around real DST transitions",
    )
    parser.add_argument(
        "--cron-syntax",
        action="store_true",
        help="compare cron accept/reject on --cases random strings",
    )
    parser.add_argument(
        "--cron-ticks",
        action="store_true",
        help="compare tick sequences of --cases random cron x zone definitions",
    )
    args = parser.parse_args()
    if args.check_oracle:
        sys.exit(1 if check_oracle(REPO / "tests/conformance/cases.jsonl", args.limit) else 0)
    if args.refresh_findings:
        refresh_findings(Path(args.refresh_findings))
        return
    if args.replay:
        replay(Path(args.replay))
        return
    if args.dst_sweep:
        run_dst_sweep(args.cases, args.seed)
        return
    if args.cron_syntax:
        run_cron_syntax(args.cases, args.seed)
        return
    if args.cron_ticks:
        run_cron_ticks(args.cases, args.seed)
        return
    findings = Path(args.findings) if args.findings else None
    run_random(args.cases, args.seed, findings, args.verbose)


if __name__ == "__main__":
    main()
