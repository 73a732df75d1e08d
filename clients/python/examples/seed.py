"""Play the seed scenario against a running server.

daily_sales_data (daily) feeds weekly_sales_summary (weekly); seven daily partitions are
materialized; then it asks which daily partitions weekly 2024-01-07 needs, with their windows.

    PD_ADDR=127.0.0.1:50051 python examples/seed.py

The API has no staleness RPC yet, so the example stops after the upstream question.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

from partition_deps_client import Client, asset, daily, materialization, weekly

DAILY = "daily_sales_data"
WEEKLY = "weekly_sales_summary"


def main() -> int:
    address = os.environ.get("PD_ADDR", "127.0.0.1:50051")
    namespace = sys.argv[1] if len(sys.argv) > 1 else f"seed-py-{time.time_ns()}"
    with Client(address) as pd:
        applied = pd.apply_assets(
            namespace,
            [
                asset(DAILY, daily("2024-01-01")),
                # No mapping: the service infers Dagster's default (a time-window mapping).
                asset(WEEKLY, weekly("2024-01-01"), depends_on=[DAILY]),
            ],
        )
        print(f'registered {DAILY} and {WEEKLY} in "{namespace}" (generation {applied.generation})')

        first = datetime(2024, 1, 7, tzinfo=UTC)
        days = [first + timedelta(days=n) for n in range(7)]
        reported = pd.report_events(
            namespace,
            [
                materialization(
                    f"seed-{day:%Y-%m-%d}",
                    day + timedelta(hours=25),
                    DAILY,
                    f"{day:%Y-%m-%d}",
                    run_id=f"run-{day:%Y-%m-%d}",
                    data_version="v1",
                )
                for day in days
            ],
        )
        print(f"reported {len(days)} materializations ({reported.stored_count} new)")

        answer = pd.upstream_partitions(
            namespace, WEEKLY, ["2024-01-07"], as_of=datetime(2024, 2, 1, tzinfo=UTC)
        )
        for dependency in answer.dependencies:
            needed = dependency.partitions
            print(
                f"{WEEKLY} 2024-01-07 needs {needed.count} partitions"
                f" of {dependency.upstream_asset_key}:"
            )
            for key in needed.partition_keys:
                window = pd.time_window(namespace, dependency.upstream_asset_key, key)
                print(f"  {key}  [{window.start.isoformat()}, {window.end.isoformat()})")
            if dependency.required_but_nonexistent.count:
                print(f"  {dependency.required_but_nonexistent.count} do not exist yet")
        print("staleness: skipped (the API has no staleness RPC yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
