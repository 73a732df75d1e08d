"""QueriesService: upstream/downstream partitions (stored and inline), keys and time windows.

A stored query reads only the in-memory namespace snapshot (store/cache.py): no database round
trip unless the namespace changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

import grpc
from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.message import Message

from partition_deps.api import convert, paging, validate
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as common_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.api.response_memo import ResponseMemo
from partition_deps.domain import partitions
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import Evaluation, PartitionsDefinition
from partition_deps.domain.dependencies import (
    downstream_partitions,
    resolve_mapping,
    upstream_partitions,
)
from partition_deps.domain.errors import PartitionDepsError
from partition_deps.domain.horizon import valid_until
from partition_deps.domain.mappings.kinds import PartitionMapping
from partition_deps.domain.partitions import DAGSTER, Options
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound

SERVICE_NAME = "partitiondeps.v1.QueriesService"


_StatusList = RepeatedCompositeFieldContainer[common_pb.PartitionStatus]


# Queried keys that do not exist yet are answered only on request (`accept_keys_not_yet`).
_KEYS_NOT_YET = Options(keys_not_yet=True)


def _options(request: paging.KeyPagedQuery) -> Options:
    return _KEYS_NOT_YET if request.accept_keys_not_yet else DAGSTER


def _fill_not_yet(
    target: _StatusList,
    request: paging.KeyPagedQuery,
    definition: PartitionsDefinition | None,
    keys: Sequence[str],
    at: Evaluation,
) -> None:
    """The selected keys that are answered though they do not exist yet, with their instants."""
    if request.accept_keys_not_yet and definition is not None:
        target.extend(
            convert.key_status_to_proto(status)
            for status in partitions.keys_not_yet(definition, keys, at)
        )


def _mapping_in_force(
    snapshot: NamespaceSnapshot,
    upstream: AssetDefinition,
    downstream: AssetDefinition,
    dependency: Dependency,
) -> common_pb.PartitionMapping:
    """The resolved mapping as a message, memoised for as long as the snapshot lives."""
    memo_key = ("mapping", downstream.key, upstream.key)
    message = snapshot.memo.get(memo_key)
    if message is None:
        resolved = resolve_mapping(upstream.partitions, downstream.partitions, dependency.mapping)
        # Shared by every call from now on: only ever read (CopyFrom's source), never changed.
        message = snapshot.memo.setdefault(memo_key, convert.mapping_to_proto(resolved))
    assert isinstance(message, common_pb.PartitionMapping)
    return message


def _horizon(
    snapshot: NamespaceSnapshot,
    method: str,
    asset: AssetDefinition,
    involved: Callable[[], Iterable[PartitionsDefinition | None]],
    now: int,
) -> int | None:
    """`valid_until(involved(), now)`, memoised in the snapshot: it is the same for every
    `now` from the one it was computed at until itself (no tick or end lies in between)."""
    memo_key = ("horizon", method, asset.key)
    known = snapshot.memo.get(memo_key)
    if known is not None and known[0] <= now and (known[1] is None or now < known[1]):
        return known[1]  # type: ignore[no-any-return]
    until = valid_until(involved(), now)
    # A racing call may store its own (now, until) instead: each is true on its own.
    snapshot.memo[memo_key] = (now, until)
    return until


def _clock() -> datetime:
    return datetime.now(UTC)


class QueriesServicer:
    """`memo`: serialized answers of stored queries (None: every answer computed afresh);
    `clock`: the server's "now" for requests without `as_of`."""

    def __init__(
        self,
        cache: DefinitionsCache,
        tokens: paging.PageTokens,
        memo: ResponseMemo | None = None,
        clock: Callable[[], datetime] = _clock,
    ) -> None:
        self._tokens = tokens
        # Thread safety: shared by every call; both are thread-safe (store/cache.py,
        # api/response_memo.py).
        self._cache = cache
        self._memo = memo
        self._clock = clock

    def methods(self) -> list[Method]:
        return [
            Method("GetUpstreamPartitions", pb.GetUpstreamPartitionsRequest, self.get_upstream),
            Method(
                "GetDownstreamPartitions", pb.GetDownstreamPartitionsRequest, self.get_downstream
            ),
            Method(
                "ComputeUpstreamPartitions",
                pb.ComputeUpstreamPartitionsRequest,
                self.compute_upstream,
            ),
            Method(
                "ComputeDownstreamPartitions",
                pb.ComputeDownstreamPartitionsRequest,
                self.compute_downstream,
            ),
            Method("ListPartitions", pb.ListPartitionsRequest, self.list_partitions),
            Method("GetTimeWindow", pb.GetTimeWindowRequest, self.get_time_window),
            Method(
                "GetPartitionKeyForTimestamp",
                pb.GetPartitionKeyForTimestampRequest,
                self.get_key_for_timestamp,
            ),
        ]

    # -- stored ------------------------------------------------------------------------------

    def _stored_asset(
        self, namespace: str, asset_key: str
    ) -> tuple[NamespaceSnapshot, AssetDefinition]:
        snapshot = self._cache.snapshot(validate.required_name(namespace, "namespace"))
        key = validate.required_name(asset_key, "asset_key")
        asset = snapshot.assets.get(key)
        if asset is None:
            raise AssetNotFound(f"asset {key!r} does not exist in {namespace!r}", "asset_key")
        return snapshot, asset

    def _memoised(
        self,
        method: str,
        request: pb.GetUpstreamPartitionsRequest | pb.GetDownstreamPartitionsRequest,
        snapshot: NamespaceSnapshot,
        asset: AssetDefinition,
        involved: Callable[[], Iterable[PartitionsDefinition | None]],
        answer: Callable[[datetime], Message],
    ) -> Message | bytes:
        """`answer(as_of)`, serialized and memoised (api/response_memo.py); hits are served
        by `_memo_hit` before any of this."""
        explicit = request.HasField("as_of")
        as_of = convert.instant_from_proto(request.as_of, "as_of") if explicit else self._clock()
        memo = self._memo
        if memo is None:
            return answer(as_of)
        now = int(as_of.timestamp())  # the domain's `now` (partitions.now_of)
        key = (method, snapshot.namespace_id, snapshot.generation, request.SerializeToString())
        serialized = answer(as_of).SerializeToString()
        until = None if explicit else _horizon(snapshot, method, asset, involved, now)
        memo.put(key, serialized, as_of, explicit, now, until)
        return serialized

    def _memo_hit(
        self,
        method: str,
        request: pb.GetUpstreamPartitionsRequest | pb.GetDownstreamPartitionsRequest,
    ) -> bytes | None:
        """The memoised answer, looked up before validating anything: an entry exists only
        for request bytes that were valid and answered in this very snapshot (and, without
        `as_of`, within the time horizon), so they would be again."""
        memo = self._memo
        if memo is None:
            return None
        snapshot = self._cache.cached(request.namespace)
        if snapshot is None:
            return None
        key = (method, snapshot.namespace_id, snapshot.generation, request.SerializeToString())
        if request.HasField("as_of"):
            return memo.get(key, None, 0)  # kept for the whole generation, as_of included
        as_of = self._clock()
        return memo.get(key, as_of, int(as_of.timestamp()))

    def get_upstream(
        self, request: pb.GetUpstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> Message | bytes:
        hit = self._memo_hit("upstream", request)
        if hit is not None:
            return hit
        snapshot, asset = self._stored_asset(request.namespace, request.asset_key)
        return self._memoised(
            "upstream",
            request,
            snapshot,
            asset,
            lambda: [
                asset.partitions,
                *(snapshot.assets[d.upstream_key].partitions for d in asset.dependencies),
            ],
            lambda as_of: self._upstream_answer(request, snapshot, asset, as_of),
        )

    def _upstream_answer(
        self,
        request: pb.GetUpstreamPartitionsRequest,
        snapshot: NamespaceSnapshot,
        asset: AssetDefinition,
        as_of: datetime,
    ) -> pb.GetUpstreamPartitionsResponse:
        at = Evaluation(as_of, snapshot.dynamic_keys)
        page = paging.KeyPage(request, self._tokens)
        keys = validate.selected_keys(asset.partitions, request.selection, at)
        by_upstream = {d.upstream_key: d for d in asset.dependencies}
        response = pb.GetUpstreamPartitionsResponse(generation=snapshot.generation)
        convert.set_instant(response.as_of, as_of)
        options = _options(request)
        for upstream_key in validate.selected_related(
            list(by_upstream), request.upstream_asset_keys, "upstream_asset_keys", page
        ):
            dependency = by_upstream[upstream_key]
            upstream = snapshot.assets[upstream_key]
            try:
                result = upstream_partitions(
                    upstream.partitions, asset.partitions, dependency.mapping, keys, at, options
                )
            except PartitionDepsError as error:
                raise validate.named_in_selection(error) from None
            mapping = _mapping_in_force(snapshot, upstream, asset, dependency)
            convert.fill_upstream(response.dependencies.add(), upstream_key, mapping, result, page)
        _fill_not_yet(response.selected_not_yet, request, asset.partitions, keys, at)
        return response

    def get_downstream(
        self, request: pb.GetDownstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> Message | bytes:
        hit = self._memo_hit("downstream", request)
        if hit is not None:
            return hit
        snapshot, asset = self._stored_asset(request.namespace, request.asset_key)
        return self._memoised(
            "downstream",
            request,
            snapshot,
            asset,
            lambda: [
                asset.partitions,
                *(
                    snapshot.assets[key].partitions
                    for key in snapshot.dependents.get(asset.key, ())
                ),
            ],
            lambda as_of: self._downstream_answer(request, snapshot, asset, as_of),
        )

    def _downstream_answer(
        self,
        request: pb.GetDownstreamPartitionsRequest,
        snapshot: NamespaceSnapshot,
        asset: AssetDefinition,
        as_of: datetime,
    ) -> pb.GetDownstreamPartitionsResponse:
        at = Evaluation(as_of, snapshot.dynamic_keys)
        page = paging.KeyPage(request, self._tokens)
        keys = validate.selected_keys(asset.partitions, request.selection, at)
        response = pb.GetDownstreamPartitionsResponse(generation=snapshot.generation)
        convert.set_instant(response.as_of, as_of)
        options = _options(request)
        dependents = snapshot.dependents.get(asset.key, ())
        for downstream_key in validate.selected_related(
            dependents, request.downstream_asset_keys, "downstream_asset_keys", page
        ):
            downstream = snapshot.assets[downstream_key]
            dependency = next(d for d in downstream.dependencies if d.upstream_key == asset.key)
            try:
                result = downstream_partitions(
                    asset.partitions, downstream.partitions, dependency.mapping, keys, at, options
                )
            except PartitionDepsError as error:
                raise validate.named_in_selection(error) from None
            mapping = _mapping_in_force(snapshot, asset, downstream, dependency)
            convert.fill_downstream(
                response.dependents.add(), downstream_key, mapping, result, page
            )
        _fill_not_yet(response.selected_not_yet, request, asset.partitions, keys, at)
        return response

    # -- inline ------------------------------------------------------------------------------

    def _inline(
        self,
        request: pb.ComputeUpstreamPartitionsRequest | pb.ComputeDownstreamPartitionsRequest,
    ) -> tuple[
        PartitionsDefinition | None,
        PartitionsDefinition | None,
        PartitionMapping | None,
        PartitionMapping,
        Evaluation,
    ]:
        # Dagster's order, so the first failure has the same category: build both
        # definitions, validate them (upstream first), then load the mapping.
        at = Evaluation(
            convert.as_of_from_request(request),
            convert.dynamic_keys_from_proto(request.dynamic_partitions),
        )
        upstream = convert.definition_from_proto(request.upstream, "upstream")
        downstream = convert.definition_from_proto(request.downstream, "downstream")
        validate.validated_definition(upstream, "upstream", at)
        validate.validated_definition(downstream, "downstream", at)
        mapping = convert.mapping_from_proto(request.partition_mapping, "partition_mapping")
        in_force = validate.resolved_mapping(upstream, downstream, mapping, "partition_mapping")
        return upstream, downstream, mapping, in_force, at

    def compute_upstream(
        self, request: pb.ComputeUpstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ComputeUpstreamPartitionsResponse:
        upstream, downstream, mapping, in_force, at = self._inline(request)
        page = paging.KeyPage(request, self._tokens)
        keys = validate.selected_keys(downstream, request.selection, at)
        try:
            result = upstream_partitions(upstream, downstream, mapping, keys, at, _options(request))
        except PartitionDepsError as error:
            raise validate.named_in_selection(error) from None
        response = pb.ComputeUpstreamPartitionsResponse()
        convert.fill_upstream(response.result, "", convert.mapping_to_proto(in_force), result, page)
        _fill_not_yet(response.selected_not_yet, request, downstream, keys, at)
        convert.set_instant(response.as_of, at.as_of)
        return response

    def compute_downstream(
        self, request: pb.ComputeDownstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ComputeDownstreamPartitionsResponse:
        upstream, downstream, mapping, in_force, at = self._inline(request)
        page = paging.KeyPage(request, self._tokens)
        keys = validate.selected_keys(upstream, request.selection, at)
        try:
            result = downstream_partitions(
                upstream, downstream, mapping, keys, at, _options(request)
            )
        except PartitionDepsError as error:
            raise validate.named_in_selection(error) from None
        response = pb.ComputeDownstreamPartitionsResponse()
        convert.fill_downstream(
            response.result, "", convert.mapping_to_proto(in_force), result, page
        )
        _fill_not_yet(response.selected_not_yet, request, upstream, keys, at)
        convert.set_instant(response.as_of, at.as_of)
        return response

    # -- keys and windows ----------------------------------------------------------------------

    def _source(
        self, source: pb.DefinitionSource, as_of: datetime, field: str = "source"
    ) -> tuple[PartitionsDefinition, Evaluation]:
        kind = source.WhichOneof("kind")
        definition: PartitionsDefinition | None
        dynamic: Mapping[str, Sequence[str]]
        if kind == "asset":
            snapshot, asset = self._stored_asset(source.asset.namespace, source.asset.asset_key)
            definition, dynamic = asset.partitions, snapshot.dynamic_keys
        elif kind == "partitions_definition":
            definition = validate.validated_definition(
                convert.definition_from_proto(
                    source.partitions_definition, f"{field}.partitions_definition"
                ),
                f"{field}.partitions_definition",
            )
            dynamic = convert.dynamic_keys_from_proto(source.dynamic_partitions)
        else:
            raise ApiError("an asset or a partitions definition is required", field)
        if definition is None:
            raise ApiError("the definition has no partitions", field)
        return definition, Evaluation(as_of, dynamic)

    def list_partitions(
        self, request: pb.ListPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ListPartitionsResponse:
        as_of = convert.as_of_from_request(request)
        definition, at = self._source(request.source, as_of)
        requested = paging.requested_page(request)
        token = self._tokens.continued(requested, (int,))
        offset = 0 if token is None else int(token[0])
        subset = partitions.all_partitions(definition, at)
        total = len(subset)
        response = pb.ListPartitionsResponse(
            partition_keys=subset.keys(offset, requested.size),
            total_size=total,
            ranges=[convert.run_to_proto(run) for run in subset.runs()],
            next_page_token=(
                self._tokens.encode([offset + requested.size], requested.binding)
                if offset + requested.size < total
                else ""
            ),
        )
        convert.set_instant(response.as_of, as_of)
        return response

    def get_time_window(
        self, request: pb.GetTimeWindowRequest, context: grpc.ServicerContext
    ) -> pb.GetTimeWindowResponse:
        definition, _ = self._source(request.source, convert.as_of_from_request(request))
        if not request.partition_key:
            raise ApiError("partition_key is required", "partition_key")
        try:
            start, end = partitions.time_window_for_key(definition, request.partition_key)
        except PartitionDepsError as error:
            raise (error if error.field else error.at("partition_key")) from None
        return pb.GetTimeWindowResponse(
            start_time=convert.instant_to_proto(start), end_time=convert.instant_to_proto(end)
        )

    def get_key_for_timestamp(
        self, request: pb.GetPartitionKeyForTimestampRequest, context: grpc.ServicerContext
    ) -> pb.GetPartitionKeyForTimestampResponse:
        definition, _ = self._source(request.source, convert.as_of_from_request(request))
        if not request.HasField("timestamp"):
            raise ApiError("timestamp is required", "timestamp")
        timestamp = convert.instant_from_proto(request.timestamp, "timestamp")
        try:
            key = partitions.key_for_timestamp(definition, timestamp, request.end_closed)
        except PartitionDepsError as error:
            raise (error if error.field else error.at("timestamp")) from None
        return pb.GetPartitionKeyForTimestampResponse(partition_key=key)
