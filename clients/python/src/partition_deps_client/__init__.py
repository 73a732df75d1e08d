"""A small typed client for the partition-deps gRPC service.

    from partition_deps_client import Client, daily, weekly, asset

    with Client("127.0.0.1:50051", token="...") as pd:
        pd.apply_assets("ns", [asset("daily", daily("2024-01-01")), ...])

`partition_deps_client.dagster` (extra `dagster`) registers Dagster definitions.
"""

from partition_deps_client import pb
from partition_deps_client.builders import (
    DAILY_CRON,
    HOURLY_CRON,
    MONTHLY_CRON,
    WEEKLY_CRON,
    asset,
    daily,
    keys,
    materialization,
    observation,
    run_canceled,
    run_failed,
    run_heartbeat,
    run_started,
    run_succeeded,
    time_window,
    wall_time,
    weekly,
)
from partition_deps_client.client import Client, Tls, Window, service_config
from partition_deps_client.errors import ErrorDetails, error_details
from partition_deps_client.paging import pages

__all__ = [
    "DAILY_CRON",
    "HOURLY_CRON",
    "MONTHLY_CRON",
    "WEEKLY_CRON",
    "Client",
    "ErrorDetails",
    "Tls",
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
