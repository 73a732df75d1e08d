"""Transactions: the request's deadline bounds statements; a lost database is StoreUnavailable."""

from __future__ import annotations

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from partition_deps.store.database import PoolSettings, open_pool, statement_budget, transaction
from partition_deps.store.errors import StoreUnavailable


def test_the_statement_budget_cancels_a_slow_statement(pool: ConnectionPool) -> None:
    token = statement_budget.set(0.05)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled), transaction(pool) as conn:
            conn.execute("SELECT pg_sleep(2)")
    finally:
        statement_budget.reset(token)
    with transaction(pool) as conn:  # the timeout was local to that transaction
        row = conn.execute("SHOW statement_timeout").fetchone()
    assert row == ("0",)


def test_an_unreachable_database_is_store_unavailable() -> None:
    unreachable = open_pool(
        "postgresql://nobody@127.0.0.1:1/none",
        PoolSettings(min_size=0, max_size=1, acquire_timeout=0.5, connect_timeout=1),
        wait=False,
    )
    try:
        with pytest.raises(StoreUnavailable), transaction(unreachable) as conn:
            conn.execute("SELECT 1")
    finally:
        unreachable.close()
