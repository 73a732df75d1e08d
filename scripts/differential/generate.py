"""Random cases in the cases.jsonl format, weighted towards what breaks: DST transitions, odd
crons and formats, offsets, multi definitions, dynamic keys and keys at the edges."""

from __future__ import annotations

import functools
import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._vendored.croniter import croniter

from scripts.differential.oracle import dg_definition, instance_for

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
            instance = instance_for(case["dynamic_partitions"])
            with dg.partition_loading_context(
                effective_dt=datetime.fromisoformat(case["as_of"]),
                dynamic_partitions_store=instance,
            ):
                return list(dg_definition(data).get_partition_keys())
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

    def _run_or_sample(self, valid: list[str], n: int, run_chance: float) -> list[str]:
        """`n` consecutive keys (with `run_chance`) or `n` keys drawn anywhere."""
        r = self.r
        if r.random() < run_chance:
            i = r.randint(0, max(0, len(valid) - n))
            return valid[i : i + n]
        return r.sample(valid, min(n, len(valid)))

    def pick_keys(self, valid: list[str], invalid: list[str]) -> list[str]:
        r = self.r
        if not valid:
            return [r.choice(invalid)] if invalid and r.random() < 0.5 else []
        mode = r.random()
        if mode < 0.45:
            keys = [r.choice(valid[-40:] if r.random() < 0.6 else valid)]
        elif mode < 0.75:
            keys = self._run_or_sample(valid, r.randint(2, 10), 0.5)
        else:
            keys = self._run_or_sample(valid, r.randint(100, 400), 0.6)
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
        mapping: dict[str, Any] | str | None = None  # "specific": keys drawn below
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
            dimension_names = [d["name"] for d in multi["dimensions"]]
            mapping = r.choice(
                [
                    None,
                    None,
                    {
                        "type": "multi_to_single_dimension",
                        "partition_dimension_name": r.choice([*dimension_names, None, "x"]),
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
    try:
        it = croniter(cron, start)
        for _ in range(60):
            tick = it.get_next(datetime)
            if not any(croniter.match(e, tick) for e in exclusions):
                return False
        return True
    except Exception:
        return True
