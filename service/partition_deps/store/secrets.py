"""Secrets shared by every replica, kept in the database."""

from __future__ import annotations

from psycopg_pool import ConnectionPool

from partition_deps.store.database import transaction


def page_token_key(pool: ConnectionPool) -> bytes:
    """The key that signs page tokens (drawn by migration 0006)."""
    with transaction(pool) as conn:
        row = conn.execute(
            "SELECT secret FROM server_secrets WHERE name = 'page_tokens'"
        ).fetchone()
    if row is None:
        raise RuntimeError("the database has no page token key: migration 0006 is missing")
    return bytes(row[0])
