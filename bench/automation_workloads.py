"""Automation workloads in the timelines' JSON form (tests/automation/README.md), shared by
bench/automation_vs_dagster.py's two sides and its over-RPC runs.

Each workload is a timeline: the asset graph, then ticks with the events before each. Events
are plain materializations (no runs), so both sides read the same thing.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

Json = dict[str, Any]


def daily(start: datetime) -> Json:
    return {
        "type": "time_window",
        "cron_schedule": "0 0 * * *",
        "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
        "end": None,
        "timezone": "UTC",
        "fmt": "%Y-%m-%d",
        "end_offset": 0,
        "exclusions": [],
    }


def _asset(key: str, partitions: Json | None, deps: list[str], condition: Json | None) -> Json:
    return {
        "key": key,
        "partitions": partitions,
        "deps": [{"upstream": dep, "mapping": None} for dep in deps],
        "automation_condition": condition,
        "code_version": None,
    }


def _materialization(asset: str, key: str, at: datetime) -> Json:
    return {
        "type": "materialization",
        "asset": asset,
        "partition_key": key,
        "data_version": None,
        "timestamp": at.isoformat(),
    }


def daily_graph(roots: int, eager: int, days: int, today: datetime, seed: int = 17429) -> Json:
    """`roots` daily assets on `on_cron("0 1 * * *")` and `eager` daily eager assets, each
    depending on one to three earlier assets; every partition materialized up to the day
    before yesterday. Tick 0 at 00:30 (yesterday's partition is new and not materialized),
    then the roots materialize yesterday at 01:10 and tick 1 at 01:30 is the one to time:
    the eager assets request yesterday's partition."""
    rng = random.Random(seed)
    start = today - timedelta(days=days)
    partitions = daily(start)
    cron = {"type": "on_cron", "cron_schedule": "0 1 * * *", "cron_timezone": "UTC"}
    assets = [_asset(f"root_{i:04d}", partitions, [], cron) for i in range(roots)]
    for i in range(eager):
        earlier = [asset["key"] for asset in assets]
        deps = sorted(rng.sample(earlier, min(len(earlier), rng.randint(1, 3))))
        assets.append(_asset(f"asset_{i:04d}", partitions, deps, {"type": "eager"}))
    history = []
    before = today - timedelta(days=1)
    for asset in assets:
        day = start
        while day < before - timedelta(days=0):
            if day + timedelta(days=1) <= before:
                at = day + timedelta(days=1, hours=2)
                history.append(_materialization(asset["key"], day.strftime("%Y-%m-%d"), at))
            day += timedelta(days=1)
    history.sort(key=lambda event: event["timestamp"])
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    roots_done = [
        _materialization(asset["key"], yesterday, today + timedelta(hours=1, minutes=10))
        for asset in assets[:roots]
    ]
    return {
        "id": f"daily-{roots}-{eager}-{days}",
        "assets": assets,
        "ticks": [
            {"events": history, "evaluation_time": (today + timedelta(minutes=30)).isoformat()},
            {"events": roots_done, "evaluation_time": (today + timedelta(minutes=90)).isoformat()},
        ],
    }


def issue_17429() -> Json:
    """Dagster issue 17429's shape: 35 daily assets of about 2,000 partitions, 5 roots on a
    cron, the rest eager."""
    return daily_graph(5, 30, 2000, datetime(2025, 6, 1, tzinfo=UTC))


def thousand_assets() -> Json:
    """1,000 daily assets over three years: 100 roots on a cron, 900 eager."""
    return daily_graph(100, 900, 3 * 365, datetime(2025, 6, 1, tzinfo=UTC))
