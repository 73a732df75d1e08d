"""Partition definitions that domain and store tests share: hours, days and weeks from
2024-01-01 (UTC), three regions, and days by region."""

from __future__ import annotations

from datetime import datetime

from partition_deps.domain.definitions import (
    Dimension,
    MultiPartitions,
    StaticPartitions,
    TimeWindowPartitions,
)

HOURLY = TimeWindowPartitions("0 * * * *", datetime(2024, 1, 1), fmt="%Y-%m-%d-%H:%M")
DAILY = TimeWindowPartitions("0 0 * * *", datetime(2024, 1, 1))
WEEKLY = TimeWindowPartitions("0 0 * * 0", datetime(2024, 1, 1))
REGIONS = StaticPartitions(("us", "eu", "apac"))
DATE_BY_REGION = MultiPartitions((Dimension("date", DAILY), Dimension("region", REGIONS)))
