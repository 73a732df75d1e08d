"""The status page in a real headless browser (Debian's chromium, driven by Playwright).

The seed namespace is applied and its events reported through the command line, as the README
does; the page is read as a person would: the graph's assets and edge, the weekly bar turning
from missing to fresh, a stale range opened to read its cause, the upstream a partition needs,
a run in progress. Automation ticks: the latest ticks of a namespace, and a tick's page with
what it requested and the evaluation tree that explains it.
A screenshot of each step is kept in test-artifacts/status-page/, with the render times of a
namespace of 50 assets of 100,000 partitions each (timings.json; recorded, not asserted).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from .conftest import ROOT, TOKEN_ALL, materializations, post, program_env

ARTIFACTS = ROOT / "test-artifacts" / "status-page"
AS_OF = "2024-01-20T00:00:00Z"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is needed (scripts/dev test installs it)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # As root, chromium runs only without its sandbox.
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, base_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    opened = context.new_page()
    # Signs in through the login form: the page keeps the token in a cookie.
    opened.goto(f"{base_url}/ui/login")
    opened.fill("input[name=token]", TOKEN_ALL)
    opened.click("button[type=submit]")
    opened.wait_for_url(f"{base_url}/")
    yield opened
    context.close()


def _cli(web_port: int, tmp_path: Path, *args: str) -> str:
    env = program_env(tmp_path) | {"PD_ADDR": f"127.0.0.1:{web_port}", "PD_TOKEN": TOKEN_ALL}
    done = subprocess.run(
        ["partition-deps", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _row_ranges(page: Page, asset: str) -> set[str]:
    classes = page.eval_on_selector_all(
        f'tr[data-asset="{asset}"] rect.range', "rects => rects.map(r => r.getAttribute('class'))"
    )
    return {name.split()[1] for name in classes}


def test_the_seed_namespace_as_a_person_sees_it(
    page: Page, base_url: str, web_server: Any, tmp_path: Path
) -> None:
    namespace = f"seed-{uuid.uuid4().hex[:8]}"
    _cli(web_server.port, tmp_path, "apply", "examples/seed.json", "-n", namespace)
    url = f"{base_url}/ui/namespace?{urlencode({'ns': namespace, 'as_of': AS_OF})}"

    page.goto(base_url)
    assert page.locator(f"table.namespaces a:text-is('{namespace}')").is_visible()
    page.goto(url)
    assert page.locator('g.node[data-asset="daily_sales_data"]').is_visible()
    assert page.locator('g.node[data-asset="weekly_sales_summary"]').is_visible()
    edge = page.locator('g.edge[data-from="daily_sales_data"][data-to="weekly_sales_summary"]')
    assert edge.is_visible()
    # No mapping registered: the edge names the one the service infers.
    assert edge.locator("text").text_content() == "time_window (inferred)"
    assert _row_ranges(page, "weekly_sales_summary") == {"missing"}
    _shot(page, "1-seed-applied")

    _cli(
        web_server.port, tmp_path, "events", "report", "-n", namespace, "examples/seed-events.jsonl"
    )
    page.goto(url)
    assert _row_ranges(page, "weekly_sales_summary") == {"fresh"}
    assert _row_ranges(page, "daily_sales_data") == {"fresh", "missing"}
    _shot(page, "2-weekly-fresh")

    _cli(
        web_server.port,
        tmp_path,
        "events",
        "report",
        "-n",
        namespace,
        "examples/late-correction.jsonl",
    )
    page.goto(url)
    stale = page.locator('tr[data-asset="weekly_sales_summary"] rect.range.stale')
    assert "click for the causes" in (stale.locator("title").text_content() or "")
    stale.click()
    page.wait_for_selector("li.selected")
    cause = "daily_sales_data 2024-01-09 was materialized after this partition"
    assert cause in page.locator("li.selected").inner_text()
    _shot(page, "3-stale-range-opened")

    page.click("text=which upstream partitions does it need?")
    page.wait_for_selector("table.needs")
    assert "2024-01-07 .. 2024-01-13 (7)" in page.locator("table.needs").inner_text()
    _shot(page, "4-upstream-needed")

    # A run starts on the stale week: a band over its range until the run ends.
    started = tmp_path / "started.jsonl"
    started.write_text(
        json.dumps(
            {
                "idempotency_key": "weekly-rerun",
                # Now: a run holds its targets for its lease, counted from its start.
                "event_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "run_started": {
                    "run_id": "run-4",
                    "targets": [
                        {"asset_key": "weekly_sales_summary", "partition_key": "2024-01-07"}
                    ],
                },
            }
        )
        + "\n"
    )
    _cli(web_server.port, tmp_path, "events", "report", "-n", namespace, str(started))
    page.goto(url)
    assert _row_ranges(page, "weekly_sales_summary") == {"stale", "in_progress"}
    assert "1 in progress" in page.locator('tr[data-asset="weekly_sales_summary"]').inner_text()
    _shot(page, "5-run-in-progress")


def test_automation_ticks_say_what_was_requested_and_why(page: Page, base_url: str) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:8]}"
    daily = {"time_window": {"cron_schedule": "0 0 * * *", "start": "2024-01-01T00:00:00"}}
    weekly = {"time_window": {"cron_schedule": "0 0 * * 0", "start": "2024-01-01T00:00:00"}}
    applied = post(
        f"{base_url}/partitiondeps.v1.DefinitionsService/ApplyAssets",
        {
            "namespace": namespace,
            "assets": [
                {
                    "asset_key": "daily_sales_data",
                    "partitions_definition": daily,
                    "automation_condition": {
                        "on_cron": {"cron_schedule": "0 1 * * *", "cron_timezone": "UTC"}
                    },
                },
                {
                    "asset_key": "weekly_sales_summary",
                    "partitions_definition": weekly,
                    "dependencies": [{"upstream_asset_key": "daily_sales_data"}],
                    "automation_condition": {"eager": {}},
                },
            ],
        },
    )
    assert applied.status == 200, applied.body

    def tick(tick_id: str, at: str) -> None:
        evaluated = post(
            f"{base_url}/partitiondeps.v1.AutomationService/EvaluateAutomation",
            {"namespace": namespace, "tick_id": tick_id, "evaluation_time": at},
        )
        assert evaluated.status == 200, evaluated.body

    # The first tick requests nothing; after the cron's 01:00 tick, the day before is asked
    # for; once the week's days are in, the eager week.
    tick("first", "2024-01-13T00:05:00Z")
    tick("after-cron", "2024-01-13T01:05:00Z")
    days = [f"2024-01-{day:02d}" for day in range(7, 14)]
    reported = post(
        f"{base_url}/partitiondeps.v1.EventsService/ReportEvents",
        materializations(namespace, "daily_sales_data", days, "2024-01-14T01:30:00Z", "d-"),
    )
    assert reported.status == 200, reported.body
    tick("week-done", "2024-01-14T02:05:00Z")

    page.goto(f"{base_url}/ui/namespace?{urlencode({'ns': namespace})}")
    ticks = page.locator("table.ticks tr[data-tick]")
    assert ticks.evaluate_all("rows => rows.map(r => r.dataset.tick)") == [
        "week-done",
        "after-cron",
        "first",
    ]
    assert "1 partition" in page.locator('tr[data-tick="week-done"]').inner_text()
    assert "0 partitions" in page.locator('tr[data-tick="first"]').inner_text()
    _shot(page, "8-automation-ticks")

    page.click("table.ticks a:text-is('week-done')")
    page.wait_for_selector("table.requested")
    requested = page.locator('table.requested tr[data-asset="weekly_sales_summary"]')
    assert "1 partition: 2024-01-07" in requested.inner_text()
    assert page.locator("table.requested tr").count() == 1
    assert "2024-01-07: weekly_sales_summary" in page.locator("ul.runs").inner_text()
    # Why: the week's eager condition, open, true for that week, with the nodes below it.
    why = page.locator('details.evaluation[data-asset="weekly_sales_summary"]')
    assert why.get_attribute("open") is not None
    assert "eager: true for 1 of 1" in why.locator("summary").inner_text()
    tree = why.locator("ul.tree").first.inner_text()
    assert "in_latest_time_window: true for 1 of 1 (2024-01-07)" in tree
    assert "since" in tree
    daily_why = page.locator('details.evaluation[data-asset="daily_sales_data"]')
    assert daily_why.get_attribute("open") is None  # not requested: closed
    assert "on_cron(0 1 * * *, UTC)" in daily_why.locator("summary").inner_text()
    _shot(page, "9-tick-why")


def test_without_a_token_the_page_asks_for_one(browser: Browser, base_url: str) -> None:
    context = browser.new_context()
    anonymous = context.new_page()
    response = anonymous.goto(f"{base_url}/ui/namespace?ns=anything")
    assert response is not None
    assert response.status == 401
    assert anonymous.locator("input[name=token]").is_visible()
    context.close()


# -- 50 assets of 100,000 hourly partitions ---------------------------------------------------

LARGE_AS_OF = datetime(2024, 1, 1, tzinfo=UTC)
PARTITIONS = 100_000
ASSETS = 50


def _hourly(start: datetime) -> dict[str, Any]:
    return {
        "time_window": {
            "cron_schedule": "0 * * * *",
            "start": start.strftime("%Y-%m-%dT%H:%M:%S"),
            "timezone": "UTC",
            "fmt": "%Y-%m-%d-%H:%M",
        }
    }


def test_fifty_assets_of_100000_partitions(page: Page, base_url: str) -> None:
    namespace = f"large-{uuid.uuid4().hex[:8]}"
    start = LARGE_AS_OF - timedelta(hours=PARTITIONS)
    # Five layers of ten; each asset reads one of the layer before.
    assets = [
        {
            "asset_key": f"asset_{i:02d}",
            "partitions_definition": _hourly(start),
            "dependencies": [{"upstream_asset_key": f"asset_{i - 10:02d}"}] if i >= 10 else [],
        }
        for i in range(ASSETS)
    ]
    applied = post(
        f"{base_url}/partitiondeps.v1.DefinitionsService/ApplyAssets",
        {"namespace": namespace, "assets": assets},
    )
    assert applied.status == 200, applied.body

    # A few thousand materializations, in runs, so bars hold many ranges of each status.
    # Then part of asset_10 again: the partitions of asset_20 that read them turn stale.
    def materialized(batch: str, asset: int, hours: range) -> list[dict[str, Any]]:
        return [
            {
                "idempotency_key": f"{batch}-{asset}-{hour}",
                "event_time": LARGE_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "materialization": {
                    "asset_key": f"asset_{asset:02d}",
                    "partition_key": (start + timedelta(hours=hour)).strftime("%Y-%m-%d-%H:%M"),
                },
            }
            for hour in hours
            if hour % 3
        ]

    for events in (
        [e for asset in (0, 10, 20) for e in materialized("m", asset, range(0, PARTITIONS, 97))],
        materialized("again", 10, range(0, PARTITIONS, 97 * 5)),
    ):
        reported = post(
            f"{base_url}/partitiondeps.v1.EventsService/ReportEvents",
            {"namespace": namespace, "events": events},
        )
        assert reported.status == 200, reported.body

    as_of = LARGE_AS_OF.strftime("%Y-%m-%dT%H:%M:%SZ")
    timings: dict[str, float] = {}
    url = f"{base_url}/ui/namespace?{urlencode({'ns': namespace, 'as_of': as_of})}"
    begun = time.perf_counter()
    page.goto(url, timeout=0)  # timed here, never bounded: the machine may be busy
    timings["namespace_page_seconds"] = round(time.perf_counter() - begun, 3)
    assert page.locator("td.counts .error").all_inner_texts() == []
    assert page.locator("g.node").count() == ASSETS
    assert page.locator("g.edge").count() == ASSETS - 10
    labels = page.locator("g.edge text").all_text_contents()
    assert set(labels) == {"time_window (inferred)"}
    assert "100,000 partitions" in page.locator('tr[data-asset="asset_49"]').inner_text()
    assert _row_ranges(page, "asset_20") == {"fresh", "missing", "stale"}
    _shot(page, "6-fifty-assets")

    asset_url = (
        f"{base_url}/ui/asset?{urlencode({'ns': namespace, 'key': 'asset_20', 'as_of': as_of})}"
    )
    begun = time.perf_counter()
    page.goto(asset_url, timeout=0)
    timings["asset_page_seconds"] = round(time.perf_counter() - begun, 3)
    assert "100,000 partitions" in page.locator("p.counts").inner_text()
    _shot(page, "7-one-asset")
    timings["load_average_1min"] = os.getloadavg()[0]
    (ARTIFACTS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    print(f"status page render times: {timings}")
