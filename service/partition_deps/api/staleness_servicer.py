"""StalenessService: staleness with causes, and "what should run now", over stored events.

Definitions come from the in-memory namespace snapshot; events from one REPEATABLE READ
snapshot per call (store/staleness.py), set-based for key-joined dependencies, on a read
replica that has replayed far enough or else the primary (store/read_routing.py). A multi-page
answer is kept by its first page, and the following pages are read from it
(api/answer_pages.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import cast

import grpc

from partition_deps.api import convert, limits, paging, validate
from partition_deps.api.answer_pages import AnswerPages
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.definitions import DynamicPartitions, Evaluation, TimeWindowPartitions
from partition_deps.domain.partitions import all_partitions, order_keys
from partition_deps.domain.staleness import (
    PartitionStatus,
    PlannedRun,
    StalenessOptions,
    Status,
    topological_order,
)
from partition_deps.domain.staleness_sets import position_runs
from partition_deps.domain.staleness_summary import AssetSummary
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound
from partition_deps.store.read_routing import ReadFloor, ReadRouter
from partition_deps.store.staleness import StalenessEngine, StalenessReader, summaries
from partition_deps.store.staleness import plan as plan_runs

SERVICE_NAME = "partitiondeps.v1.StalenessService"


def _assets(snapshot: NamespaceSnapshot, requested: Sequence[str], field: str) -> list[str]:
    """The requested asset keys (all when none), in dependency order."""
    for index, key in enumerate(requested):
        if key not in snapshot.assets:
            raise AssetNotFound(
                f"asset {key!r} does not exist in {snapshot.namespace!r}", f"{field}[{index}]"
            )
    wanted = set(requested) if requested else set(snapshot.assets)
    return [key for key in _order(snapshot) if key in wanted]


def _order(snapshot: NamespaceSnapshot) -> tuple[str, ...]:
    memo_key = ("topological_order",)
    order = snapshot.memo.get(memo_key)
    if order is None:
        # A tuple: shared by every call on this snapshot, it must not be changed.
        order = snapshot.memo.setdefault(memo_key, tuple(topological_order(snapshot.assets)))
    assert isinstance(order, tuple)
    return order


def _check_answer_size(
    snapshot: NamespaceSnapshot, asset_keys: Sequence[str], as_of: datetime
) -> None:
    """RESOURCE_EXHAUSTED before any work when the assets asked about have more partitions at
    `as_of` than one answer covers: an hourly asset asked about at 2299 has 2.4 million, which
    took 29 s and 2.3 GB."""
    total = 0
    for asset_key in asset_keys:
        partitions = snapshot.assets[asset_key].partitions
        if partitions is None:
            total += 1
        elif isinstance(partitions, DynamicPartitions):
            total += len(snapshot.dynamic_keys.get(partitions.name, ()))
        else:
            total += limits.partitions_at_most(partitions, as_of)
    limits.check_count(
        total,
        limits.MAX_STALENESS_PARTITIONS,
        f"partitions at {as_of.isoformat()} (about) in the assets asked about",
        "asset_keys",
        "SELECTION_TOO_LARGE",
    )


def _all_keys(asset: AssetDefinition, at: Evaluation) -> list[str | None]:
    if asset.partitions is None:
        return [None]
    return list(all_partitions(asset.partitions, at).keys())


# (asset key, partition key, status or None for FRESH): one partition of a staleness answer.
_ListedPartition = tuple[str, str | None, PartitionStatus | None]


def _fill_partition(target: pb.PartitionStaleness, listed: _ListedPartition) -> None:
    convert.fill_partition_staleness(target, *listed)


class StalenessServicer:
    def __init__(self, reads: ReadRouter, cache: DefinitionsCache, pages: AnswerPages) -> None:
        self._reads = reads
        self._cache = cache
        self._pages = pages

    def methods(self) -> list[Method]:
        return [
            Method("GetStaleness", pb.GetStalenessRequest, self.get_staleness),
            Method("PlanRuns", pb.PlanRunsRequest, self.plan_runs),
        ]

    def _begin(
        self, request: pb.GetStalenessRequest | pb.PlanRunsRequest
    ) -> tuple[NamespaceSnapshot, ReadFloor, paging.Page]:
        """The namespace, what the answer must see, and the page asked for."""
        floor = convert.read_floor(request)
        snapshot = self._cache.snapshot(
            validate.required_name(request.namespace, "namespace"), floor.generation
        )
        # Events are read against these definitions: a replica must have them too.
        floor = ReadFloor(floor.event_position, snapshot.generation)
        return snapshot, floor, paging.requested_page(request)

    # -- staleness -----------------------------------------------------------------------------

    def get_staleness(
        self, request: pb.GetStalenessRequest, context: grpc.ServicerContext
    ) -> pb.GetStalenessResponse:
        snapshot, floor, page = self._begin(request)
        if page.token:
            return self._pages.next_page(
                pb.GetStalenessResponse, snapshot.namespace_id, "partitions", page
            )
        as_of = convert.as_of_from_request(request)
        at = Evaluation(as_of, snapshot.dynamic_keys)
        asset_keys = _assets(snapshot, request.asset_keys, "asset_keys")
        if request.summary_only:
            return self._summaries(snapshot, floor, request, at, asset_keys)
        _check_answer_size(snapshot, asset_keys, as_of)
        candidates: dict[str, list[str | None]] = {}
        for asset_key in asset_keys:
            asset = snapshot.assets[asset_key]
            candidates[asset_key] = _all_keys(asset, at)
        if request.HasField("selection"):
            if len(request.asset_keys) != 1:
                raise ApiError(
                    "a partition selection needs exactly one asset in asset_keys", "selection"
                )
            asset = snapshot.assets[asset_keys[0]]
            keys = validate.selected_keys(asset.partitions, request.selection, at)
            if asset.partitions is not None:
                if request.selection.WhichOneof("kind") == "keys":
                    keys = order_keys(asset.partitions, keys, at)
                candidates[asset.key] = list(keys)
        options = convert.staleness_options_from_proto(request.options)

        answer_keys = sum(len(keys) for keys in candidates.values())

        def read(
            reader: StalenessReader,
        ) -> tuple[int, dict[str, dict[int, PartitionStatus]], dict[str, frozenset[str | None]]]:
            engine = StalenessEngine(snapshot.assets, reader, at, options, answer_keys=answer_keys)
            return (
                reader.event_position(),
                {key: engine.statuses(key, candidates[key]) for key in asset_keys},
                reader.in_progress_keys(asset_keys, as_of),
            )

        position, answers, running = self._reads.staleness(snapshot.namespace_id, floor, read)
        header = pb.GetStalenessResponse(generation=snapshot.generation, event_position=position)
        convert.set_instant(header.as_of, as_of)
        for asset_key in asset_keys:
            self._summary(
                header.assets.add(),
                snapshot.assets[asset_key],
                candidates,
                answers,
                running[asset_key],
            )
        listed = {
            asset_key: range(len(candidates[asset_key]))
            if request.include_fresh
            else sorted(answers[asset_key])
            for asset_key in asset_keys
        }
        return self._pages.first_page(
            snapshot.namespace_id,
            header,
            "partitions",
            self._partitions(asset_keys, candidates, answers, listed),
            _fill_partition,
            sum(len(positions) for positions in listed.values()),
            page,
        )

    def _summaries(
        self,
        snapshot: NamespaceSnapshot,
        floor: ReadFloor,
        request: pb.GetStalenessRequest,
        at: Evaluation,
        asset_keys: Sequence[str],
    ) -> pb.GetStalenessResponse:
        """The answer of a `summary_only` request: the assets' summaries alone."""
        if request.HasField("selection"):
            raise ApiError("summary_only summarizes whole assets: give no selection", "selection")
        if request.include_fresh:
            raise ApiError(
                "summary_only lists no partitions: include_fresh does not apply", "include_fresh"
            )
        for asset_key in asset_keys:  # summarized one after another
            _check_answer_size(snapshot, [asset_key], at.as_of)
        options = convert.staleness_options_from_proto(request.options)

        def read(reader: StalenessReader) -> tuple[int, list[AssetSummary]]:
            return (
                reader.event_position(),
                summaries(snapshot.assets, reader, at, asset_keys, options),
            )

        position, found = self._reads.staleness(snapshot.namespace_id, floor, read)
        response = pb.GetStalenessResponse(generation=snapshot.generation, event_position=position)
        convert.set_instant(response.as_of, at.as_of)
        for summary in found:
            convert.fill_asset_staleness(response.assets.add(), summary)
        return response

    @staticmethod
    def _summary(
        target: pb.AssetStaleness,
        asset: AssetDefinition,
        candidates: Mapping[str, list[str | None]],
        answers: Mapping[str, dict[int, PartitionStatus]],
        running: frozenset[str | None],
    ) -> None:
        keys = candidates[asset.key]
        not_fresh = answers[asset.key]
        stale = sorted(n for n, s in not_fresh.items() if s.status is Status.STALE)
        missing = sorted(n for n, s in not_fresh.items() if s.status is Status.MISSING)
        target.asset_key = asset.key
        target.stale_count = len(stale)
        target.missing_count = len(missing)
        target.fresh_count = len(keys) - len(stale) - len(missing)
        in_progress = [n for n, key in enumerate(keys) if key in running] if running else []
        target.in_progress_count = len(in_progress)
        if asset.partitions is None:
            return
        time_definition = (
            asset.partitions if isinstance(asset.partitions, TimeWindowPartitions) else None
        )
        partition_keys = cast(list[str], keys)  # a partitioned asset's keys are strings
        for ranges, positions in (
            (target.stale_ranges, stale),
            (target.missing_ranges, missing),
            (target.in_progress_ranges, in_progress),
        ):
            for run in position_runs(partition_keys, positions, time_definition):
                convert.fill_range(ranges.add(), run)

    @staticmethod
    def _partitions(
        asset_keys: Sequence[str],
        candidates: Mapping[str, list[str | None]],
        answers: Mapping[str, dict[int, PartitionStatus]],
        listed: Mapping[str, Sequence[int]],
    ) -> Iterator[_ListedPartition]:
        """The listed partitions with their statuses (None: FRESH), asset by asset."""
        for asset_key in asset_keys:
            keys = candidates[asset_key]
            not_fresh = answers[asset_key]
            for position in listed[asset_key]:
                yield asset_key, keys[position], not_fresh.get(position)

    # -- planning ------------------------------------------------------------------------------

    def plan_runs(
        self, request: pb.PlanRunsRequest, context: grpc.ServicerContext
    ) -> pb.PlanRunsResponse:
        snapshot, floor, page = self._begin(request)
        if page.token:
            return self._pages.next_page(pb.PlanRunsResponse, snapshot.namespace_id, "runs", page)
        as_of = convert.as_of_from_request(request)
        at = Evaluation(as_of, snapshot.dynamic_keys)
        asset_keys = _assets(snapshot, request.asset_keys, "asset_keys")
        _check_answer_size(snapshot, asset_keys, as_of)
        if request.limit < 0:
            raise ApiError("limit must not be negative", "limit")
        options = convert.staleness_options_from_proto(request.options)
        position, runs = self._reads.staleness(
            snapshot.namespace_id,
            floor,
            lambda reader: (
                reader.event_position(),
                self._plan(snapshot, reader, at, asset_keys, request, options),
            ),
        )
        header = pb.PlanRunsResponse(
            generation=snapshot.generation,
            event_position=position,
            total_runs=len(runs),
            total_partitions=sum(len(run.partition_keys) for run in runs),
        )
        convert.set_instant(header.as_of, as_of)
        return self._pages.first_page(
            snapshot.namespace_id,
            header,
            "runs",
            runs,
            lambda target, run: convert.fill_planned_run(
                target, run, snapshot.assets[run.asset_key].partitions, request.include_keys
            ),
            len(runs),
            page,
        )

    @staticmethod
    def _plan(
        snapshot: NamespaceSnapshot,
        reader: StalenessReader,
        at: Evaluation,
        asset_keys: Sequence[str],
        request: pb.PlanRunsRequest,
        options: StalenessOptions,
    ) -> list[PlannedRun]:
        return plan_runs(
            snapshot.assets,
            reader,
            at,
            assets=asset_keys if request.asset_keys else None,
            latest_window_only=not request.catch_up,
            limit=request.limit or None,
            options=options,
        )
