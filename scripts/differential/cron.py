"""Cron strings and the keys they give: accept/reject of random cron strings, enumerated keys
and key validity per cron and zone, and keys, validity and windows around DST transitions; ours
against Dagster each time."""

from __future__ import annotations

import json
import random
import re
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._utils.schedules import is_valid_cron_schedule

from partition_deps.domain import codec
from partition_deps.domain.cron import parse_cron
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition
from partition_deps.domain.errors import InvalidDefinition
from partition_deps.domain.partitions import all_partitions, has_key, time_window_for_key
from scripts.differential.generate import CRONS, DST_ZONES, Gen
from scripts.differential.oracle import Json, Timeout, dg_definition, time_limit

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


def run_cron_ticks(count: int, seed: int) -> list[Json]:
    r = random.Random(seed)
    gen = Gen(seed)
    found = []
    differing = 0
    for _n in range(count):
        data, as_of = _tick_definition(r, gen)
        try:
            with time_limit(30):
                theirs = _keys_or_error(_dagster_keys, data, as_of)
                mine = _keys_or_error(_our_keys, data, as_of)
        except Timeout:
            print(f"tick timeout {data['cron_schedule']} {data['timezone']}", file=sys.stderr)
            continue
        if theirs == mine and theirs and not theirs[0].startswith("ERROR"):
            item = _key_validity_difference(r, data, as_of, theirs)
        elif theirs == mine or (
            theirs[:1]
            and mine[:1]
            and theirs[0].startswith("ERROR")
            and mine[0].startswith("ERROR")
        ):
            continue
        else:
            differing += 1
            i = _first_difference(theirs, mine)
            item = {
                "definition": data,
                "as_of": as_of.isoformat(),
                "first_difference": i,
                "dagster": theirs[max(0, i - 2) : i + 4],
                "ours": mine[max(0, i - 2) : i + 4],
                "dagster_len": len(theirs),
                "ours_len": len(mine),
            }
        if item is not None:
            found.append(item)
            print(json.dumps(item), flush=True)
    print(f"cron ticks: {count} definitions, {differing} differ", file=sys.stderr)
    return found


_TICK_SPAN_DAYS = {
    "sub": 6,
    "hour": 20,
    "day": 120,
    "week": 400,
    "month": 1200,
    "quarter": 2000,
    "year": 4000,
}


def _tick_definition(r: random.Random, gen: Gen) -> tuple[Json, datetime]:
    """A random definition of one of TICK_CRONS and the instant to enumerate it at."""
    cron = r.choice(TICK_CRONS)
    zone = gen.zone()
    as_of = gen.as_of(zone)
    days = _TICK_SPAN_DAYS[dict(CRONS).get(cron, "day")]
    start = (as_of - timedelta(days=r.uniform(1, days))).astimezone(ZoneInfo(zone))
    start = start.replace(tzinfo=None, minute=r.choice([0, 0, 30]), second=0, microsecond=0)
    if r.random() < 0.5:
        start = start.replace(hour=0, minute=0)
    fmt = r.choice(["%Y-%m-%d-%H:%M", "%Y-%m-%d-%H:%M", "%Y-%m-%d-%H:%M%z"])
    end_offset = r.choice([0, 0, 0, 1, -1])
    return _time_window(cron, start, zone, fmt, end_offset), as_of


def _time_window(cron: str, start: datetime, zone: str, fmt: str, end_offset: int) -> Json:
    return {
        "type": "time_window",
        "cron_schedule": cron,
        "start": start.isoformat(),
        "end": None,
        "timezone": zone,
        "fmt": fmt,
        "end_offset": end_offset,
        "exclusions": [],
    }


def _keys_or_error(keys: Callable[[Json, datetime], list[str]], *args: Any) -> list[str]:
    """The keys, or one "ERROR ..." line: two refusals agree whatever their texts."""
    try:
        return keys(*args)
    except Exception as error:
        return [f"ERROR {type(error).__name__}: {error}"]


def _dagster_keys(data: Json, as_of: datetime) -> list[str]:
    with dg.partition_loading_context(effective_dt=as_of):
        return list(dg_definition(data).get_partition_keys())


def _our_definition(data: Json) -> PartitionsDefinition:
    definition = codec.definition_from_json(data)
    assert definition is not None, "a time-window definition"
    return definition


def _our_keys(data: Json, as_of: datetime) -> list[str]:
    return list(all_partitions(_our_definition(data), Evaluation(as_of=as_of)))


