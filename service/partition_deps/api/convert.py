"""Protobuf <-> domain values: the only module that knows both.

Inputs are checked structurally here (required fields, wall-time syntax, nesting) and refused
with an error naming the protobuf field; semantic checks stay in the domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api import limits, paging
from partition_deps.api.errors import ApiError
from partition_deps.api.gen.partitiondeps.v1 import (
    automation_pb2 as automation_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2 as defs_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (
    events_service_pb2 as events_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (
    partitions_pb2 as pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (
    queries_service_pb2 as queries_pb,
)
from partition_deps.api.gen.partitiondeps.v1 import (
    staleness_service_pb2 as stale_pb,
)
from partition_deps.domain import events, partitions, staleness
from partition_deps.domain.assets import AssetDefinition, Dependency
from partition_deps.domain.automation import conditions
from partition_deps.domain.automation.conditions import Condition
from partition_deps.domain.definitions import (
    Dimension,
    DynamicPartitions,
    MultiPartitions,
    PartitionsDefinition,
    StaticPartitions,
    TimeWindowPartitions,
)
from partition_deps.domain.errors import InvalidDefinition, InvalidMapping, PartitionDepsError
from partition_deps.domain.mappings.kinds import (
    AllMapping,
    DimensionMapping,
    IdentityMapping,
    LastMapping,
    MultiMapping,
    MultiToSingleDimensionMapping,
    PartitionMapping,
    SpecificMapping,
    StaticMapping,
    TimeWindowMapping,
)
from partition_deps.domain.results import (
    DownstreamResult,
    KeyState,
    KeyStatus,
    PartitionRun,
    Subset,
    UpstreamResult,
)
from partition_deps.domain.staleness_summary import AssetSummary
from partition_deps.domain.years import FIRST_YEAR, LAST_YEAR
from partition_deps.store.read_routing import ReadFloor


def read_floor(request: Message) -> ReadFloor:
    """What a read must see (read-your-writes): the request's min_event_position and, where it
    has one, min_generation."""
    fields = request.DESCRIPTOR.fields_by_name
    floor: dict[str, int] = {}
    for name in ("min_event_position", "min_generation"):
        value = int(getattr(request, name)) if name in fields else 0
        if value < 0:
            raise ApiError(f"{name} must not be negative", name)
        floor[name] = value
    return ReadFloor(floor["min_event_position"], floor["min_generation"])


# -- instants ------------------------------------------------------------------------------


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_SECOND = timedelta(seconds=1)


_MIN_SECONDS = int((datetime(FIRST_YEAR, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds())
_MAX_SECONDS = int((datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC) - _EPOCH).total_seconds()) - 1


def instant_from_proto(timestamp: Timestamp, field: str = "") -> datetime:
    seconds, nanos = timestamp.seconds, timestamp.nanos
    if not (_MIN_SECONDS <= seconds <= _MAX_SECONDS and 0 <= nanos <= 999_999_999):
        raise ApiError(
            f"timestamps must be within the years {FIRST_YEAR}-{LAST_YEAR} and nanos within"
            f" [0, 999999999] (got seconds={seconds}, nanos={nanos})",
            field,
        )
    # Arithmetic on the epoch: a third of Timestamp.ToDatetime's cost, on the ingest hot path.
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


def set_instant(timestamp: Timestamp, instant: datetime) -> None:
    """Timestamp.FromDatetime for aware datetimes, at a third of its cost (per-range hot path)."""
    seconds = (instant - _EPOCH) // _ONE_SECOND
    timestamp.seconds = seconds
    timestamp.nanos = instant.microsecond * 1000


def instant_to_proto(instant: datetime) -> Timestamp:
    timestamp = Timestamp()
    set_instant(timestamp, instant)
    return timestamp


def as_of_from_request(request: object, field: str = "as_of") -> datetime:
    """The request's `as_of`, or the server's clock when unset."""
    if request.HasField(field):  # type: ignore[attr-defined]
        return instant_from_proto(getattr(request, field), field)
    return datetime.now(UTC)


# -- partitions definitions ----------------------------------------------------------------


def _wall_time(text: str, field: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidDefinition(
            f"{text!r} is not an ISO 8601 wall time such as 2024-01-01T00:00:00", field
        ) from None
    if value.tzinfo is not None:
        raise InvalidDefinition(f"{text!r} must not carry a UTC offset", field)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise InvalidDefinition(f"{text!r} is outside the years {FIRST_YEAR}-{LAST_YEAR}", field)
    return value


def definition_from_proto(
    message: pb.PartitionsDefinition, field: str
) -> PartitionsDefinition | None:
    """The domain definition; None when no kind is set (an unpartitioned asset)."""
    kind = message.WhichOneof("kind")
    if kind is None:
        return None
    at = f"{field}.{kind}"
    if kind == "time_window":
        window = message.time_window
        if not window.cron_schedule:
            raise InvalidDefinition("cron_schedule is required", f"{at}.cron_schedule")
        if not window.start:
            raise InvalidDefinition("start is required", f"{at}.start")
        exclusions: list[str | datetime] = []
        for index, exclusion in enumerate(window.exclusions):
            which = exclusion.WhichOneof("kind")
            if which == "cron_schedule":
                exclusions.append(exclusion.cron_schedule)
            elif which == "wall_time":
                exclusions.append(
                    _wall_time(exclusion.wall_time, f"{at}.exclusions[{index}].wall_time")
                )
            else:
                raise InvalidDefinition("an exclusion needs a kind", f"{at}.exclusions[{index}]")
        limits.check_offset(window.end_offset, f"{at}.end_offset")
        definition: PartitionsDefinition = TimeWindowPartitions(
            cron_schedule=window.cron_schedule,
            start=_wall_time(window.start, f"{at}.start"),
            timezone=window.timezone or "UTC",
            fmt=window.fmt or "%Y-%m-%d",
            end=_wall_time(window.end, f"{at}.end") if window.HasField("end") else None,
            end_offset=window.end_offset,
            exclusions=tuple(exclusions),
        )
        limits.check_definition_size(definition, at)
        return definition
    if kind == "static":
        return StaticPartitions(tuple(message.static.partition_keys))
    if kind == "dynamic":
        return DynamicPartitions(message.dynamic.name)
    dimensions = []
    for index, dimension in enumerate(message.multi.dimensions):
        inner_field = f"{at}.dimensions[{index}].partitions"
        inner = definition_from_proto(dimension.partitions, inner_field)
        if inner is None or isinstance(inner, MultiPartitions):
            raise InvalidDefinition(
                "a dimension must be a time-window, static or dynamic definition", inner_field
            )
        dimensions.append(Dimension(dimension.name, inner))
    multi = MultiPartitions(tuple(dimensions))
    limits.check_definition_size(multi, at)
    return multi


# Thread safety: a constant table, never changed.
_DEFINITION_KINDS = {
    TimeWindowPartitions: "time_window",
    StaticPartitions: "static",
    DynamicPartitions: "dynamic",
    MultiPartitions: "multi",
}


def definition_field(field: str, definition: PartitionsDefinition) -> str:
    """The request path of a definition's fields: domain errors name fields relative to the
    definition (`timezone`), the request nests them in the oneof (`...time_window.timezone`)."""
    return f"{field}.{_DEFINITION_KINDS[type(definition)]}"


def definition_to_proto(definition: PartitionsDefinition | None) -> pb.PartitionsDefinition:
    match definition:
        case None:
            return pb.PartitionsDefinition()
        case TimeWindowPartitions():
            window = pb.TimeWindowPartitions(
                cron_schedule=definition.cron_schedule,
                start=definition.start.isoformat(),
                timezone=definition.timezone,
                fmt=definition.fmt,
                end_offset=definition.end_offset,
                exclusions=[
                    pb.Exclusion(wall_time=e.isoformat())
                    if isinstance(e, datetime)
                    else pb.Exclusion(cron_schedule=e)
                    for e in definition.exclusions
                ],
            )
            if definition.end is not None:
                window.end = definition.end.isoformat()
            return pb.PartitionsDefinition(time_window=window)
        case StaticPartitions():
            return pb.PartitionsDefinition(
                static=pb.StaticPartitions(partition_keys=definition.keys)
            )
        case DynamicPartitions():
            return pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name=definition.name))
        case MultiPartitions():
            return pb.PartitionsDefinition(
                multi=pb.MultiPartitions(
                    dimensions=[
                        pb.Dimension(name=d.name, partitions=definition_to_proto(d.partitions))
                        for d in definition.dimensions
                    ]
                )
            )


# -- partition mappings --------------------------------------------------------------------


def mapping_from_proto(message: pb.PartitionMapping, field: str) -> PartitionMapping | None:
    """The domain mapping; None when no kind is set (Dagster's inferred default)."""
    kind = message.WhichOneof("kind")
    match kind:
        case None:
            return None
        case "identity":
            return IdentityMapping()
        case "all":
            return AllMapping()
        case "last":
            return LastMapping()
        case "time_window":
            window = message.time_window
            limits.check_offset(window.start_offset, f"{field}.time_window.start_offset")
            limits.check_offset(window.end_offset, f"{field}.time_window.end_offset")
            return TimeWindowMapping(
                start_offset=window.start_offset,
                end_offset=window.end_offset,
                allow_nonexistent_upstream_partitions=window.allow_nonexistent_upstream_partitions,
            )
        case "static":
            return StaticMapping(
                tuple(
                    (entry.upstream_partition_key, tuple(entry.downstream_partition_keys))
                    for entry in message.static.entries
                )
            )
        case "specific":
            return SpecificMapping(tuple(message.specific.partition_keys))
        case "multi_to_single_dimension":
            single = message.multi_to_single_dimension
            return MultiToSingleDimensionMapping(
                single.dimension_name if single.HasField("dimension_name") else None
            )
    dimensions = []
    for index, dimension in enumerate(message.multi.dimension_mappings):
        inner_field = f"{field}.multi.dimension_mappings[{index}]"
        inner = mapping_from_proto(dimension.mapping, f"{inner_field}.mapping")
        if inner is None:
            raise InvalidMapping("a dimension mapping needs a mapping", f"{inner_field}.mapping")
        dimensions.append(
            DimensionMapping(dimension.upstream_dimension, dimension.downstream_dimension, inner)
        )
    return MultiMapping(tuple(dimensions))


def mapping_to_proto(mapping: PartitionMapping | None) -> pb.PartitionMapping:
    match mapping:
        case None:
            return pb.PartitionMapping()
        case IdentityMapping():
            return pb.PartitionMapping(identity=pb.IdentityMapping())
        case AllMapping():
            return pb.PartitionMapping(all=pb.AllMapping())
        case LastMapping():
            return pb.PartitionMapping(last=pb.LastMapping())
        case TimeWindowMapping():
            return pb.PartitionMapping(
                time_window=pb.TimeWindowMapping(
                    start_offset=mapping.start_offset,
                    end_offset=mapping.end_offset,
                    allow_nonexistent_upstream_partitions=(
                        mapping.allow_nonexistent_upstream_partitions
                    ),
                )
            )
        case StaticMapping():
            return pb.PartitionMapping(
                static=pb.StaticMapping(
                    entries=[
                        pb.StaticMappingEntry(
                            upstream_partition_key=up, downstream_partition_keys=downs
                        )
                        for up, downs in mapping.downstream_keys_by_upstream_key
                    ]
                )
            )
        case SpecificMapping():
            return pb.PartitionMapping(specific=pb.SpecificMapping(partition_keys=mapping.keys))
        case MultiToSingleDimensionMapping():
            return pb.PartitionMapping(
                multi_to_single_dimension=pb.MultiToSingleDimensionMapping(
                    dimension_name=mapping.dimension_name
                )
            )
        case MultiMapping():
            return pb.PartitionMapping(
                multi=pb.MultiMapping(
                    dimension_mappings=[
                        pb.DimensionMapping(
                            upstream_dimension=d.upstream_dimension,
                            downstream_dimension=d.downstream_dimension,
                            mapping=mapping_to_proto(d.mapping),
                        )
                        for d in mapping.dimensions
                    ]
                )
            )


# -- automation conditions -----------------------------------------------------------------


def condition_from_proto(message: automation_pb.AutomationCondition, field: str) -> Condition:
    """The domain condition, checked whole: InvalidDefinition names the path of the first bad
    node below `field` (`field.and.operands[2].cron_tick_passed.cron_schedule`)."""
    condition = _condition_node(message, field)
    try:
        conditions.validate_condition(condition)
    except PartitionDepsError as error:
        raise error.at(field) from None
    return condition


def _condition_node(message: automation_pb.AutomationCondition, field: str) -> Condition:
    kind = message.WhichOneof("kind")
    if kind is None:
        raise InvalidDefinition("a condition needs a kind", field)
    at = f"{field}.{kind}"
    body = getattr(message, kind)
    if kind in conditions.LIST_OPERATORS:
        return Condition(
            kind,
            operands=tuple(
                _condition_node(operand, f"{at}.operands[{index}]")
                for index, operand in enumerate(body.operands)
            ),
        )
    if kind == "since":
        return Condition(
            kind,
            operands=(
                _required_operand(body, "trigger", at),
                _required_operand(body, "reset", at),
            ),
        )
    if kind in conditions.UNARY_OPERATORS:
        return Condition(kind, operands=(_required_operand(body, "operand", at),))
    if kind in conditions.DEPS_OPERATORS:
        return Condition(
            kind,
            operands=(_required_operand(body, "operand", at),),
            allow=_asset_keys(body, "allow", at),
            ignore=_asset_keys(body, "ignore", at),
        )
    if kind in conditions.DEPS_LEAVES:
        return Condition(
            kind, allow=_asset_keys(body, "allow", at), ignore=_asset_keys(body, "ignore", at)
        )
    if kind in conditions.CRON_KINDS:
        return Condition(
            kind, cron_schedule=body.cron_schedule, cron_timezone=body.cron_timezone or "UTC"
        )
    if kind == "in_latest_time_window":
        return Condition(
            kind,
            lookback_seconds=body.lookback_seconds if body.HasField("lookback_seconds") else None,
        )
    return Condition(kind)


def _required_operand(body: object, name: str, at: str) -> Condition:
    if not body.HasField(name):  # type: ignore[attr-defined]
        raise InvalidDefinition(f"{name} is required", f"{at}.{name}")
    return _condition_node(getattr(body, name), f"{at}.{name}")


def _asset_keys(body: object, name: str, at: str) -> tuple[str, ...] | None:
    """The list's keys; None when the list is unset (an empty list is set: it allows none)."""
    if not body.HasField(name):  # type: ignore[attr-defined]
        return None
    keys = tuple(getattr(body, name).asset_keys)
    for index, key in enumerate(keys):
        if not key:
            raise InvalidDefinition(
                "an asset key must not be empty", f"{at}.{name}.asset_keys[{index}]"
            )
    return keys


def condition_to_proto(condition: Condition) -> automation_pb.AutomationCondition:
    message = automation_pb.AutomationCondition()
    body = getattr(message, condition.kind)
    body.SetInParent()  # a kind without fields is set by being present
    kind = condition.kind
    if kind in conditions.LIST_OPERATORS:
        body.operands.extend(condition_to_proto(operand) for operand in condition.operands)
    elif kind == "since":
        body.trigger.CopyFrom(condition_to_proto(condition.operands[0]))
        body.reset.CopyFrom(condition_to_proto(condition.operands[1]))
    elif condition.operands:
        body.operand.CopyFrom(condition_to_proto(condition.operand))
    if kind in conditions.CRON_KINDS:
        body.cron_schedule = condition.cron_schedule
        body.cron_timezone = condition.cron_timezone
    if kind == "in_latest_time_window" and condition.lookback_seconds is not None:
        body.lookback_seconds = condition.lookback_seconds
    for name, keys in (("allow", condition.allow), ("ignore", condition.ignore)):
        if keys is not None:
            getattr(body, name).SetInParent()
            getattr(body, name).asset_keys.extend(keys)
    return message


# -- assets --------------------------------------------------------------------------------


def asset_from_proto(message: defs_pb.Asset, field: str) -> AssetDefinition:
    if not message.asset_key:
        raise ApiError("asset_key is required", f"{field}.asset_key")
    dependencies = []
    for index, dependency in enumerate(message.dependencies):
        at = f"{field}.dependencies[{index}]"
        if not dependency.upstream_asset_key:
            raise ApiError("upstream_asset_key is required", f"{at}.upstream_asset_key")
        dependencies.append(
            Dependency(
                dependency.upstream_asset_key,
                mapping_from_proto(dependency.partition_mapping, f"{at}.partition_mapping"),
            )
        )
    return AssetDefinition(
        key=message.asset_key,
        partitions=definition_from_proto(
            message.partitions_definition, f"{field}.partitions_definition"
        ),
        code_version=message.code_version if message.HasField("code_version") else None,
        dependencies=tuple(dependencies),
        observable_source=message.observable_source,
        automation_condition=(
            condition_from_proto(message.automation_condition, f"{field}.automation_condition")
            if message.HasField("automation_condition")
            else None
        ),
    )


def asset_to_proto(asset: AssetDefinition, generation: int) -> defs_pb.Asset:
    message = defs_pb.Asset(
        asset_key=asset.key,
        code_version=asset.code_version,
        generation=generation,
        observable_source=asset.observable_source,
    )
    for dependency in asset.dependencies:
        added = message.dependencies.add(upstream_asset_key=dependency.upstream_key)
        if dependency.mapping is not None:  # unset means inferred, as in the request
            added.partition_mapping.CopyFrom(mapping_to_proto(dependency.mapping))
    if asset.partitions is not None:
        message.partitions_definition.CopyFrom(definition_to_proto(asset.partitions))
    if asset.automation_condition is not None:
        message.automation_condition.CopyFrom(condition_to_proto(asset.automation_condition))
    return message


# -- events --------------------------------------------------------------------------------


def _optional_key(message: object, field: str) -> str | None:
    if not message.HasField("partition_key"):  # type: ignore[attr-defined]
        return None
    key: str = message.partition_key  # type: ignore[attr-defined]
    if not key:
        raise ApiError("partition_key, when set, must not be empty", f"{field}.partition_key")
    return key


def _required(value: str, field: str) -> str:
    if not value:
        raise ApiError(f"{field.rsplit('.', 1)[-1]} is required", field)
    return value


def event_from_proto(message: events_pb.Event, field: str) -> events.Event:
    idempotency_key = _required(message.idempotency_key, f"{field}.idempotency_key")
    if not message.HasField("event_time"):
        raise ApiError("event_time is required", f"{field}.event_time")
    event_time = instant_from_proto(message.event_time, f"{field}.event_time")
    kind = message.WhichOneof("kind")
    at = f"{field}.{kind}"
    if kind == "materialization":
        m = message.materialization
        return events.Materialization(
            idempotency_key=idempotency_key,
            event_time=event_time,
            asset_key=_required(m.asset_key, f"{at}.asset_key"),
            partition_key=_optional_key(m, at),
            run_id=m.run_id,
            data_version=m.data_version,
            code_version=m.code_version if m.HasField("code_version") else None,
        )
    if kind == "observation":
        o = message.observation
        return events.Observation(
            idempotency_key=idempotency_key,
            event_time=event_time,
            asset_key=_required(o.asset_key, f"{at}.asset_key"),
            partition_key=_optional_key(o, at),
            data_version=o.data_version,
        )
    if kind == "run_started":
        started = message.run_started
        return events.RunStarted(
            idempotency_key=idempotency_key,
            event_time=event_time,
            run_id=_required(started.run_id, f"{at}.run_id"),
            targets=tuple(
                events.PartitionTarget(
                    _required(t.asset_key, f"{at}.targets[{i}].asset_key"),
                    _optional_key(t, f"{at}.targets[{i}]"),
                )
                for i, t in enumerate(started.targets)
            ),
            lease=_lease(started.lease, f"{at}.lease") if started.HasField("lease") else None,
        )
    if kind == "run_failed":
        failed = message.run_failed
        return events.RunFailed(
            idempotency_key=idempotency_key,
            event_time=event_time,
            run_id=_required(failed.run_id, f"{at}.run_id"),
            message=failed.message,
        )
    if kind == "run_canceled":
        canceled = message.run_canceled
        return events.RunCanceled(
            idempotency_key=idempotency_key,
            event_time=event_time,
            run_id=_required(canceled.run_id, f"{at}.run_id"),
            message=canceled.message,
        )
    if kind == "run_succeeded":
        return events.RunSucceeded(
            idempotency_key=idempotency_key,
            event_time=event_time,
            run_id=_required(message.run_succeeded.run_id, f"{at}.run_id"),
        )
    if kind == "run_heartbeat":
        return events.RunHeartbeat(
            idempotency_key=idempotency_key,
            event_time=event_time,
            run_id=_required(message.run_heartbeat.run_id, f"{at}.run_id"),
        )
    raise ApiError("an event needs a kind", field)


def _lease(duration: Duration, field: str) -> timedelta:
    """A run's lease: positive, at most `limits.MAX_RUN_LEASE`."""
    if duration.seconds < 0 or duration.nanos < 0 or (duration.seconds, duration.nanos) == (0, 0):
        raise ApiError("a lease must be positive", field)
    if duration.nanos >= 1_000_000_000:
        raise ApiError("nanos must be below 1,000,000,000", f"{field}.nanos")
    if duration.seconds >= limits.MAX_RUN_LEASE.total_seconds():
        raise ApiError(f"a lease is at most {limits.MAX_RUN_LEASE.days} days", field)
    return timedelta(seconds=duration.seconds, microseconds=duration.nanos // 1000)


# -- answers -------------------------------------------------------------------------------


def dynamic_keys_from_proto(
    dynamic: Mapping[str, pb.DynamicPartitionKeys],
) -> dict[str, Sequence[str]]:
    return {name: tuple(keys.partition_keys) for name, keys in dynamic.items()}


def _fill_range(target: pb.PartitionRange, run: PartitionRun) -> None:
    target.first_partition_key = run.first_key
    target.last_partition_key = run.last_key
    target.count = run.count
    if run.start is not None:
        set_instant(target.start_time, run.start)
    if run.end is not None:
        set_instant(target.end_time, run.end)


def run_to_proto(run: PartitionRun) -> pb.PartitionRange:
    message = pb.PartitionRange()
    _fill_range(message, run)
    return message


def fill_subset(target: pb.PartitionSet, subset: Subset, key_offset: int, key_limit: int) -> None:
    """Write the subset as ranges, plus keys [key_offset, key_offset + key_limit) (none if
    the limit is 0), into `target` in place (building sub-messages and copying them in costs
    a copy per level on the serving hot path)."""
    target.count = len(subset)
    if not target.count:
        return
    for run in subset.runs():
        _fill_range(target.ranges.add(), run)
    if key_limit:
        target.partition_keys.extend(subset.keys(key_offset, key_limit))


def subset_to_proto(subset: Subset, key_offset: int, key_limit: int) -> pb.PartitionSet:
    message = pb.PartitionSet()
    fill_subset(message, subset, key_offset, key_limit)
    return message


def fill_upstream(
    target: queries_pb.UpstreamPartitions,
    upstream_key: str,
    mapping: pb.PartitionMapping,
    result: UpstreamResult,
    page: paging.KeyPage,
) -> None:
    target.upstream_asset_key = upstream_key
    target.partition_mapping.CopyFrom(mapping)
    target.whole_asset = result.whole_asset
    fill_subset(target.partitions, result.partitions, page.offset, page.limit)
    fill_subset(
        target.required_but_nonexistent, result.required_but_nonexistent, page.offset, page.limit
    )
    target.nonexistent.extend(
        key_status_to_proto(status)
        for status in result.nonexistent[page.offset : page.offset + page.limit]
    )
    target.next_page_token = page.next_token(
        upstream_key,
        len(result.partitions),
        len(result.required_but_nonexistent),
        len(result.nonexistent),
    )


def fill_downstream(
    target: queries_pb.DownstreamPartitions,
    downstream_key: str,
    mapping: pb.PartitionMapping,
    result: DownstreamResult,
    page: paging.KeyPage,
) -> None:
    target.downstream_asset_key = downstream_key
    target.partition_mapping.CopyFrom(mapping)
    target.whole_asset = result.whole_asset
    fill_subset(target.partitions, result.partitions, page.offset, page.limit)
    target.next_page_token = page.next_token(downstream_key, len(result.partitions))


# Thread safety: a constant table, never changed.
_STATES = {
    KeyState.EXISTS: pb.PARTITION_STATE_EXISTS,
    KeyState.NOT_YET: pb.PARTITION_STATE_NOT_YET,
    KeyState.NEVER: pb.PARTITION_STATE_NEVER,
}


def key_status_to_proto(status: KeyStatus) -> pb.PartitionStatus:
    message = pb.PartitionStatus(
        partition_key=status.key, state=_STATES[status.state], reason=status.reason
    )
    if status.available_at is not None:
        set_instant(message.available_time, status.available_at)
    return message


# -- staleness and plans -------------------------------------------------------------------

# Thread safety: a constant table, never changed.
_STALE_STATUSES = {
    staleness.Status.FRESH: stale_pb.STALE_STATUS_FRESH,
    staleness.Status.STALE: stale_pb.STALE_STATUS_STALE,
    staleness.Status.MISSING: stale_pb.STALE_STATUS_MISSING,
}

# Thread safety: a constant table, never changed.
_CAUSE_KINDS = {
    staleness.CauseKind.NEVER_MATERIALIZED: stale_pb.STALE_CAUSE_KIND_NEVER_MATERIALIZED,
    staleness.CauseKind.UPSTREAM_UPDATED: stale_pb.STALE_CAUSE_KIND_UPSTREAM_UPDATED,
    staleness.CauseKind.CODE_VERSION_CHANGED: stale_pb.STALE_CAUSE_KIND_CODE_VERSION_CHANGED,
    staleness.CauseKind.DEPENDENCY_ADDED: stale_pb.STALE_CAUSE_KIND_DEPENDENCY_ADDED,
    staleness.CauseKind.DEPENDENCY_REMOVED: stale_pb.STALE_CAUSE_KIND_DEPENDENCY_REMOVED,
    staleness.CauseKind.UPSTREAM_MISSING: stale_pb.STALE_CAUSE_KIND_UPSTREAM_MISSING,
    staleness.CauseKind.UPSTREAM_NONEXISTENT: stale_pb.STALE_CAUSE_KIND_UPSTREAM_NONEXISTENT,
    staleness.CauseKind.UPSTREAM_STALE: stale_pb.STALE_CAUSE_KIND_UPSTREAM_STALE,
    staleness.CauseKind.RUN_LEASE_EXPIRED: stale_pb.STALE_CAUSE_KIND_RUN_LEASE_EXPIRED,
}


def fill_range(target: pb.PartitionRange, run: PartitionRun) -> None:
    _fill_range(target, run)


_SEMANTICS = {
    stale_pb.STALENESS_SEMANTICS_UNSPECIFIED: staleness.Semantics.EXTENDED,
    stale_pb.STALENESS_SEMANTICS_EXTENDED: staleness.Semantics.EXTENDED,
    stale_pb.STALENESS_SEMANTICS_DAGSTER: staleness.Semantics.DAGSTER,
}


def staleness_options_from_proto(
    message: stale_pb.StalenessOptions, field: str = "options"
) -> staleness.StalenessOptions:
    semantics = _SEMANTICS.get(message.semantics)
    if semantics is None:
        raise ApiError(f"unknown staleness semantics {message.semantics}", f"{field}.semantics")
    if semantics is staleness.Semantics.DAGSTER and message.transitive:
        raise ApiError(
            "Dagster's staleness is not transitive: transitive needs the EXTENDED semantics",
            f"{field}.transitive",
        )
    return staleness.StalenessOptions(
        transitive=message.transitive,
        dagster_cutoff=message.dagster_cutoff,
        semantics=semantics,
    )


def fill_asset_staleness(target: stale_pb.AssetStaleness, summary: AssetSummary) -> None:
    target.asset_key = summary.asset_key
    target.fresh_count = summary.fresh_count
    target.stale_count = summary.stale_count
    target.missing_count = summary.missing_count
    target.in_progress_count = summary.in_progress_count
    for ranges, runs in (
        (target.stale_ranges, summary.stale_ranges),
        (target.missing_ranges, summary.missing_ranges),
        (target.in_progress_ranges, summary.in_progress_ranges),
    ):
        for run in runs:
            _fill_range(ranges.add(), run)


def fill_partition_staleness(
    target: stale_pb.PartitionStaleness,
    asset_key: str,
    partition_key: str | None,
    status: staleness.PartitionStatus | None,
) -> None:
    """`status` None: FRESH (the set-based path does not build statuses of fresh partitions)."""
    target.asset_key = asset_key
    if partition_key is not None:
        target.partition_key = partition_key
    if status is None:
        target.status = stale_pb.STALE_STATUS_FRESH
        return
    target.status = _STALE_STATUSES[status.status]
    for cause in status.causes:
        message = target.causes.add(kind=_CAUSE_KINDS[cause.kind], message=cause.message)
        if cause.upstream_asset is not None:
            message.upstream_asset_key = cause.upstream_asset
        if cause.upstream_partition is not None:
            message.upstream_partition_key = cause.upstream_partition
        if cause.upstream_time is not None:
            set_instant(message.upstream_time, cause.upstream_time)
        for hop_asset, hop_partition in cause.path:
            hop = message.path.add(asset_key=hop_asset)
            if hop_partition is not None:
                hop.partition_key = hop_partition


def fill_planned_run(
    target: stale_pb.PlannedRun,
    run: staleness.PlannedRun,
    definition: PartitionsDefinition | None,
    include_keys: bool,
) -> None:
    target.asset_key = run.asset_key
    target.reason = run.reason
    target.ready = run.ready
    target.waiting_for_runs.extend(run.waiting_for_runs)
    keys = [key for key in run.partition_keys if key is not None]
    if not keys:
        return
    start = end = None
    if isinstance(definition, TimeWindowPartitions):
        start = partitions.time_window_for_key(definition, keys[0])[0]
        end = partitions.time_window_for_key(definition, keys[-1])[1]
    _fill_range(target.range, PartitionRun(keys[0], keys[-1], len(keys), start, end))
    if include_keys:
        target.partition_keys.extend(keys)
