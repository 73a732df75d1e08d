"""The public surface of the package, pinned: a change to it is a deliberate one."""

from __future__ import annotations

import partition_deps_client


def test_exported_members() -> None:
    assert sorted(partition_deps_client.__all__) == [
        "Client",
        "DAILY_CRON",
        "ErrorDetails",
        "HOURLY_CRON",
        "MONTHLY_CRON",
        "Tls",
        "WEEKLY_CRON",
        "Window",
        "asset",
        "daily",
        "error_details",
        "keys",
        "materialization",
        "observation",
        "pages",
        "pb",
        "run_canceled",
        "run_failed",
        "run_heartbeat",
        "run_started",
        "run_succeeded",
        "service_config",
        "time_window",
        "wall_time",
        "weekly",
    ]
    for name in partition_deps_client.__all__:
        assert hasattr(partition_deps_client, name), name


def test_the_client_needs_neither_the_service_nor_dagster() -> None:
    import sys

    assert "partition_deps" not in sys.modules  # the service package
    assert "dagster" not in sys.modules or "partition_deps_client.dagster" in sys.modules
