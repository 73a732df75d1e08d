"""Hypothesis strategies for fuzzing every RPC, built from the message descriptors.

Any request message is filled field by field: strings from pools of plausible values for their
field name (crons, zones, formats, wall times, keys, seeded namespaces and assets) mixed with
random text; integers at their boundaries and at random; timestamps from plausible to absurd;
nested messages and maps to a bounded depth; repeated fields with a few items. Services are
found from the server's descriptors, so RPCs added later are fuzzed too. Raw bodies (random
bytes, deep nesting, truncated valid messages) are drawn by `bodies`.

Shared by tests/api/test_fuzz.py (a few thousand calls) and bench/fuzz_soak.py (100,000).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import strategies as st

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb

SEEDED_NAMESPACE = "fuzz-seeded"
SEEDED_ASSETS = ("daily", "weekly", "hourly", "static", "dynamic", "multi", "plain")
NAMESPACES = (SEEDED_NAMESPACE, SEEDED_NAMESPACE, "fuzz-scratch", "")
CRONS = (
    "0 0 * * *",
    "0 0 * * 0",
    "0 * * * *",
    "0 0 1 * *",
    "*/15 * * * *",
    "30 2 * * 1-5",
    "0 0 L * *",
    "0 0 * * 1#2",
    "0 0 29 2 *",
    "0 0 31 4 *",
    "* * * * *",
    "60 * * * *",
    "0 0 * * 8",
    "@daily",
    "",
)
ZONES = ("UTC", "America/New_York", "Europe/London", "Asia/Kolkata", "Australia/Lord_Howe")
# "%Y-%Y" and "%H%H": strptime cannot read a directive given twice (once INTERNAL).
FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d-%H:%M",
    "%Y%m%d",
    "%Y-%m",
    "%d/%m/%Y %H",
    "%%",
    "%",
    "%Q",
    "%Y-%Y",
    "%H%H",
)
WALL_TIMES = (
    "2024-01-01T00:00:00",
    "2023-03-12T02:30:00",
    "1970-01-01T00:00:00",
    "0001-01-01T00:00:00",
    "9999-12-31T23:59:59",
    "2024-02-30T00:00:00",
    "2024-01-01T00:00:00+05:00",
)
KEYS = (
    "2024-01-01",
    "2024-01-07",
    "2024-02-29",
    "2023-02-29",
    "2024-01-01-00:00",
    "2024-03-10-02:00",
    "a",
    "b",
    "a|2024-01-01",
    "2024-01-01|a",
    "9999-12-31",
    "0001-01-01",
    "2301-01-01",
    "2024-01-01" + "x" * 5_000,  # quoted in errors: once past gRPC's metadata limit
)
# Page tokens made up or altered: unsigned JSON (a boolean or a huge offset once reached SQL
# and Python ints), a signature that does not match, not base64 at all.
FORGED_TOKENS = (
    "WyJhIix0cnVlXQ",  # ["a",true]
    "WzAsMTAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAsMSwwXQ",  # [0,10**25,1,0]
    "WzEwXQ.AAAAAAAAAAAAAAAAAAAAAA",
    "%%%",
)
DYNAMIC_NAMES = ("customers", "regions", "")
DIMENSION_NAMES = ("date", "region", "a", "")
INT32 = (-(2**31), -1, 0, 1, 2, 7, 100, 10_001, 2**31 - 1)
INT64 = (-(2**63), -1, 0, 1, 2**31, 2**53, 2**63 - 1)
SECONDS = (
    -62_135_596_800,  # 0001-01-01
    -62_135_596_801,
    0,
    1_704_067_200,  # 2024-01-01
    1_709_251_200,  # 2024-03-01
    253_402_300_799,  # 9999-12-31
    253_402_300_800,
    10_413_792_000,  # 2300-01-01
    10_413_705_600,  # 2299-12-31: the far end of the calendar
    -(2**63),
    2**63 - 1,
)

_POOLS: dict[str, Sequence[str]] = {
    "namespace": NAMESPACES,
    "asset_key": SEEDED_ASSETS,
    "upstream_asset_key": SEEDED_ASSETS,
    "upstream_asset_keys": SEEDED_ASSETS,
    "asset_keys": SEEDED_ASSETS,
    "downstream_asset_keys": SEEDED_ASSETS,
    "cron_schedule": CRONS,
    "timezone": ZONES,
    "fmt": FORMATS,
    "start": WALL_TIMES,
    "end": WALL_TIMES,
    "wall_time": WALL_TIMES,
    "partition_key": KEYS,
    "partition_keys": KEYS,
    "first_partition_key": KEYS,
    "last_partition_key": KEYS,
    "definition_name": DYNAMIC_NAMES,
    "page_token": FORGED_TOKENS,
    "name": DIMENSION_NAMES + DYNAMIC_NAMES,
}

_random_text = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec="utf-8"), max_size=300),
    st.sampled_from(["", " ", "\x00", "🙂", "a" * 257, "%" * 50, "\u202e", "..", "*"]),
)


def _string(name: str, plausible: bool = False) -> st.SearchStrategy[str]:
    pool = _POOLS.get(name)
    if pool is None:
        return st.text("abc-1", min_size=1, max_size=6) if plausible else _random_text
    if plausible:
        return st.sampled_from(pool)
    return st.one_of(st.sampled_from(pool), st.sampled_from(pool), _random_text)


def _integer(field: Any) -> st.SearchStrategy[int]:
    kind = field.type
    edges: tuple[int, ...]
    if kind in (
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_SFIXED64,
    ):
        low, high, edges = -(2**63), 2**63 - 1, INT64
    elif kind in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        low, high, edges = 0, 2**32 - 1, (0, 1, 2**32 - 1)
    elif kind in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        low, high, edges = 0, 2**64 - 1, (0, 1, 2**64 - 1)
    else:
        low, high, edges = -(2**31), 2**31 - 1, INT32
    return st.one_of(st.integers(-3, 12), st.sampled_from(edges), st.integers(low, high))


def _scalar(field: Any, plausible: bool = False) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(field.name, plausible)
    if plausible and kind in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_INT64):
        return st.integers(-3, 12)
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind == FieldDescriptor.TYPE_ENUM:
        values = [value.number for value in field.enum_type.values]
        return st.one_of(st.sampled_from(values), st.integers(-5, 50))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    return _integer(field)


def _fill_timestamp(draw: Callable[[Any], Any], message: Any) -> None:
    plausible = st.integers(1_600_000_000, 1_900_000_000)
    message.seconds = draw(st.one_of(plausible, plausible, st.sampled_from(SECONDS)))
    message.nanos = draw(st.one_of(st.just(0), st.sampled_from(INT32), st.integers(0, 999_999_999)))


def fill(
    draw: Callable[[Any], Any], message: Message, depth: int = 0, plausible: bool = False
) -> Message:
    """Set a random selection of `message`'s fields (recursively, to a bounded depth).

    `plausible`: strings only from the pools, small numbers, definitions from a valid set,
    so that more requests get past validation into the domain.
    """
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Timestamp":
        if plausible:
            message.seconds = draw(st.integers(1_700_000_000, 1_800_000_000))  # type: ignore[attr-defined]
        else:
            _fill_timestamp(draw, message)
        return message
    if plausible and descriptor.full_name == "partitiondeps.v1.PartitionsDefinition":
        message.CopyFrom(draw(st.sampled_from(DEFINITIONS)))
        return message
    for field in descriptor.fields:
        # Deep levels set fewer fields, so messages stay bounded.
        if not draw(st.booleans()) or (depth > 3 and draw(st.booleans())):
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= 6:
                continue
            target = getattr(message, field.name)
            assert field.message_type is not None
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for _ in range(draw(st.integers(0, 2))):
                    key = draw(_string("definition_name"))
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        fill(draw, target[key], depth + 1, plausible)
                    else:
                        target[key] = draw(_scalar(value_field, plausible))
            elif field.is_repeated:
                for _ in range(draw(st.integers(0, 3))):
                    fill(draw, target.add(), depth + 1, plausible)
            else:
                fill(draw, target, depth + 1, plausible)
                target.SetInParent()
        elif field.is_repeated:
            values = st.lists(_scalar(field, plausible), max_size=3 if plausible else 6)
            getattr(message, field.name).extend(draw(values))
        else:
            setattr(message, field.name, draw(_scalar(field, plausible)))
    return message


def _window(
    cron: str, start: str = "2024-01-01T00:00:00", fmt: str = "%Y-%m-%d", zone: str = "UTC"
) -> pb.PartitionsDefinition:
    return pb.PartitionsDefinition(
        time_window=pb.TimeWindowPartitions(cron_schedule=cron, start=start, timezone=zone, fmt=fmt)
    )


_STATIC = pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=["a", "b", "c"]))
DEFINITIONS = (
    _window("0 0 * * *"),
    _window("0 0 * * 0"),
    _window("0 * * * *", fmt="%Y-%m-%d-%H:%M"),
    _window("0 * * * *", fmt="%Y-%m-%d-%H:%M", zone="America/New_York"),
    _window("0 0 1 * *"),
    _window("*/15 * * * *", "2024-03-01T00:00:00", "%Y-%m-%d-%H:%M"),
    _STATIC,
    pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers")),
    pb.PartitionsDefinition(
        multi=pb.MultiPartitions(
            dimensions=[
                pb.Dimension(name="date", partitions=_window("0 0 * * *")),
                pb.Dimension(name="region", partitions=_STATIC),
            ]
        )
    ),
    pb.PartitionsDefinition(),
)


@dataclass(frozen=True)
class Rpc:
    path: str
    request_class: type[Message]
    client_streaming: bool
    server_streaming: bool


def rpcs(service_names: Sequence[str]) -> list[Rpc]:
    """Every method of the named services (their descriptors are in the default pool)."""
    pool = descriptor_pool.Default()
    found = []
    for name in service_names:
        service = pool.FindServiceByName(name)
        for method in service.methods:
            found.append(
                Rpc(
                    f"/{service.full_name}/{method.name}",
                    message_factory.GetMessageClass(method.input_type),
                    method.client_streaming,
                    method.server_streaming,
                )
            )
    return found


def _nested(depth: int) -> bytes:
    """Field 1 nested `depth` times: beyond protobuf's recursion limit for a large depth."""
    body = b""
    for _ in range(depth):
        body = b"\x0a" + _varint(len(body)) + body
    return body


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


