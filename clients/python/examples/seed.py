"""Play the seed scenario against a running server.

daily_sales_data (daily) feeds weekly_sales_summary (weekly); seven daily partitions are
materialized; it asks which daily partitions weekly 2024-01-07 needs, with their windows; then
what is stale: weekly 2024-01-07 is missing, and once materialized it turns stale when one of
its days is materialized again.

    PD_ADDR=127.0.0.1:50051 python examples/seed.py    (PD_TOKEN: a bearer token, if auth is on)
"""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime, timedelta

from partition_deps_client import Client, asset, daily, materialization, pb, weekly

DAILY = "daily_sales_data"
WEEKLY = "weekly_sales_summary"
AS_OF = datetime(2024, 2, 1, tzinfo=UTC)


def weekly_status(pd: Client, namespace: str) -> str:
    """Print and return the status of weekly 2024-01-07 with its causes."""
    answer = pd.stale_partitions(
        namespace, [WEEKLY], ["2024-01-07"], as_of=AS_OF, include_fresh=True
    )
    [partition] = answer.partitions
    status = pb.staleness.StaleStatus.Name(partition.status).removeprefix("STALE_STATUS_")
    print(f"staleness of {WEEKLY} 2024-01-07: {status}")
    for cause in partition.causes:
        print(f"  because {cause.message}")
    return status


def main() -> int:
    address = os.environ.get("PD_ADDR", "127.0.0.1:50051")
    namespace = sys.argv[1] if len(sys.argv) > 1 else f"seed-py-{time.time_ns()}"
    with Client(address, token=os.environ.get("PD_TOKEN") or None) as pd:
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

        answer = pd.upstream_partitions(namespace, WEEKLY, ["2024-01-07"], as_of=AS_OF)
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

        # What is stale? weekly 2024-01-07 was never materialized: MISSING (and runnable).
        weekly_status(pd, namespace)
        # Materialize it, then one of its days again: it is STALE, with the cause.
        pd.report_events(
            namespace,
            [
                materialization(
                    "seed-weekly-2024-01-07",
                    datetime(2024, 1, 15, tzinfo=UTC),
                    WEEKLY,
                    "2024-01-07",
                    run_id="run-weekly",
                    data_version="w1",
                ),
                materialization(
                    "seed-2024-01-09-again",
                    datetime(2024, 1, 16, tzinfo=UTC),
                    DAILY,
                    "2024-01-09",
                    run_id="run-fix",
                    data_version="v2",
                ),
            ],
        )
        print(f"materialized {WEEKLY} 2024-01-07, then {DAILY} 2024-01-09 again")
        weekly_status(pd, namespace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
