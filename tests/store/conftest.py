"""Store fixtures: a connection pool on the session database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.store.database import PoolSettings, open_pool


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, PoolSettings(min_size=1, max_size=4))
    yield pool
    pool.close()
