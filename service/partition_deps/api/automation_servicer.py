"""AutomationService: evaluating the assets' automation conditions tick by tick, and the ticks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import grpc

from partition_deps.api import convert, paging, validate
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.domain.automation.engine import TickState, evaluate_tick
from partition_deps.domain.automation.history import EventHistory
from partition_deps.domain.automation.ticks import NodeSummary, TickSummary, summarize
from partition_deps.domain.definitions import Evaluation
from partition_deps.store.automation import AutomationRepository, StoredTick
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound

SERVICE_NAME = "partitiondeps.v1.AutomationService"
# Fields of GetAutomationTickRequest that may change from page to page of one tick.
_PAGE_FIELDS = ("page_token", "page_size", "evaluation_asset_keys")


def _tick_binding(namespace: str, tick_id: str) -> bytes:
    """What a tick's page tokens are bound to: the namespace and tick, whichever call gave it
    (EvaluateAutomation's first page continues through GetAutomationTick)."""
    return paging.request_binding(
        pb.GetAutomationTickRequest(namespace=namespace, tick_id=tick_id), *_PAGE_FIELDS
    )


class AutomationServicer:
    def __init__(
        self,
        repository: AutomationRepository,
        cache: DefinitionsCache,
        tokens: paging.PageTokens,
    ) -> None:
        self._repository = repository
        self._cache = cache
        self._tokens = tokens

    def methods(self) -> list[Method]:
        return [
            Method("EvaluateAutomation", pb.EvaluateAutomationRequest, self.evaluate_automation),
            Method("ListAutomationTicks", pb.ListAutomationTicksRequest, self.list_ticks),
            Method("GetAutomationTick", pb.GetAutomationTickRequest, self.get_tick),
        ]

    def evaluate_automation(
        self, request: pb.EvaluateAutomationRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateAutomationResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        tick_id = validate.required_name(request.tick_id, "tick_id")
        if not request.HasField("evaluation_time"):
            raise ApiError("evaluation_time is required", "evaluation_time")
        evaluation_time = convert.instant_from_proto(request.evaluation_time, "evaluation_time")
        size = paging.page_size(request.page_size, "page_size")
        snapshot = self._cache.snapshot(namespace)

        def evaluate(
            history: EventHistory, previous: dict[str, Any] | None
        ) -> tuple[TickSummary, dict[str, Any]]:
            return _evaluate(snapshot, evaluation_time, history, previous)

        tick, _ = self._repository.run_tick(
            snapshot.namespace_id, tick_id, evaluation_time, snapshot.generation, evaluate
        )
        response = pb.EvaluateAutomationResponse()
        more = _fill_tick(response.tick, tick, 0, 0, size)
        if more is not None:
            response.next_page_token = self._tokens.encode(
                list(more), _tick_binding(namespace, tick_id)
            )
        return response

    def get_tick(
        self, request: pb.GetAutomationTickRequest, context: grpc.ServicerContext
    ) -> pb.GetAutomationTickResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        tick_id = validate.required_name(request.tick_id, "tick_id")
        size = paging.page_size(request.page_size, "page_size")
        binding = _tick_binding(namespace, tick_id)
        token = self._tokens.decode(request.page_token, binding, (int, int), "page_token")
        snapshot = self._cache.snapshot(namespace)
        tick = self._repository.tick(snapshot.namespace_id, tick_id)
        response = pb.GetAutomationTickResponse()
        key_offset, run_offset = (0, 0) if token is None else (int(token[0]), int(token[1]))
        more = _fill_tick(response.tick, tick, key_offset, run_offset, size)
        if more is not None:
            response.next_page_token = self._tokens.encode(list(more), binding)
        if token is None:
            assert tick.summary is not None  # a single tick is read with its summary
            trees = dict(tick.summary.trees)
            wanted = list(request.evaluation_asset_keys) or list(trees)
            for index, key in enumerate(wanted):
                root = trees.get(key)
                if root is None:
                    raise AssetNotFound(
                        f"asset {key!r} has no evaluation in tick {tick_id!r}",
                        f"evaluation_asset_keys[{index}]",
                    )
                evaluation = response.evaluations.add(asset_key=key)
                _fill_node(evaluation.root, root)
        return response

    def list_ticks(
        self, request: pb.ListAutomationTicksRequest, context: grpc.ServicerContext
    ) -> pb.ListAutomationTicksResponse:
        namespace = validate.required_name(request.namespace, "namespace")
        requested = paging.requested_page(request, default=100)
        token = self._tokens.continued(requested, (int,))
        snapshot = self._cache.snapshot(namespace)
        ticks = self._repository.list_ticks(
            snapshot.namespace_id, None if token is None else int(token[0]), requested.size + 1
        )
        response = pb.ListAutomationTicksResponse()
        for tick in ticks[: requested.size]:
            summary = response.ticks.add(
                tick_id=tick.tick_id,
                sequence=tick.sequence,
                generation=tick.generation,
                event_position=tick.event_position,
                requested_count=tick.requested_count,
                run_request_count=tick.run_request_count,
            )
            convert.set_instant(summary.evaluation_time, tick.evaluation_time)
        if len(ticks) > requested.size:
            response.next_page_token = self._tokens.encode(
                [ticks[requested.size - 1].sequence], requested.binding
            )
        return response


def _evaluate(
    snapshot: NamespaceSnapshot,
    evaluation_time: datetime,
    history: EventHistory,
    previous: dict[str, Any] | None,
) -> tuple[TickSummary, dict[str, Any]]:
    outcome = evaluate_tick(
        list(snapshot.assets.values()),
        history,
        None if previous is None else TickState.from_json(previous),
        evaluation_time,
        snapshot.dynamic_keys,
    )
    at = Evaluation(evaluation_time, snapshot.dynamic_keys)
    return summarize(outcome, snapshot.assets, at), outcome.state.to_json()


def _fill_tick(
    target: pb.AutomationTick, tick: StoredTick, key_offset: int, run_offset: int, size: int
) -> tuple[int, int] | None:
    """Write the tick with keys [key_offset, key_offset + size) of all its requested keys (in
    asset order) and run requests [run_offset, run_offset + size); the next page's offsets,
    None on the last page."""
    assert tick.summary is not None  # a single tick is read with its summary
    target.tick_id = tick.tick_id
    convert.set_instant(target.evaluation_time, tick.evaluation_time)
    target.sequence = tick.sequence
    target.generation = tick.generation
    target.event_position = tick.event_position
    target.run_request_count = tick.run_request_count
    before = 0  # requested keys of the assets before this one
    for request in tick.summary.requested:
        item = target.requested.add(asset_key=request.asset_key)
        if request.keys is None:
            continue
        partitions = item.partitions
        partitions.count = len(request.keys)
        for run in request.runs:
            convert.fill_range(partitions.ranges.add(), run)
        first = max(key_offset - before, 0)
        last = min(key_offset + size - before, len(request.keys))
        if first < last:
            partitions.partition_keys.extend(request.keys[first:last])
        before += len(request.keys)
    for run_request in tick.summary.run_requests[run_offset : run_offset + size]:
        added = target.run_requests.add(asset_keys=run_request.asset_keys)
        if run_request.partition_key is not None:
            added.partition_key = run_request.partition_key
    more_keys = key_offset + size < before
    more_runs = run_offset + size < len(tick.summary.run_requests)
    if not (more_keys or more_runs):
        return None
    return min(key_offset + size, before), min(run_offset + size, len(tick.summary.run_requests))


def _fill_node(target: pb.ConditionEvaluation, node: NodeSummary) -> None:
    target.label = node.label
    target.true_count = node.true_count
    target.candidate_count = node.candidate_count
    for run in node.true_runs:
        convert.fill_range(target.true_ranges.add(), run)
    for child in node.children:
        _fill_node(target.children.add(), child)
