"""Registered assets and dynamic partitions of a namespace, read and written atomically."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from partition_deps.domain import codec
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.automation.conditions import condition_from_json, condition_to_json
from partition_deps.store.database import transaction
from partition_deps.store.errors import (
    AssetInUse,
    AssetNotFound,
    GenerationMismatch,
    NamespaceNotFound,
)

GENERATION_CHANNEL = "partition_deps_generation"


class SnapshotMemo:
    """Values derived from one snapshot (resolved mappings, horizons, orders), shared by every
    call that reads the snapshot. A value must never be changed once stored: callers read it
    concurrently. Racing callers compute equal values; `setdefault` makes them share the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Thread safety: guarded by self._lock; the values are immutable once stored.
        self._values: dict[Hashable, Any] = {}

    def get(self, key: Hashable) -> Any:
        with self._lock:
            return self._values.get(key)

    def setdefault(self, key: Hashable, value: Any) -> Any:
        """The value stored for `key`, storing `value` if there is none yet."""
        with self._lock:
            return self._values.setdefault(key, value)

    def __setitem__(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._values[key] = value


# Thread safety: immutable once loaded (its maps are never changed), shared by every call
# through store/cache.py; `memo` is guarded by its own lock.
@dataclass(frozen=True)
class NamespaceSnapshot:
    """Everything a query needs about one namespace, at one generation.

    `memo` is a per-snapshot scratch space for values derived from it (resolved mappings):
    they stay valid exactly as long as the snapshot does.
    """

    namespace: str
    namespace_id: int
    generation: int
    assets: Mapping[str, AssetDefinition]
    asset_generations: Mapping[str, int]
    # upstream key -> keys of the assets that depend on it, sorted
    dependents: Mapping[str, tuple[str, ...]]
    # dynamic definition name -> live keys in insertion order
    dynamic_keys: Mapping[str, tuple[str, ...]]
    memo: SnapshotMemo = field(default_factory=SnapshotMemo, compare=False, repr=False)


@dataclass(frozen=True)
class DynamicPartitionRecord:
    partition_key: str
    added_at: datetime
    deleted_at: datetime | None


GraphValidator = Callable[[Mapping[str, AssetDefinition]], None]


class DefinitionsRepository:
    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    # -- reads ---------------------------------------------------------------------------

    def list_namespaces(
        self, after: str, limit: int, only: frozenset[str] | None
    ) -> list[tuple[str, int, int]]:
        """(name, generation, asset count) of up to `limit` namespaces named after `after`, in
        name order; with `only`, among those names."""
        with transaction(self._pool, read_only_snapshot=True) as conn:
            rows = conn.execute(
                "SELECT n.name, n.generation,"
                " (SELECT count(*) FROM assets a WHERE a.namespace_id = n.namespace_id)"
                " FROM namespaces n WHERE n.name > %(after)s"
                " AND (%(only)s::text[] IS NULL OR n.name = ANY(%(only)s::text[]))"
                " ORDER BY n.name LIMIT %(limit)s",
                {"after": after, "only": None if only is None else sorted(only), "limit": limit},
            ).fetchall()
        return [(str(name), int(generation), int(count)) for name, generation, count in rows]

    def load_snapshot(self, namespace: str) -> NamespaceSnapshot:
        # One consistent view of the namespace, even if a writer commits meanwhile.
        with transaction(self._pool, read_only_snapshot=True) as conn:
            row = conn.execute(
                "SELECT namespace_id, generation FROM namespaces WHERE name = %s", (namespace,)
            ).fetchone()
            if row is None:
                raise NamespaceNotFound(f"namespace {namespace!r} does not exist", "namespace")
            namespace_id, generation = row
            assets, asset_generations = _load_assets(conn, namespace_id)
            dynamic: dict[str, list[str]] = {}
            for name, key in conn.execute(
                "SELECT definition_name, partition_key FROM dynamic_partitions"
                " WHERE namespace_id = %s AND deleted_at IS NULL ORDER BY definition_name, id",
                (namespace_id,),
            ):
                dynamic.setdefault(name, []).append(key)
        dependents: dict[str, list[str]] = {}
        for asset in assets.values():
            for dependency in asset.dependencies:
                dependents.setdefault(dependency.upstream_key, []).append(asset.key)
        return NamespaceSnapshot(
            namespace=namespace,
            namespace_id=namespace_id,
            generation=generation,
            assets=assets,
            asset_generations=asset_generations,
            dependents={k: tuple(sorted(v)) for k, v in dependents.items()},
            dynamic_keys={k: tuple(v) for k, v in dynamic.items()},
        )

    def list_dynamic_partitions(
        self,
        namespace: str,
        definition_name: str,
        *,
        after_id: int,
        limit: int,
        show_deleted: bool,
    ) -> list[tuple[int, DynamicPartitionRecord]]:
        """Up to `limit` keys with an id above `after_id`, in insertion order, with their ids."""
        with transaction(self._pool) as conn:
            namespace_id = _namespace_id(conn, namespace)
            rows = conn.execute(
                "SELECT id, partition_key, added_at, deleted_at FROM dynamic_partitions"
                " WHERE namespace_id = %s AND definition_name = %s AND id > %s"
                " AND (%s OR deleted_at IS NULL) ORDER BY id LIMIT %s",
                (namespace_id, definition_name, after_id, show_deleted, limit),
            ).fetchall()
        return [(row[0], DynamicPartitionRecord(row[1], row[2], row[3])) for row in rows]

    # -- writes --------------------------------------------------------------------------

    def apply_assets(
        self,
        namespace: str,
        assets: Sequence[AssetDefinition],
        *,
        replace_all: bool,
        expected_generation: int | None,
        validate: GraphValidator,
    ) -> int:
        """Write `assets` (and delete the others with `replace_all`) in one transaction.

        `validate` sees the whole resulting graph and raises to reject it; the namespace row is
        locked meanwhile, so concurrent writers see each other's graphs. Returns the new
        generation.
        """
        with transaction(self._pool) as conn:
            conn.execute(
                "INSERT INTO namespaces (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                (namespace,),
            )
            namespace_id, generation = _lock_namespace(conn, namespace)
            if expected_generation is not None and expected_generation != generation:
                raise GenerationMismatch(
                    f"namespace {namespace!r} is at generation {generation},"
                    f" not {expected_generation}",
                    "expected_generation",
                )
            current, _ = _load_assets(conn, namespace_id)
            resulting = {} if replace_all else dict(current)
            resulting.update((asset.key, asset) for asset in assets)
            validate(resulting)
            new_generation = generation + 1
            removed = [key for key in current if key not in resulting]
            conn.execute(
                "DELETE FROM assets WHERE namespace_id = %s AND asset_key = ANY(%s)",
                (namespace_id, removed),
            )
            keys = [asset.key for asset in assets]
            conn.execute(
                "DELETE FROM dependencies WHERE namespace_id = %s AND asset_key = ANY(%s)",
                (namespace_id, keys),
            )
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO assets (namespace_id, asset_key, partitions, code_version,"
                    " generation, observable_source, automation_condition)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (namespace_id, asset_key) DO UPDATE SET"
                    " partitions = EXCLUDED.partitions, code_version = EXCLUDED.code_version,"
                    " generation = EXCLUDED.generation,"
                    " observable_source = EXCLUDED.observable_source,"
                    " automation_condition = EXCLUDED.automation_condition",
                    [
                        (
                            namespace_id,
                            asset.key,
                            _jsonb(codec.definition_to_json(asset.partitions)),
                            asset.code_version,
                            new_generation,
                            asset.observable_source,
                            None
                            if asset.automation_condition is None
                            else Jsonb(condition_to_json(asset.automation_condition)),
                        )
                        for asset in assets
                    ],
                )
                cursor.executemany(
                    "INSERT INTO dependencies (namespace_id, asset_key, position, upstream_key,"
                    " mapping) VALUES (%s, %s, %s, %s, %s)",
                    [
                        (
                            namespace_id,
                            asset.key,
                            position,
                            dependency.upstream_key,
                            _jsonb(codec.mapping_to_json(dependency.mapping)),
                        )
                        for asset in assets
                        for position, dependency in enumerate(asset.dependencies)
                    ],
                )
            _bump_generation(conn, namespace_id, namespace, new_generation)
        return new_generation

    def delete_asset(self, namespace: str, asset_key: str) -> int:
        with transaction(self._pool) as conn:
            namespace_id, generation = _lock_namespace(conn, namespace)
            users = [
                row[0]
                for row in conn.execute(
                    "SELECT asset_key FROM dependencies WHERE namespace_id = %s"
                    " AND upstream_key = %s ORDER BY asset_key",
                    (namespace_id, asset_key),
                )
            ]
            if users:
                raise AssetInUse(
                    f"asset {asset_key!r} is a dependency of {', '.join(map(repr, users))}",
                    "asset_key",
                )
            deleted = conn.execute(
                "DELETE FROM assets WHERE namespace_id = %s AND asset_key = %s",
                (namespace_id, asset_key),
            ).rowcount
            if deleted == 0:
                raise AssetNotFound(f"asset {asset_key!r} does not exist", "asset_key")
            new_generation = generation + 1
            _bump_generation(conn, namespace_id, namespace, new_generation)
        return new_generation

    def add_dynamic_partitions(
        self, namespace: str, definition_name: str, keys: Sequence[str]
    ) -> tuple[int, int]:
        """Add the keys not present yet, in order; return (generation, how many were added)."""
        with transaction(self._pool) as conn:
            conn.execute(
                "INSERT INTO namespaces (name) VALUES (%s) ON CONFLICT (name) DO NOTHING",
                (namespace,),
            )
            namespace_id, generation = _lock_namespace(conn, namespace)
            added = conn.execute(
                "INSERT INTO dynamic_partitions (namespace_id, definition_name, partition_key)"
                " SELECT %s, %s, key FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n)"
                " ORDER BY n ON CONFLICT (namespace_id, definition_name, partition_key)"
                " WHERE deleted_at IS NULL DO NOTHING",
                (namespace_id, definition_name, list(keys)),
            ).rowcount
            generation = _bumped_if_changed(conn, namespace_id, namespace, generation, added)
        return generation, added

    def delete_dynamic_partitions(
        self, namespace: str, definition_name: str, keys: Sequence[str]
    ) -> tuple[int, int]:
        """Tombstone the live keys among `keys`; return (generation, how many were deleted)."""
        with transaction(self._pool) as conn:
            namespace_id, generation = _lock_namespace(conn, namespace)
            deleted = conn.execute(
                "UPDATE dynamic_partitions SET deleted_at = now() WHERE namespace_id = %s"
                " AND definition_name = %s AND partition_key = ANY(%s) AND deleted_at IS NULL",
                (namespace_id, definition_name, list(keys)),
            ).rowcount
            generation = _bumped_if_changed(conn, namespace_id, namespace, generation, deleted)
        return generation, deleted


def _jsonb(value: object) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _namespace_id(conn: psycopg.Connection[Any], namespace: str) -> int:
    row = conn.execute(
        "SELECT namespace_id FROM namespaces WHERE name = %s", (namespace,)
    ).fetchone()
    if row is None:
        raise NamespaceNotFound(f"namespace {namespace!r} does not exist", "namespace")
    return int(row[0])


def _lock_namespace(conn: psycopg.Connection[Any], namespace: str) -> tuple[int, int]:
    """Lock the namespace row (serialising writers of one namespace); (id, generation)."""
    row = conn.execute(
        "SELECT namespace_id, generation FROM namespaces WHERE name = %s FOR UPDATE", (namespace,)
    ).fetchone()
    if row is None:
        raise NamespaceNotFound(f"namespace {namespace!r} does not exist", "namespace")
    return int(row[0]), int(row[1])


def _bump_generation(
    conn: psycopg.Connection[Any], namespace_id: int, namespace: str, generation: int
) -> None:
    """Record the new generation and tell every replica (the NOTIFY is sent at commit)."""
    conn.execute(
        "UPDATE namespaces SET generation = %s WHERE namespace_id = %s", (generation, namespace_id)
    )
    conn.execute("SELECT pg_notify(%s, %s)", (GENERATION_CHANNEL, f"{generation}:{namespace}"))


def _bumped_if_changed(
    conn: psycopg.Connection[Any], namespace_id: int, namespace: str, generation: int, changed: int
) -> int:
    """The generation after a change to `changed` dynamic partitions: bumped if any changed."""
    if not changed:
        return generation
    _bump_generation(conn, namespace_id, namespace, generation + 1)
    return generation + 1


def _load_assets(
    conn: psycopg.Connection[Any], namespace_id: int
) -> tuple[dict[str, AssetDefinition], dict[str, int]]:
    dependencies: dict[str, list[Dependency]] = {}
    for asset_key, upstream_key, mapping in conn.execute(
        "SELECT asset_key, upstream_key, mapping FROM dependencies WHERE namespace_id = %s"
        " ORDER BY asset_key, position",
        (namespace_id,),
    ):
        dependencies.setdefault(asset_key, []).append(
            Dependency(upstream_key, codec.mapping_from_json(mapping))
        )
    assets: dict[str, AssetDefinition] = {}
    generations: dict[str, int] = {}
    for (
        asset_key,
        partitions,
        code_version,
        generation,
        observable_source,
        condition,
    ) in conn.execute(
        "SELECT asset_key, partitions, code_version, generation, observable_source,"
        " automation_condition FROM assets WHERE namespace_id = %s ORDER BY asset_key",
        (namespace_id,),
    ):
        assets[asset_key] = AssetDefinition(
            key=asset_key,
            partitions=codec.definition_from_json(partitions),
            code_version=code_version,
            dependencies=tuple(dependencies.get(asset_key, ())),
            observable_source=observable_source,
            automation_condition=None if condition is None else condition_from_json(condition),
        )
        generations[asset_key] = int(generation)
    return assets, generations
