"""Answers kept for paging: chunks read back by range, expiry, and the byte budget."""

from __future__ import annotations

from datetime import timedelta

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition
from partition_deps.store.answer_snapshots import AnswerSnapshots
from tests.store.conftest import stored_namespace

from ..threads import run_concurrently

HEADER = b"header"
CHUNKS = [bytes([n]) * 100 for n in range(5)]
ANSWER_BYTES = len(HEADER) + sum(len(chunk) for chunk in CHUNKS)


@pytest.fixture
def namespace_id(pool: ConnectionPool, namespace: str) -> int:
    return stored_namespace(pool, namespace, [AssetDefinition("a")], replace_all=False)


def test_chunks_are_read_back_by_range(pool: ConnectionPool, namespace_id: int) -> None:
    snapshots = AnswerSnapshots(pool)
    snapshot_id = snapshots.save(namespace_id, HEADER, 2_345, CHUNKS)
    page = snapshots.load(snapshot_id, namespace_id, 1, 3)
    assert page is not None
    assert (page.header, page.item_count) == (HEADER, 2_345)
    assert page.chunks == [(1, CHUNKS[1]), (2, CHUNKS[2]), (3, CHUNKS[3])]
    # Another namespace's token cannot reach it.
    assert snapshots.load(snapshot_id, namespace_id + 1_000_000, 0, 0) is None


def test_an_expired_answer_is_gone(pool: ConnectionPool, namespace_id: int) -> None:
    expired = AnswerSnapshots(pool, ttl=timedelta(seconds=-1))
    snapshot_id = expired.save(namespace_id, HEADER, 1, CHUNKS[:1])
    assert expired.load(snapshot_id, namespace_id, 0, 0) is None


def test_the_oldest_answers_make_room_for_a_new_one(
    pool: ConnectionPool, namespace_id: int
) -> None:
    snapshots = AnswerSnapshots(pool, budget_bytes=2 * ANSWER_BYTES)
    first, second, third = (snapshots.save(namespace_id, HEADER, 5, CHUNKS) for _ in range(3))
    assert snapshots.load(first, namespace_id, 0, 0) is None
    assert snapshots.load(second, namespace_id, 0, 0) is not None
    assert snapshots.load(third, namespace_id, 0, 0) is not None


def test_concurrent_saves_stay_within_the_budget(pool: ConnectionPool, namespace_id: int) -> None:
    budget = 3 * ANSWER_BYTES
    snapshots = AnswerSnapshots(pool, budget_bytes=budget)

    def save_some() -> None:
        for _ in range(5):
            snapshots.save(namespace_id, HEADER, 5, CHUNKS)

    run_concurrently([save_some] * 4)
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT coalesce(sum(bytes), 0), count(*) FROM answer_snapshots"
        ).fetchone()
    assert row == (budget, 3)