@st.composite
def bodies(draw: Callable[[Any], Any], rpc: Rpc) -> list[bytes]:
    """Request bodies (several for a client stream): valid-shaped, random, or malformed."""
    count = draw(st.integers(0, 3)) if rpc.client_streaming else 1

    def one() -> bytes:
        choice = draw(st.integers(0, 9))
        if choice <= 6:
            plausible = choice <= 4
            message: bytes = fill(draw, rpc.request_class(), 0, plausible).SerializeToString()
            return message
        if choice == 7:
            return bytes(draw(st.binary(max_size=200)))
        if choice == 8:
            return _nested(draw(st.sampled_from([1, 50, 99, 101, 200, 5000])))
        valid: bytes = fill(draw, rpc.request_class()).SerializeToString()
        tail: bytes = draw(st.binary(max_size=8))
        return valid[: draw(st.integers(0, max(0, len(valid) - 1)))] + tail

    return [one() for _ in range(count)]


def call(channel: grpc.Channel, rpc: Rpc, payload: list[bytes], timeout: float = 30) -> None:
    """Send raw bodies; returns normally on OK, raises grpc.RpcError otherwise."""
    if rpc.client_streaming and not rpc.server_streaming:
        stream_unary: grpc.StreamUnaryMultiCallable[bytes, bytes] = channel.stream_unary(rpc.path)
        stream_unary(iter(payload), timeout=timeout)
    elif rpc.server_streaming:
        method: (
            grpc.StreamStreamMultiCallable[Any, bytes] | grpc.UnaryStreamMultiCallable[Any, bytes]
        ) = (
            channel.stream_stream(rpc.path)
            if rpc.client_streaming
            else channel.unary_stream(rpc.path)
        )
        request: Any = iter(payload) if rpc.client_streaming else payload[0]
        for _ in method(request, timeout=timeout):
            pass
    else:
        unary_unary: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(rpc.path)
        unary_unary(payload[0], timeout=timeout)


BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


def outcome(
    channel: grpc.Channel, rpc: Rpc, payload: list[bytes], timeout: float = 30
) -> grpc.StatusCode:
    try:
        call(channel, rpc, payload, timeout)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def seed_requests() -> tuple[defs_pb.ApplyAssetsRequest, defs_pb.AddDynamicPartitionsRequest]:
    """The seeded namespace: time windows, static, dynamic, multi, unpartitioned, dependencies."""

    def window(cron: str, fmt: str = "%Y-%m-%d") -> pb.PartitionsDefinition:
        return pb.PartitionsDefinition(
            time_window=pb.TimeWindowPartitions(
                cron_schedule=cron, start="2024-01-01T00:00:00", timezone="UTC", fmt=fmt
            )
        )

    static = pb.PartitionsDefinition(static=pb.StaticPartitions(partition_keys=["a", "b", "c"]))
    dynamic = pb.PartitionsDefinition(dynamic=pb.DynamicPartitions(name="customers"))
    multi = pb.PartitionsDefinition(
        multi=pb.MultiPartitions(
            dimensions=[
                pb.Dimension(name="date", partitions=window("0 0 * * *")),
                pb.Dimension(name="region", partitions=static),
            ]
        )
    )

    def asset(key: str, partitions: pb.PartitionsDefinition | None, *ups: str) -> defs_pb.Asset:
        message = defs_pb.Asset(asset_key=key)
        if partitions is not None:
            message.partitions_definition.CopyFrom(partitions)
        for upstream in ups:
            message.dependencies.add(upstream_asset_key=upstream)
        return message

    apply = defs_pb.ApplyAssetsRequest(
        namespace=SEEDED_NAMESPACE,
        assets=[
            asset("daily", window("0 0 * * *")),
            asset("weekly", window("0 0 * * 0"), "daily"),
            asset("hourly", window("0 * * * *", "%Y-%m-%d-%H:%M"), "daily"),
            asset("static", static),
            asset("dynamic", dynamic),
            asset("multi", multi, "daily"),
            asset("plain", None, "daily"),
        ],
    )
    dynamic_keys = defs_pb.AddDynamicPartitionsRequest(
        namespace=SEEDED_NAMESPACE, definition_name="customers", partition_keys=["a", "b"]
    )
    return apply, dynamic_keys


def seed_events() -> events_pb.ReportEventsRequest:
    return events_pb.ReportEventsRequest(
        namespace=SEEDED_NAMESPACE,
        events=[
            events_pb.Event(
                idempotency_key=f"seed-{day}",
                event_time=Timestamp(seconds=1_706_745_600),
                materialization=events_pb.Materialization(
                    asset_key="daily", partition_key=f"2024-01-{day:02d}", run_id="r"
                ),
            )
            for day in range(1, 29)
        ],
    )
