"""The README's walk-throughs, line by line as written, through the real program and curl.

The command line runs as the `partition-deps` program (a wrapper on PATH that starts this
checkout's code) against a live server (PD_ADDR); the curl lines run as written but for the
address. Each line's output is checked; the curl block runs after the command line one, so it
finds the namespace the command line filled.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from partition_deps.server import Server

from .conftest import ROOT, TOKEN_ALL, program_env

README = ROOT / "README.md"

# Per line of the command line block: the exit code and what the output holds.
CLI_EXPECTED = [
    (0, ["namespace demo: generation 1", "daily_sales_data      applied"]),
    (0, ["stored 8, duplicates 0"]),
    (0, ["daily_sales_data  time_window  7      2024-01-07..2024-01-13 (7)  -"]),
    (0, ["weekly_sales_summary  time_window  1      2024-01-07"]),
    (
        0,
        [
            "daily_sales_data      7      0      12       -             "
            "2024-01-01..2024-01-06 (6), 2024-01-14..2024-01-19 (6)",
            "weekly_sales_summary  1      0      0        -             -",
        ],
    ),
    (0, ["stored 1, duplicates 0"]),
    (
        0,
        [
            "weekly_sales_summary  0      1      0        2024-01-07    -",
            "weekly_sales_summary  2024-01-07  STALE   "
            "daily_sales_data 2024-01-09 was materialized after this partition",
        ],
    ),
    (
        0,
        [
            "daily_sales_data      2024-01-01..2024-01-06 (6)  yes    missing",
            "weekly_sales_summary  2024-01-07                  yes    stale: upstream_updated",
            "3 runs, 13 partitions",
        ],
    ),
    (
        3,
        [
            "partition-deps upstream: INVALID_ARGUMENT INVALID_PARTITION_KEY field "
            "selection.keys.partition_keys[0]: '2024-01-06' is not a partition key: "
            "the partition starting then is '2024-01-07'"
        ],
    ),
]


def _block(name: str) -> list[str]:
    """The command lines of the README's `walk-through: <name>` block."""
    text = README.read_text()
    match = re.search(rf"<!-- walk-through: {name} .*?-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, f"README has no {name} walk-through"
    return [line for line in match.group(1).splitlines() if line and not line.startswith("#")]


def _run(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_readme_walk_throughs_run_as_written(
    web_server: Server, base_url: str, tmp_path: Path
) -> None:
    env = program_env(tmp_path)
    env |= {"PD_ADDR": f"127.0.0.1:{web_server.port}", "PD_TOKEN": TOKEN_ALL}
    lines = _block("cli")
    assert len(lines) == len(CLI_EXPECTED)
    for line, (status, expected) in zip(lines, CLI_EXPECTED, strict=True):
        done = _run(line, env)
        assert done.returncode == status, (line, done.stdout, done.stderr)
        for text in expected:
            assert text in done.stdout + done.stderr, (line, done.stdout, done.stderr)

    answers = []
    for line in _block("curl"):
        assert "localhost:8080" in line
        command = line.replace("localhost:8080", base_url.removeprefix("http://"))
        done = _run(
            command.replace("curl -s", f"curl -s -H 'Authorization: Bearer {TOKEN_ALL}'"), env
        )
        assert done.returncode == 0, (line, done.stderr)
        answers.append(json.loads(done.stdout))
    applied, reported, upstream, staleness, plan, refused = answers
    assert [asset["assetKey"] for asset in applied["assets"]] == [
        "daily_sales_data",
        "weekly_sales_summary",
    ]
    # The command line reported them first; the answer says how far the namespace's events go.
    assert reported.keys() == {"duplicateCount", "eventPosition"}
    assert reported["duplicateCount"] == 8
    assert int(reported["eventPosition"]) > 0
    [dependency] = upstream["dependencies"]
    assert dependency["partitions"]["ranges"][0]["firstPartitionKey"] == "2024-01-07"
    assert dependency["partitions"]["count"] == "7"
    weekly = staleness["assets"][1]
    assert weekly["staleRanges"][0]["firstPartitionKey"] == "2024-01-07"
    [stale] = [p for p in staleness["partitions"] if p["status"] == "STALE_STATUS_STALE"]
    assert stale["causes"][0]["kind"] == "STALE_CAUSE_KIND_UPSTREAM_UPDATED"
    assert (plan["totalRuns"], plan["totalPartitions"]) == ("3", "13")
    assert refused["code"] == "invalid_argument"
    [info] = [d["debug"] for d in refused["details"] if d["type"] == "google.rpc.ErrorInfo"]
    assert info["reason"] == "INVALID_PARTITION_KEY"
    assert info["metadata"]["field"] == "selection.keys.partition_keys[0]"
