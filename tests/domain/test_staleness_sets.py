"""`set_statuses` applies the same rules as the per-partition path, whatever the history.

A candidate source that offers every asked partition (the widest source the protocol allows)
over an in-memory history must give exactly the statuses `staleness.statuses` gives that are
not FRESH, transitive or not; so must one that leaves out the partitions the protocol says a
source may leave out. Random histories (Hypothesis, derandomised) over a chain of daily assets
joined by identity, the last also reading an unpartitioned one, with data versions that
repeat, code versions that change, observations and a dependency added after some
materializations.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation, TimeWindowPartitions
from partition_deps.domain.partitions import all_partitions
from partition_deps.domain.staleness import (
    Materialized,
    PartitionStatus,
    StalenessOptions,
    Status,
    latest_record,
    statuses,
    version_needed,
)
from partition_deps.domain.staleness_sets import (
    Candidate,
    CandidateEdge,
    NotFresh,
    UpstreamRow,
    joins_by_key,
    set_statuses,
)
from tests.domain.history import MemoryHistory

DAILY = TimeWindowPartitions("0 0 * * *", datetime(2024, 1, 1))
AT = Evaluation(datetime(2024, 1, 7, tzinfo=UTC))
KEYS = [key for key in all_partitions(DAILY, AT) if key is not None]
GRAPH = {
    "config": AssetDefinition("config", None),
    "raw": AssetDefinition("raw", DAILY),
    "clean": AssetDefinition("clean", DAILY, dependencies=(Dependency("raw"),), code_version="v2"),
    "report": AssetDefinition(
        "report", DAILY, dependencies=(Dependency("clean"), Dependency("config"))
    ),
}


@dataclass(frozen=True)
class HistoryCandidates:
    """A candidate source over an in-memory history; `narrow`: leave out what the protocol
    lets a source leave out (FRESH on latest states alone), else offer every asked key."""

    history: MemoryHistory
    narrow: bool

    def candidates(
        self, asset: AssetDefinition, edges: Sequence[CandidateEdge], keys: Sequence[str]
    ) -> Iterator[Candidate]:
        for position, key in enumerate(keys):
            latest = self.history.latest(asset.key, key)
            observed = self.history.latest_observation(asset.key, key) is not None
            if latest is None:
                yield position, None, observed, ()
                continue
            upstream = []
            for edge in edges:
                partition = key if edge.partitioned else None
                record = latest_record(self.history, edge.upstream_key, partition)
                before = (
                    self.history.data_version_at(edge.upstream_key, partition, latest.event_id)
                    if record is not None and version_needed(record, latest.event_id)
                    else None
                )
                upstream.append((record, before))
            if self.narrow and self._fresh_on_latest_states(asset, edges, key, latest, upstream):
                continue
            yield position, latest, observed, upstream

    @staticmethod
    def _fresh_on_latest_states(
        asset: AssetDefinition,
        edges: Sequence[CandidateEdge],
        key: str,
        latest: Materialized,
        upstream: Sequence[UpstreamRow],
    ) -> bool:
        if asset.code_version is not None and latest.code_version != asset.code_version:
            return False
        recorded = latest.dependencies
        if recorded is not None and recorded != {edge.upstream_key for edge in edges}:
            return False
        for edge, (record, _) in zip(edges, upstream, strict=True):
            if record is None or record.event_id > latest.event_id:
                return False
            if key in edge.not_fresh_keys or edge.not_fresh_whole:
                return False
        return True


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["config", "raw", "clean", "report", "observe raw", "add config"]),
        st.sampled_from(KEYS),
        st.sampled_from([None, "a", "b"]),  # data version
        st.sampled_from([None, "v1", "v2"]),  # code version
    ),
    max_size=40,
)


def _not_fresh(history: MemoryHistory, options: StalenessOptions) -> NotFresh:
    """The per-partition rules' statuses that are not FRESH, by position."""

    def not_fresh(asset_key: str, keys: Sequence[str | None]) -> dict[int, PartitionStatus]:
        answer = statuses(GRAPH, asset_key, keys, history, AT, options)
        return {n: status for n, status in enumerate(answer) if status.status is not Status.FRESH}

    return not_fresh


@given(events=EVENTS)
def test_set_statuses_equal_the_per_partition_rules(
    events: list[tuple[str, str, str | None, str | None]],
) -> None:
    history = MemoryHistory(
        dependencies={"clean": frozenset({"raw"}), "report": frozenset({"clean"})}
    )
    for kind, key, data_version, code_version in events:
        if kind == "config":
            history.materialize("config", None, data_version)
        elif kind == "observe raw":
            history.observe("raw", key, data_version)
        elif kind == "add config":
            history.dependencies["report"] = frozenset({"clean", "config"})
        else:
            history.materialize(kind, key, data_version, code_version)
    for transitive in (False, True):
        not_fresh = _not_fresh(history, StalenessOptions(transitive=transitive))
        for narrow in (False, True):
            source = HistoryCandidates(history, narrow)
            for asset_key in ("clean", "report"):
                asset = GRAPH[asset_key]
                assert joins_by_key(GRAPH, asset)
                walk = not_fresh if transitive else None
                found = set_statuses(GRAPH, asset, KEYS, source, walk)
                assert found == not_fresh(asset_key, KEYS), (asset_key, transitive, narrow)
