"""An in-memory `History` for domain tests (the service uses the Postgres one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from partition_deps.domain.staleness import Materialized, Observed

START = datetime(2024, 3, 1, tzinfo=UTC)


@dataclass
class MemoryHistory:
    # (event id, asset, partition, data version, code version, observation?)
    events: list[tuple[int, str, str | None, str | None, str | None, bool]] = field(
        default_factory=list
    )
    # Partitions held by a run in progress, with the run's id.
    running: dict[tuple[str, str | None], str] = field(default_factory=dict)
    dependencies: dict[str, frozenset[str]] = field(default_factory=dict)

    def materialize(
        self,
        asset_key: str,
        partition_key: str | None = None,
        data_version: str | None = None,
        code_version: str | None = None,
    ) -> None:
        event_id = len(self.events) + 1
        self.events.append((event_id, asset_key, partition_key, data_version, code_version, False))
        self.running.pop((asset_key, partition_key), None)

    def observe(
        self, asset_key: str, partition_key: str | None = None, data_version: str | None = None
    ) -> None:
        event_id = len(self.events) + 1
        self.events.append((event_id, asset_key, partition_key, data_version, None, True))

    def latest(self, asset_key: str, partition_key: str | None) -> Materialized | None:
        for event_id, asset, partition, data_version, code_version, observed in reversed(
            self.events
        ):
            if not observed and (asset, partition) == (asset_key, partition_key):
                upstream = self.dependencies.get(asset_key)
                return Materialized(
                    event_id,
                    START + timedelta(minutes=event_id),
                    data_version,
                    code_version,
                    upstream,
                    None
                    if upstream is None
                    else {key: self._latest_event_before(key, event_id) for key in upstream},
                )
        return None

    def _latest_event_before(self, asset_key: str, event_id: int) -> int | None:
        """Dagster's input event pointer: the asset's latest event (any partition) before."""
        ids = [stored for stored, asset, *_ in self.events if asset == asset_key]
        return max((stored for stored in ids if stored < event_id), default=None)

    def latest_observation(self, asset_key: str, partition_key: str | None) -> Observed | None:
        for event_id, asset, partition, data_version, _, observed in reversed(self.events):
            if observed and (asset, partition) == (asset_key, partition_key):
                return Observed(event_id, START + timedelta(minutes=event_id), data_version)
        return None

    def data_version_at(
        self, asset_key: str, partition_key: str | None, event_id: int
    ) -> str | None:
        for stored_id, asset, partition, data_version, _, _ in reversed(self.events):
            if stored_id <= event_id and (asset, partition) == (asset_key, partition_key):
                return data_version
        return None

    def run_in_progress(
        self, asset_key: str, partition_key: str | None, as_of: datetime
    ) -> str | None:
        return self.running.get((asset_key, partition_key))
