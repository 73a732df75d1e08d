"""The command line client beyond the README: YAML, JSON output, stdin, tokens, exit codes."""

from __future__ import annotations

import json
import subprocess
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from partition_deps.server import Server

from .conftest import NAMESPACE_A, ROOT, TOKEN_A, TOKEN_ALL, program_env

SEED_YAML = """
namespace: {namespace}
assets:
  - asset_key: daily
    partitions_definition:
      time_window: {{cron_schedule: "0 0 * * *", start: "2024-01-01T00:00:00", timezone: UTC,
                    fmt: "%Y-%m-%d"}}
  - asset_key: weekly
    partitions_definition:
      time_window: {{cron_schedule: "0 0 * * 0", start: "2024-01-01T00:00:00", timezone: UTC,
                    fmt: "%Y-%m-%d"}}
    dependencies: [{{upstream_asset_key: daily}}]
"""


@pytest.fixture
def cli(web_server: Server, tmp_path: Path) -> Any:
    env = program_env(tmp_path) | {"PD_ADDR": f"127.0.0.1:{web_server.port}"}

    def run(
        *args: str, stdin: str = "", token: str | None = TOKEN_ALL
    ) -> subprocess.CompletedProcess[str]:
        with_token = {"PD_TOKEN": token} if token else {}
        return subprocess.run(
            ["partition-deps", *args],
            cwd=ROOT,
            env=env | with_token,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def test_yaml_apply_json_output_and_events_from_stdin(cli: Any, tmp_path: Path) -> None:
    namespace = f"cli-{uuid.uuid4().hex[:8]}"
    seed = tmp_path / "seed.yaml"
    seed.write_text(SEED_YAML.format(namespace=namespace))
    applied = cli("apply", str(seed), "--output", "json")
    assert applied.returncode == 0, applied.stderr
    assert json.loads(applied.stdout)["generation"] == "1"

    namespaces = cli("namespaces").stdout.splitlines()
    assert namespaces[0].split() == ["NAMESPACE", "ASSETS", "GENERATION"]
    assert [namespace, "2", "1"] in [line.split() for line in namespaces]
    listed = json.loads(cli("assets", "list", "-n", namespace, "-o", "json").stdout)
    assert [asset["assetKey"] for asset in listed["assets"]] == ["daily", "weekly"]
    got = cli("assets", "get", "-n", namespace, "weekly")
    assert got.stdout.splitlines()[1].split() == [
        "weekly",
        "time_window",
        "'0",
        "0",
        "*",
        "*",
        "0'",
        "daily",
    ]

    lines = "\n".join(
        json.dumps(
            {
                "idempotency_key": f"k-{day}",
                "event_time": "2024-02-01T00:00:00Z",
                "materialization": {"asset_key": "daily", "partition_key": f"2024-01-{day:02d}"},
            }
        )
        for day in range(1, 8)
    )
    reported = cli("events", "report", "-n", namespace, stdin=lines + "\n\n")
    assert (reported.returncode, reported.stdout.strip()) == (0, "stored 7, duplicates 0")
    again = cli("events", "report", "-n", namespace, "-", stdin=lines)
    assert again.stdout.strip() == "stored 0, duplicates 7"

    plan = json.loads(
        cli(
            "plan", "-n", namespace, "daily", "--catch-up", "--as-of", "2024-01-10", "-o", "json"
        ).stdout
    )
    [missing] = plan["runs"]
    assert (missing["range"]["firstPartitionKey"], missing["range"]["lastPartitionKey"]) == (
        "2024-01-08",
        "2024-01-09",
    )


def test_exit_codes_name_what_went_wrong(cli: Any, tmp_path: Path) -> None:
    bad_line = cli("events", "report", "-n", NAMESPACE_A, stdin='{"idempotency_key": 1, "x": 2}\n')
    assert bad_line.returncode == 2
    assert bad_line.stderr.startswith("partition-deps events: stdin:1: ")
    missing_file = cli("apply", str(tmp_path / "absent.json"))
    assert missing_file.returncode == 2

    unknown = cli("assets", "get", "-n", "cli-nowhere", "x")
    assert unknown.returncode == 3
    assert "NOT_FOUND NAMESPACE_NOT_FOUND" in unknown.stderr

    no_token = cli("assets", "list", "-n", NAMESPACE_A, token=None)
    assert (no_token.returncode, no_token.stderr.split(":")[1].split()[0]) == (4, "UNAUTHENTICATED")
    other = cli("assets", "list", "-n", "cli-other", token=TOKEN_A)
    assert other.returncode == 4
    assert "PERMISSION_DENIED NAMESPACE_NOT_GRANTED field namespace" in other.stderr

    unreachable = cli(
        "assets", "list", "-n", NAMESPACE_A, "--addr", "127.0.0.1:1", "--timeout", "5"
    )
    assert (unreachable.returncode, unreachable.stderr.split(":")[1].split()[0]) == (
        5,
        "UNAVAILABLE",
    )

    usage = cli("staleness")
    assert usage.returncode == 2


def test_version(cli: Any) -> None:
    done = cli("--version")
    assert (done.returncode, done.stdout.strip()) == (0, version("partition-deps"))
