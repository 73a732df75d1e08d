"""What the evaluation of one tick reads about the namespace's past, behind one protocol.

`history.EventHistory` answers from the events themselves (tests, timelines); the store answers
from Postgres. "Since the previous tick" means committed after the snapshot the previous tick
saw, whatever the events' ids or times. A key of `None` is the unpartitioned asset itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

Keys = frozenset[str | None]


class Facts(Protocol):
    def materialized(self, asset: str, observable: bool) -> Keys:
        """Partitions ever materialized (or, for an observable source, observed)."""
        ...

    def updated(self, asset: str, observable: bool) -> Keys:
        """Partitions materialized (observed, for an observable source) since the previous
        tick."""
        ...

    def update_times(self, asset: str, keys: Keys) -> Mapping[str | None, float]:
        """The instant of each of `keys`' latest materialization (keys never materialized are
        left out)."""
        ...

    def data_version_changed(self, asset: str, observable: bool, partitioned: bool) -> Keys:
        """Partitions updated since the previous tick whose latest data version differs from
        the one before; for a partitioned asset, only those whose new version is set."""
        ...

    def in_progress(self, asset: str, partitioned: bool) -> Keys:
        """Partitions whose latest planned materialization belongs to a run still going and
        was not followed by a materialization."""
        ...

    def failed_attempts(self, asset: str, partitioned: bool) -> Keys:
        """Partitions whose latest planned materialization belongs to a failed run and was not
        followed by a materialization (for an unpartitioned asset: by one of that run)."""
        ...

    def latest_materialization(self, asset: str) -> tuple[str | None, str | None] | None:
        """The key and run id (None: outside any run) of the asset's latest materialization."""
        ...

    def run_assets(self, run_id: str) -> tuple[str, ...] | None:
        """The assets a run targets, None for a run never started."""
        ...
