"""Store fixtures: a connection pool on the session database, and a namespace's assets stored."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition
from partition_deps.store.database import PoolSettings, open_pool
from partition_deps.store.definitions import DefinitionsRepository


@pytest.fixture(scope="module")
def pool(database_url: str) -> Iterator[ConnectionPool]:
    pool = open_pool(database_url, PoolSettings(min_size=1, max_size=4))
    yield pool
    pool.close()


def stored_namespace(
    pool: ConnectionPool, namespace: str, assets: Iterable[AssetDefinition], *, replace_all: bool
) -> int:
    """Stores `assets` in `namespace` as they are (no checks, no expected generation) and
    returns the namespace's id, for tests of what the store does with them."""
    definitions = DefinitionsRepository(pool)
    definitions.apply_assets(
        namespace,
        list(assets),
        replace_all=replace_all,
        expected_generation=None,
        validate=lambda _: None,
    )
    return definitions.load_snapshot(namespace).namespace_id