def _our_key_is_valid(definition: PartitionsDefinition, key: str, at: Evaluation) -> bool:
    """`has_key`, where a crash of ours counts as a refusal (Dagster's are caught alike)."""
    try:
        return has_key(definition, key, at)
    except Exception:
        return False


def _first_difference(theirs: list[str], mine: list[str]) -> int:
    return next(
        (i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b),
        min(len(theirs), len(mine)),
    )


def _key_validity_difference(
    r: random.Random, data: Json, as_of: datetime, keys: list[str]
) -> Json | None:
    """Same enumeration: the first of a sample of keys whose validity differs, if any."""
    sample = sorted(
        set([0, 1, len(keys) - 1, len(keys) - 2] + [r.randrange(len(keys)) for _ in range(8)])
    )
    with dg.partition_loading_context(effective_dt=as_of):
        tdef = dg_definition(data)
        verdicts = [
            (keys[i], tdef.has_partition_key(keys[i])) for i in sample if 0 <= i < len(keys)
        ]
    definition = _our_definition(data)
    for key, valid in verdicts:
        ok = _our_key_is_valid(definition, key, Evaluation(as_of=as_of))
        if ok != valid:
            return {
                "definition": data,
                "as_of": as_of.isoformat(),
                "key": key,
                "dagster_has_partition_key": valid,
                "ours_accepts": ok,
            }
    return None


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
        start = (
            (t - timedelta(days=r.choice([1, 2, 8])))
            .astimezone(ZoneInfo(zone))
            .replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
        )
        as_of = t + timedelta(days=r.choice([1, 3, 9]))
        data = _time_window(cron, start, zone, fmt, 0)
        try:
            with time_limit(60):
                report = _transition_report(data, as_of, t)
        except Timeout:
            print(f"sweep timeout {cron} {zone}", file=sys.stderr)
            continue
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


def _transition_report(data: Json, as_of: datetime, transition: datetime) -> list[str]:
    """Where ours and Dagster differ for one definition around one DST transition."""
    definition = _our_definition(data)
    at = Evaluation(as_of=as_of)
    report: list[str] = []
    with dg.partition_loading_context(effective_dt=as_of):
        tdef = dg_definition(data)
        theirs = list(tdef.get_partition_keys())
        try:
            mine = list(all_partitions(definition, at))
        except Exception as error:
            mine = [f"CRASH {error}"]
        if theirs != mine:
            i = _first_difference(theirs, mine)
            report.append(
                f"enumeration differs at {i}: dagster {theirs[max(0, i - 2) : i + 3]}"
                f" ours {mine[max(0, i - 2) : i + 3]}"
            )
        their_set = set(theirs)
        for key in _keys_around(transition, data["timezone"], data["fmt"]):
            dag_ok = tdef.has_partition_key(key)
            our_ok = _our_key_is_valid(definition, key, at)
            if dag_ok != our_ok:
                report.append(f"key {key!r}: dagster valid={dag_ok} ours valid={our_ok}")
            elif dag_ok and key in their_set:
                report += _window_difference(tdef, definition, key)
    return report


def _keys_around(transition: datetime, zone: str, fmt: str) -> list[str]:
    """Every quarter hour within three hours of the transition, both folds, with and without
    the offset suffix, each once."""
    tz = ZoneInfo(zone)
    candidates: list[str] = []
    local = transition.astimezone(tz).replace(tzinfo=None)
    for minutes in range(-180, 181, 15):
        wall = (local + timedelta(minutes=minutes)).replace(second=0)
        for fold in (0, 1):
            aware = wall.replace(tzinfo=tz, fold=fold)
            key = aware.strftime(fmt)
            candidates += [key, key + aware.strftime("%z")]
    return list(dict.fromkeys(candidates))


def _window_difference(tdef: Any, definition: PartitionsDefinition, key: str) -> list[str]:
    w = tdef.time_window_for_partition_key(key)
    try:
        ws, we = time_window_for_key(definition, key)
    except Exception as error:
        return [f"key {key!r}: ours window failed {error}"]
    if (ws.timestamp(), we.timestamp()) != (w.start.timestamp(), w.end.timestamp()):
        return [
            f"key {key!r}: window dagster {w.start.isoformat()}"
            f"..{w.end.isoformat()} ours {ws.isoformat()}..{we.isoformat()}"
        ]
    return []
