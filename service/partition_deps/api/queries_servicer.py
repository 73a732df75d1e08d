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

from partition_deps.api import convert, limits, paging
from partition_deps.api.definitions_servicer import required_name
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as common_pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as pb
from partition_deps.api.handlers import Method
from partition_deps.api.response_memo import ResponseMemo
from partition_deps.domain import partitions
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.definitions import (
    Evaluation,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.dependencies import (
    downstream_partitions,
    resolve_mapping,
    upstream_partitions,
    validate_definition,
)
from partition_deps.domain.errors import InvalidPartitionKey, PartitionDepsError
from partition_deps.domain.horizon import valid_until
from partition_deps.domain.mappings.kinds import PartitionMapping
from partition_deps.domain.partitions import DAGSTER, Options
from partition_deps.domain.results import DownstreamResult, Subset, UpstreamResult
from partition_deps.store.cache import DefinitionsCache
from partition_deps.store.definitions import NamespaceSnapshot
from partition_deps.store.errors import AssetNotFound

SERVICE_NAME = "partitiondeps.v1.QueriesService"

# A selection larger than this is refused: answers are ranges, but selections are keys.
MAX_SELECTED_KEYS = limits.MAX_KEYS_PER_REQUEST


def _key_error_field(error: PartitionDepsError) -> PartitionDepsError:
    """Key errors are about the selection: the error with its field in request terms."""
    if isinstance(error, InvalidPartitionKey):
        if error.field.startswith("partition_keys"):
            return error.at("selection.keys")
        if not error.field:
            return error.at("selection")
    return error


def selected_keys(
    definition: PartitionsDefinition | None,
    selection: common_pb.PartitionSelection,
    at: Evaluation,
    field: str = "selection",
) -> list[str]:
    """The keys a selection names, in the definition's order for ranges."""
    kind = selection.WhichOneof("kind")
    if kind is None or (kind == "keys" and definition is None):
        if definition is None:
            if kind == "keys" and selection.keys.partition_keys:
                raise ApiError(
                    "the asset is not partitioned: select it with an empty key list",
                    f"{field}.keys.partition_keys",
                )
            return []
        raise ApiError("a partition selection is required", field)
    if kind == "keys":
        _check_selected(len(selection.keys.partition_keys), f"{field}.keys.partition_keys")
        keys = list(selection.keys.partition_keys)
    elif definition is None:
        raise ApiError("the asset is not partitioned", field)
    elif kind == "all":
        subset = partitions.all_partitions(definition, at)
        _check_selected(len(subset), f"{field}.all")
        keys = list(subset.keys())
    elif kind == "key_range":
        every = _scannable(definition, at, f"{field}.key_range").keys()
        first, last = (
            selection.key_range.first_partition_key,
            selection.key_range.last_partition_key,
        )
        try:
            start, stop = every.index(first), every.index(last)
        except ValueError:
            missing = "first" if first not in every else "last"
            raise InvalidPartitionKey(
                f"{(first if missing == 'first' else last)!r} is not a partition at as_of",
                f"{field}.key_range.{missing}_partition_key",
            ) from None
        keys = every[start : stop + 1]
    else:
        keys = _keys_in_time_range(definition, selection.time_range, at, f"{field}.time_range")
    _check_selected(len(keys), field)
    return keys


def _check_selected(count: int, field: str) -> None:
    limits.check_count(count, MAX_SELECTED_KEYS, "keys selected", field, "SELECTION_TOO_LARGE")


def _scannable(definition: PartitionsDefinition, at: Evaluation, field: str) -> Subset:
    """Every partition, if there are few enough to scan for a range's keys."""
    every = partitions.all_partitions(definition, at)
    limits.check_count(
        len(every), limits.MAX_RANGE_EXPANSION, "partitions to scan", field, "RANGE_TOO_LARGE"
    )
    return every


def _keys_in_time_range(
    definition: PartitionsDefinition, time_range: common_pb.TimeRange, at: Evaluation, field: str
) -> list[str]:
    if not (time_range.HasField("start_time") and time_range.HasField("end_time")):
        raise ApiError("start_time and end_time are required", field)
    if not isinstance(definition, TimeWindowPartitions):
        raise ApiError("a time range selects time-window partitions only", field)
    start = convert.instant_from_proto(time_range.start_time, f"{field}.start_time")
    end = convert.instant_from_proto(time_range.end_time, f"{field}.end_time")
    selected = []
    for key in _scannable(definition, at, field):
        window_start, window_end = partitions.time_window_for_key(definition, key)
        if window_end > start and window_start < end:
            selected.append(key)
    return selected


_PagedQuery = (
    pb.GetUpstreamPartitionsRequest
    | pb.GetDownstreamPartitionsRequest
    | pb.ComputeUpstreamPartitionsRequest
    | pb.ComputeDownstreamPartitionsRequest
)
_StatusList = RepeatedCompositeFieldContainer[common_pb.PartitionStatus]


# Queried keys that do not exist yet are answered only on request (`accept_keys_not_yet`).
_KEYS_NOT_YET = Options(keys_not_yet=True)


def _options(request: _PagedQuery) -> Options:
    return _KEYS_NOT_YET if request.accept_keys_not_yet else DAGSTER


def _fill_not_yet(
    target: _StatusList,
    request: _PagedQuery,
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


class KeyPage:
    """The page of keys a request asks for: `limit` 0 means ranges only."""

    def __init__(self, request: _PagedQuery, tokens: paging.PageTokens) -> None:
        paging_request = request.key_paging
        self._tokens = tokens
        self._binding = paging.request_binding(
            request, "key_paging.page_token", "key_paging.page_size"
        )
        token = tokens.decode(
            paging_request.page_token, self._binding, (str, int), "key_paging.page_token"
        )
        self.scope, self.offset = ("", 0) if token is None else (str(token[0]), int(token[1]))
        self.limit = (
            paging.page_size(paging_request.page_size, "key_paging.page_size")
            if paging_request.include_keys
            else 0
        )

    def next_token(self, scope: str, *lengths: int) -> str:
        end = self.offset + self.limit
        if self.limit and max(lengths) > end:
            return self._tokens.encode([scope, end], self._binding)
        return ""


def fill_upstream(
    target: pb.UpstreamPartitions,
    upstream_key: str,
    mapping: common_pb.PartitionMapping,
    result: UpstreamResult,
    page: KeyPage,
) -> None:
    target.upstream_asset_key = upstream_key
    target.partition_mapping.CopyFrom(mapping)
    target.whole_asset = result.whole_asset
    convert.fill_subset(target.partitions, result.partitions, page.offset, page.limit)
    convert.fill_subset(
        target.required_but_nonexistent, result.required_but_nonexistent, page.offset, page.limit
    )
    target.nonexistent.extend(
        convert.key_status_to_proto(status)
        for status in result.nonexistent[page.offset : page.offset + page.limit]
    )
    target.next_page_token = page.next_token(
        upstream_key,
        len(result.partitions),
        len(result.required_but_nonexistent),
        len(result.nonexistent),
    )


def fill_downstream(
    target: pb.DownstreamPartitions,
    downstream_key: str,
    mapping: common_pb.PartitionMapping,
    result: DownstreamResult,
    page: KeyPage,
) -> None:
    target.downstream_asset_key = downstream_key
    target.partition_mapping.CopyFrom(mapping)
    target.whole_asset = result.whole_asset
    convert.fill_subset(target.partitions, result.partitions, page.offset, page.limit)
    target.next_page_token = page.next_token(downstream_key, len(result.partitions))


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


def _selected_others(
    available: Sequence[str], wanted: Sequence[str], field: str, page: KeyPage
) -> list[str]:
    """The related assets to answer for: all, the `wanted` ones, or the page token's one."""
    if page.scope:
        if page.scope not in available:
            raise ApiError("the page token is not for this query", field)
        return [page.scope]
    if not wanted:
        return list(available)
    for index, key in enumerate(wanted):
        if key not in available:
            raise ApiError(f"{key!r} is not related to the asset", f"{field}[{index}]")
    return [key for key in available if key in set(wanted)]


def _validated(
    definition: PartitionsDefinition | None, field: str, at: Evaluation | None = None
) -> PartitionsDefinition | None:
    """Validate as Dagster does at load time when `at` is given (see validate_definition)."""
    if definition is not None:
        try:
            validate_definition(definition, at=at)
        except PartitionDepsError as error:
            raise error.at(convert.definition_field(field, definition)) from None
    return definition


def _resolved(
    upstream: PartitionsDefinition | None,
    downstream: PartitionsDefinition | None,
    mapping: PartitionMapping | None,
) -> PartitionMapping:
    try:
        return resolve_mapping(upstream, downstream, mapping)
    except PartitionDepsError as error:
        raise error.at("partition_mapping") from None


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
        snapshot = self._cache.snapshot(required_name(namespace, "namespace"))
        key = required_name(asset_key, "asset_key")
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
        page = KeyPage(request, self._tokens)
        keys = selected_keys(asset.partitions, request.selection, at)
        by_upstream = {d.upstream_key: d for d in asset.dependencies}
        response = pb.GetUpstreamPartitionsResponse(generation=snapshot.generation)
        convert.set_instant(response.as_of, as_of)
        options = _options(request)
        for upstream_key in _selected_others(
            list(by_upstream), request.upstream_asset_keys, "upstream_asset_keys", page
        ):
            dependency = by_upstream[upstream_key]
            upstream = snapshot.assets[upstream_key]
            try:
                result = upstream_partitions(
                    upstream.partitions, asset.partitions, dependency.mapping, keys, at, options
                )
            except PartitionDepsError as error:
                raise _key_error_field(error) from None
            mapping = _mapping_in_force(snapshot, upstream, asset, dependency)
            fill_upstream(response.dependencies.add(), upstream_key, mapping, result, page)
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
        page = KeyPage(request, self._tokens)
        keys = selected_keys(asset.partitions, request.selection, at)
        response = pb.GetDownstreamPartitionsResponse(generation=snapshot.generation)
        convert.set_instant(response.as_of, as_of)
        options = _options(request)
        dependents = snapshot.dependents.get(asset.key, ())
        for downstream_key in _selected_others(
            dependents, request.downstream_asset_keys, "downstream_asset_keys", page
        ):
            downstream = snapshot.assets[downstream_key]
            dependency = next(d for d in downstream.dependencies if d.upstream_key == asset.key)
            try:
                result = downstream_partitions(
                    asset.partitions, downstream.partitions, dependency.mapping, keys, at, options
                )
            except PartitionDepsError as error:
                raise _key_error_field(error) from None
            mapping = _mapping_in_force(snapshot, asset, downstream, dependency)
            fill_downstream(response.dependents.add(), downstream_key, mapping, result, page)
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
        _validated(upstream, "upstream", at)
        _validated(downstream, "downstream", at)
        mapping = convert.mapping_from_proto(request.partition_mapping, "partition_mapping")
        in_force = _resolved(upstream, downstream, mapping)
        return upstream, downstream, mapping, in_force, at

    def compute_upstream(
        self, request: pb.ComputeUpstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ComputeUpstreamPartitionsResponse:
        upstream, downstream, mapping, in_force, at = self._inline(request)
        page = KeyPage(request, self._tokens)
        keys = selected_keys(downstream, request.selection, at)
        try:
            result = upstream_partitions(upstream, downstream, mapping, keys, at, _options(request))
        except PartitionDepsError as error:
            raise _key_error_field(error) from None
        response = pb.ComputeUpstreamPartitionsResponse()
        fill_upstream(response.result, "", convert.mapping_to_proto(in_force), result, page)
        _fill_not_yet(response.selected_not_yet, request, downstream, keys, at)
        convert.set_instant(response.as_of, at.as_of)
        return response

    def compute_downstream(
        self, request: pb.ComputeDownstreamPartitionsRequest, context: grpc.ServicerContext
    ) -> pb.ComputeDownstreamPartitionsResponse:
        upstream, downstream, mapping, in_force, at = self._inline(request)
        page = KeyPage(request, self._tokens)
        keys = selected_keys(upstream, request.selection, at)
        try:
            result = downstream_partitions(
                upstream, downstream, mapping, keys, at, _options(request)
            )
        except PartitionDepsError as error:
            raise _key_error_field(error) from None
        response = pb.ComputeDownstreamPartitionsResponse()
        fill_downstream(response.result, "", convert.mapping_to_proto(in_force), result, page)
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
            definition = _validated(
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
        size = paging.page_size(request.page_size, "page_size")
        binding = paging.request_binding(request, "page_token", "page_size")
        token = self._tokens.decode(request.page_token, binding, (int,), "page_token")
        offset = 0 if token is None else int(token[0])
        subset = partitions.all_partitions(definition, at)
        total = len(subset)
        response = pb.ListPartitionsResponse(
            partition_keys=subset.keys(offset, size),
            total_size=total,
            ranges=[convert.run_to_proto(run) for run in subset.runs()],
            next_page_token=(
                self._tokens.encode([offset + size], binding) if offset + size < total else ""
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
