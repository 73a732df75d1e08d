"""StalenessService: staleness with causes, and "what should run now", over stored events.

Definitions come from the in-memory namespace snapshot; events from one REPEATABLE READ
snapshot per call (store/staleness.py), set-based for key-joined dependencies. Page tokens pin
the as_of, the generation and the event position of the first page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import grpc

from partition_deps.api import convert, limits, paging
from partition_deps.api.definitions_servicer import required_name
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.api.queries_servicer import selected_keys
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
from partition_deps.domain.years import FIRST_YEAR, LAST_YEAR
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound
from partition_deps.store.staleness import StalenessEngine, StalenessReader, StalenessRepository
from partition_deps.store.staleness import plan as plan_runs

SERVICE_NAME = "partitiondeps.v1.StalenessService"


@dataclass(frozen=True)
class _Token:
    offset: int
    as_of: datetime
    generation: int
    event_position: int


# A page token pins what the first page saw: (offset, as_of as ISO text, generation, event
# position), signed and bound to the request (api/paging.py).
_TOKEN_KINDS = (int, str, int, int)


def _encode(tokens: paging.PageTokens, token: _Token, binding: bytes) -> str:
    values: list[str | int] = [
        token.offset,
        token.as_of.isoformat(),
        token.generation,
        token.event_position,
    ]
    return tokens.encode(values, binding)


def _decode(tokens: paging.PageTokens, text: str, binding: bytes) -> _Token | None:
    values = tokens.decode(text, binding, _TOKEN_KINDS, "page_token")
    if values is None:
        return None
    offset, as_of_text, generation, position = values
    try:
        as_of = datetime.fromisoformat(str(as_of_text))
    except ValueError:
        raise paging.invalid_token("page_token") from None
    # Checked as the request's as_of is, though only this service can have signed it.
    if as_of.tzinfo is None or not FIRST_YEAR <= as_of.year <= LAST_YEAR:
        raise paging.invalid_token("page_token")
    return _Token(int(offset), as_of, int(generation), int(position))


def _check_token(token: _Token | None, generation: int, event_position: int) -> None:
    if token is not None and (token.generation, token.event_position) != (
        generation,
        event_position,
    ):
        raise ApiError(
            grpc.StatusCode.FAILED_PRECONDITION,
            "EVENTS_CHANGED",
            "events or definitions changed since the first page "
            f"(event position {token.event_position} -> {event_position}, generation "
            f"{token.generation} -> {generation}): ask again from the first page",
            "page_token",
        )


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
            total += limits.estimated_partitions(partitions, as_of)
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


class StalenessServicer:
    def __init__(
        self, repository: StalenessRepository, cache: DefinitionsCache, tokens: paging.PageTokens
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._tokens = tokens

    def methods(self) -> list[Method]:
        return [
            Method("GetStaleness", pb.GetStalenessRequest, self.get_staleness),
            Method("PlanRuns", pb.PlanRunsRequest, self.plan_runs),
        ]

    def _begin(
        self, request: pb.GetStalenessRequest | pb.PlanRunsRequest
    ) -> tuple[NamespaceSnapshot, _Token | None, datetime, bytes]:
        """The namespace, the page token, the as_of in force and what tokens are bound to."""
        snapshot = self._cache.snapshot(required_name(request.namespace, "namespace"))
        binding = paging.request_binding(request, "page_token", "page_size")
        token = _decode(self._tokens, request.page_token, binding)
        as_of = token.as_of if token is not None else convert.as_of_from_request(request)
        return snapshot, token, as_of, binding

    # -- staleness -----------------------------------------------------------------------------

    def get_staleness(
        self, request: pb.GetStalenessRequest, context: grpc.ServicerContext
    ) -> pb.GetStalenessResponse:
        snapshot, token, as_of, binding = self._begin(request)
        at = Evaluation(as_of, snapshot.dynamic_keys)
        asset_keys = _assets(snapshot, request.asset_keys, "asset_keys")
        _check_answer_size(snapshot, asset_keys, as_of)
        size = paging.page_size(request.page_size, "page_size")
        candidates: dict[str, list[str | None]] = {}
        for asset_key in asset_keys:
            asset = snapshot.assets[asset_key]
            candidates[asset_key] = _all_keys(asset, at)
        if request.HasField("selection"):
            if len(request.asset_keys) != 1:
                raise convert.InvalidRequest(
                    "a partition selection needs exactly one asset in asset_keys", "selection"
                )
            asset = snapshot.assets[asset_keys[0]]
            keys = selected_keys(asset.partitions, request.selection, at)
            if asset.partitions is not None:
                if request.selection.WhichOneof("kind") == "keys":
                    keys = order_keys(asset.partitions, keys, at)
                candidates[asset.key] = list(keys)
        options = convert.staleness_options_from_proto(request.options)
        with self._repository.reading(snapshot.namespace_id) as reader:
            position = reader.event_position()
            _check_token(token, snapshot.generation, position)
            engine = StalenessEngine(snapshot.assets, reader, at, options)
            answers = {key: engine.statuses(key, candidates[key]) for key in asset_keys}
            running = {key: reader.in_progress_keys(key) for key in asset_keys}
        response = pb.GetStalenessResponse(generation=snapshot.generation, event_position=position)
        convert.set_instant(response.as_of, as_of)
        for asset_key in asset_keys:
            self._summary(
                response.assets.add(),
                snapshot.assets[asset_key],
                candidates,
                answers,
                running[asset_key],
            )
        offset = 0 if token is None else token.offset
        end = self._page(
            response, asset_keys, candidates, answers, offset, size, request.include_fresh
        )
        if end is not None:
            response.next_page_token = _encode(
                self._tokens, _Token(end, as_of, snapshot.generation, position), binding
            )
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
    def _page(
        response: pb.GetStalenessResponse,
        asset_keys: Sequence[str],
        candidates: Mapping[str, list[str | None]],
        answers: Mapping[str, dict[int, PartitionStatus]],
        offset: int,
        size: int,
        include_fresh: bool,
    ) -> int | None:
        """Fill one page of partition statuses; the offset of the next page, or None."""
        skipped = 0
        for asset_key in asset_keys:
            keys = candidates[asset_key]
            not_fresh = answers[asset_key]
            positions: Sequence[int] = range(len(keys)) if include_fresh else sorted(not_fresh)
            if skipped + len(positions) <= offset:
                skipped += len(positions)
                continue
            start = offset - skipped
            for index in range(start, len(positions)):
                if len(response.partitions) >= size:
                    return skipped + index
                position = positions[index]
                convert.fill_partition_staleness(
                    response.partitions.add(), asset_key, keys[position], not_fresh.get(position)
                )
            skipped += len(positions)
            offset = skipped
        return None

    # -- planning ------------------------------------------------------------------------------

    def plan_runs(
        self, request: pb.PlanRunsRequest, context: grpc.ServicerContext
    ) -> pb.PlanRunsResponse:
        snapshot, token, as_of, binding = self._begin(request)
        at = Evaluation(as_of, snapshot.dynamic_keys)
        asset_keys = _assets(snapshot, request.asset_keys, "asset_keys")
        _check_answer_size(snapshot, asset_keys, as_of)
        size = paging.page_size(request.page_size, "page_size")
        if request.limit < 0:
            raise convert.InvalidRequest("limit must not be negative", "limit")
        options = convert.staleness_options_from_proto(request.options)
        with self._repository.reading(snapshot.namespace_id) as reader:
            position = reader.event_position()
            _check_token(token, snapshot.generation, position)
            runs = self._plan(snapshot, reader, at, asset_keys, request, options)
        response = pb.PlanRunsResponse(
            generation=snapshot.generation,
            event_position=position,
            total_runs=len(runs),
            total_partitions=sum(len(run.partition_keys) for run in runs),
        )
        convert.set_instant(response.as_of, as_of)
        offset = 0 if token is None else token.offset
        for run in runs[offset : offset + size]:
            convert.fill_planned_run(
                response.runs.add(),
                run,
                snapshot.assets[run.asset_key].partitions,
                request.include_keys,
            )
        if offset + size < len(runs):
            response.next_page_token = _encode(
                self._tokens, _Token(offset + size, as_of, snapshot.generation, position), binding
            )
        return response

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
