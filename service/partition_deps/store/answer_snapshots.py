"""Answers kept for paging: a multi-page answer is stored when its first page is served, and
its following pages are read back from it, by any replica, whatever was written since.

An answer is a header (the response without its items) and its items in chunks of
`CHUNK_ITEMS`, each chunk serialized by the caller. Kept answers expire `ttl` after they were
stored; all of them together hold at most `budget_bytes` (the oldest are dropped first to make
room; an answer larger than the whole budget alone is still kept, the partitions one answer
covers being bounded by the request limits).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from psycopg_pool import ConnectionPool

from partition_deps.store.database import transaction

CHUNK_ITEMS = 500
DEFAULT_TTL = timedelta(minutes=30)
DEFAULT_BUDGET_BYTES = 512 * 1024 * 1024
# Two-key advisory lock (class, 0) taken by every save, so that the budget is checked by one
# save at a time; it never conflicts with the one-key migration lock or the ingest locks.
_SAVE_LOCK_CLASS = 0x50444153  # "PDAS"

_DROP_EXPIRED = "DELETE FROM answer_snapshots WHERE expires_at <= now()"
# Keep the newest answers that fit in the budget beside the new one; drop the others.
_DROP_OVER_BUDGET = """
DELETE FROM answer_snapshots WHERE snapshot_id IN (
    SELECT snapshot_id FROM (
        SELECT snapshot_id,
               sum(bytes) OVER (ORDER BY expires_at DESC, snapshot_id) AS kept_bytes
        FROM answer_snapshots) newest_first
    WHERE kept_bytes + %(incoming)s > %(budget)s)
"""

_COPY_CHUNKS = "COPY answer_snapshot_chunks (snapshot_id, chunk, items) FROM STDIN"


@dataclass(frozen=True)
class StoredPage:
    header: bytes
    item_count: int
    # (chunk number, serialized chunk), by chunk number.
    chunks: list[tuple[int, bytes]]


class AnswerSnapshots:
    """Thread safety: holds only the pool (thread-safe) and constants."""

    def __init__(
        self,
        pool: ConnectionPool,
        ttl: timedelta = DEFAULT_TTL,
        budget_bytes: int = DEFAULT_BUDGET_BYTES,
    ) -> None:
        self._pool = pool
        self._ttl = ttl
        self._budget_bytes = budget_bytes

    def save(
        self, namespace_id: int, header: bytes, item_count: int, chunks: Sequence[bytes]
    ) -> str:
        """Keep an answer; its id."""
        size = len(header) + sum(len(chunk) for chunk in chunks)
        with transaction(self._pool) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_SAVE_LOCK_CLASS,))
            conn.execute(_DROP_EXPIRED)
            conn.execute(_DROP_OVER_BUDGET, {"incoming": size, "budget": self._budget_bytes})
            row = conn.execute(
                "INSERT INTO answer_snapshots (namespace_id, expires_at, item_count, bytes, header)"
                " VALUES (%s, now() + %s, %s, %s, %s) RETURNING snapshot_id::text",
                (namespace_id, self._ttl, item_count, size, header),
            ).fetchone()
            assert row is not None
            snapshot_id = str(row[0])
            with (
                conn.cursor() as cursor,
                cursor.copy(
                    "COPY answer_snapshot_chunks (snapshot_id, chunk, items) FROM STDIN"
                ) as copy,
            ):
                for number, chunk in enumerate(chunks):
                    copy.write_row((snapshot_id, number, chunk))
        return snapshot_id

    def load(
        self, snapshot_id: str, namespace_id: int, first_chunk: int, last_chunk: int
    ) -> StoredPage | None:
        """The header and the chunks `first_chunk`..`last_chunk` of a kept answer; None when
        it expired or was dropped for room."""
        with transaction(self._pool, read_only_snapshot=True) as conn:
            row = conn.execute(
                "SELECT header, item_count FROM answer_snapshots WHERE snapshot_id = %s::uuid"
                " AND namespace_id = %s AND expires_at > now()",
                (snapshot_id, namespace_id),
            ).fetchone()
            if row is None:
                return None
            chunks = conn.execute(
                "SELECT chunk, items FROM answer_snapshot_chunks WHERE snapshot_id = %s::uuid"
                " AND chunk BETWEEN %s AND %s ORDER BY chunk",
                (snapshot_id, first_chunk, last_chunk),
            ).fetchall()
        return StoredPage(
            bytes(row[0]), int(row[1]), [(int(number), bytes(items)) for number, items in chunks]
        )
