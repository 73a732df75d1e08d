"""Definitions repository and cache on a real Postgres."""

from __future__ import annotations

import time
from collections.abc import Mapping

import pytest
from psycopg_pool import ConnectionPool

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import DynamicPartitions
from partition_deps.domain.mappings.kinds import TimeWindowMapping
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.database import migrate
from partition_deps.store.definitions import DefinitionsRepository
from partition_deps.store.errors import (
    AssetInUse,
    AssetNotFound,
    GenerationMismatch,
    NamespaceNotFound,
)
from tests.domain.definitions import DAILY, WEEKLY

SALES = AssetDefinition("daily_sales_data", DAILY, code_version="1")
SUMMARY = AssetDefinition(
    "weekly_sales_summary",
    WEEKLY,
    dependencies=(Dependency("daily_sales_data", TimeWindowMapping(-1, 0)),),
)


def accept(_: Mapping[str, AssetDefinition]) -> None:
    return None


class Rejected(Exception):
    pass


def reject(_: Mapping[str, AssetDefinition]) -> None:
    raise Rejected


@pytest.fixture
def repository(pool: ConnectionPool) -> DefinitionsRepository:
    return DefinitionsRepository(pool)


def apply(
    repository: DefinitionsRepository, namespace: str, *assets: AssetDefinition, **options: object
) -> int:
    return repository.apply_assets(
        namespace,
        list(assets),
        replace_all=bool(options.get("replace_all", False)),
        expected_generation=options.get("expected_generation"),  # type: ignore[arg-type]
        validate=accept,
    )


def test_migrations_are_idempotent(database_url: str) -> None:
    assert migrate(database_url) == []


def test_apply_round_trips_assets_and_bumps_the_generation(
    repository: DefinitionsRepository, namespace: str
) -> None:
    assert apply(repository, namespace, SALES, SUMMARY) == 1
    snapshot = repository.load_snapshot(namespace)
    assert snapshot.generation == 1
    assert dict(snapshot.assets) == {SALES.key: SALES, SUMMARY.key: SUMMARY}
    assert snapshot.dependents == {SALES.key: (SUMMARY.key,)}
    assert apply(repository, namespace, SALES) == 2


def test_rejected_apply_writes_nothing(repository: DefinitionsRepository, namespace: str) -> None:
    with pytest.raises(Rejected):
        repository.apply_assets(
            namespace, [SALES], replace_all=False, expected_generation=None, validate=reject
        )
    with pytest.raises(NamespaceNotFound):
        repository.load_snapshot(namespace)


def test_replace_all_deletes_unlisted_assets(
    repository: DefinitionsRepository, namespace: str
) -> None:
    apply(repository, namespace, SALES, SUMMARY)
    apply(repository, namespace, SALES, replace_all=True)
    assert list(repository.load_snapshot(namespace).assets) == [SALES.key]


def test_expected_generation_guards_concurrent_writers(
    repository: DefinitionsRepository, namespace: str
) -> None:
    apply(repository, namespace, SALES, expected_generation=0)
    with pytest.raises(GenerationMismatch):
        apply(repository, namespace, SALES, expected_generation=0)
    assert apply(repository, namespace, SALES, expected_generation=1) == 2


def test_delete_asset_refuses_an_asset_in_use(
    repository: DefinitionsRepository, namespace: str
) -> None:
    apply(repository, namespace, SALES, SUMMARY)
    with pytest.raises(AssetInUse):
        repository.delete_asset(namespace, SALES.key)
    repository.delete_asset(namespace, SUMMARY.key)
    repository.delete_asset(namespace, SALES.key)
    with pytest.raises(AssetNotFound):
        repository.delete_asset(namespace, SALES.key)
    assert repository.load_snapshot(namespace).generation == 3


def test_dynamic_partitions_keep_insertion_order_and_tombstones(
    repository: DefinitionsRepository, namespace: str
) -> None:
    apply(repository, namespace, AssetDefinition("customers", DynamicPartitions("customers")))
    assert repository.add_dynamic_partitions(namespace, "customers", ["b", "a"]) == (2, 2)
    assert repository.add_dynamic_partitions(namespace, "customers", ["a", "c"]) == (3, 1)
    assert repository.delete_dynamic_partitions(namespace, "customers", ["b", "zz"]) == (4, 1)
    assert repository.add_dynamic_partitions(namespace, "customers", ["b"]) == (5, 1)
    assert repository.load_snapshot(namespace).dynamic_keys == {"customers": ("a", "c", "b")}
    listed = repository.list_dynamic_partitions(
        namespace, "customers", after_id=0, limit=10, show_deleted=True
    )
    keys = [(record.partition_key, record.deleted_at is not None) for _, record in listed]
    assert keys == [("b", True), ("a", False), ("c", False), ("b", False)]
    page = repository.list_dynamic_partitions(
        namespace, "customers", after_id=listed[1][0], limit=1, show_deleted=False
    )
    assert [record.partition_key for _, record in page] == ["c"]


def test_cache_serves_snapshots_and_learns_of_other_writers(
    repository: DefinitionsRepository, namespace: str, database_url: str
) -> None:
    apply(repository, namespace, SALES)
    cache = DefinitionsCache(repository, database_url)
    cache.start()
    try:
        assert cache.listening
        first = cache.snapshot(namespace)
        assert cache.snapshot(namespace) is first  # served from memory
        # Another replica writes: only the notification tells this cache.
        apply(repository, namespace, SALES, SUMMARY)
        deadline = time.monotonic() + 5
        while cache.snapshot(namespace).generation == first.generation:
            assert time.monotonic() < deadline, "notification never arrived"
            time.sleep(0.01)
        assert set(cache.snapshot(namespace).assets) == {SALES.key, SUMMARY.key}
    finally:
        cache.stop()


def test_cache_serves_a_namespace_still_at_generation_zero(
    repository: DefinitionsRepository, namespace: str, database_url: str
) -> None:
    # Adding no key creates the namespace without changing it: generation 0.
    assert repository.add_dynamic_partitions(namespace, "customers", []) == (0, 0)
    cache = DefinitionsCache(repository, database_url)
    cache.start()
    try:
        assert cache.listening
        first = cache.snapshot(namespace)
        assert first.generation == 0
        assert cache.snapshot(namespace) is first  # served from memory
    finally:
        cache.stop()
