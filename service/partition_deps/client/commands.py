"""The command line client: `partition-deps apply|assets|events|upstream|downstream|staleness|plan`.

Each command is one or a few gRPC calls; `--output json` prints the answer in proto3 JSON (as
the HTTP listener does), `table` a few aligned columns. A refused call prints its status, reason,
field and message on stderr, and the program exits with a code scripts can test
(`EXIT_CODES`, also in `partition-deps --help`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import yaml
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    events_service_pb2_grpc,
    queries_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import events_service_pb2 as events_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as staleness_pb
from partition_deps.client.rpc_errors import failure_of

EXIT_CODES = """exit codes:
  0  done
  1  the call failed otherwise (INTERNAL, UNKNOWN...)
  2  usage: a bad flag, an input file that cannot be read or is not the message it should be
  3  refused as asked: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED,
     ALREADY_EXISTS, OUT_OF_RANGE
  4  not allowed: UNAUTHENTICATED, PERMISSION_DENIED
  5  try again: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED (the server is not reachable,
     too slow, or the namespace changed meanwhile)
"""
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_ALLOWED = 4
EXIT_RETRY = 5
_EXIT_BY_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: EXIT_REFUSED,
    grpc.StatusCode.NOT_FOUND: EXIT_REFUSED,
    grpc.StatusCode.FAILED_PRECONDITION: EXIT_REFUSED,
    grpc.StatusCode.RESOURCE_EXHAUSTED: EXIT_REFUSED,
    grpc.StatusCode.ALREADY_EXISTS: EXIT_REFUSED,
    grpc.StatusCode.OUT_OF_RANGE: EXIT_REFUSED,
    grpc.StatusCode.UNAUTHENTICATED: EXIT_NOT_ALLOWED,
    grpc.StatusCode.PERMISSION_DENIED: EXIT_NOT_ALLOWED,
    grpc.StatusCode.UNAVAILABLE: EXIT_RETRY,
    grpc.StatusCode.DEADLINE_EXCEEDED: EXIT_RETRY,
    grpc.StatusCode.ABORTED: EXIT_RETRY,
    grpc.StatusCode.CANCELLED: EXIT_RETRY,
}
# Events per ReportEvents call when reporting a file.
EVENTS_PER_BATCH = 1_000
# Pages asked for when a command lists everything.
PAGE_SIZE = 1_000
COMMANDS = (
    "namespaces",
    "apply",
    "assets",
    "events",
    "upstream",
    "downstream",
    "staleness",
    "plan",
)

M = TypeVar("M", bound=Message)


class UsageError(Exception):
    """Input the command cannot use (exit 2)."""


class Client:
    """The stubs over one channel, with the token and deadline every call carries."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.channel = _channel(args)
        self.metadata: tuple[tuple[str, str | bytes], ...] = (
            (("authorization", f"Bearer {args.token}"),) if args.token else ()
        )
        self.timeout: float = args.timeout
        self.definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(self.channel)
        self.events = events_service_pb2_grpc.EventsServiceStub(self.channel)
        self.queries = queries_service_pb2_grpc.QueriesServiceStub(self.channel)
        self.staleness = staleness_service_pb2_grpc.StalenessServiceStub(self.channel)

    def call(self, method: Callable[..., M], request: Message) -> M:
        return method(request, timeout=self.timeout, metadata=self.metadata)


def _read_optional(path: Path | None) -> bytes | None:
    try:
        return path.read_bytes() if path is not None else None
    except OSError as error:
        raise UsageError(f"{path}: {error.strerror}") from None


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return grpc.insecure_channel(args.addr)
    if (args.tls_cert is None) != (args.tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=_read_optional(args.tls_ca),
        private_key=_read_optional(args.tls_key),
        certificate_chain=_read_optional(args.tls_cert),
    )
    return grpc.secure_channel(args.addr, credentials)


def add_commands(commands: Any) -> None:
    """Adds the client's commands to the program's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    connection = common.add_argument_group("connection")
    connection.add_argument(
        "--addr",
        default=os.environ.get("PD_ADDR", "127.0.0.1:50051"),
        help="the server's host:port (env PD_ADDR, default 127.0.0.1:50051)",
    )
    connection.add_argument(
        "--token",
        default=os.environ.get("PD_TOKEN") or None,
        help="bearer token (env PD_TOKEN)",
    )
    connection.add_argument("--tls", action="store_true", help="TLS with the system's CAs")
    connection.add_argument("--tls-ca", type=Path, help="TLS, trusting this CA (PEM)")
    connection.add_argument("--tls-cert", type=Path, help="client certificate (PEM), for mTLS")
    connection.add_argument("--tls-key", type=Path, help="client private key (PEM), for mTLS")
    connection.add_argument(
        "--timeout", type=float, default=30.0, help="seconds each call may take (default 30)"
    )
    common.add_argument("--output", "-o", choices=("table", "json"), default="table")

    def command(name: str, help_text: str, parent: Any = commands) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=help_text, parents=[common], description=help_text
        )
        return parser

    def namespaced(name: str, help_text: str, parent: Any = commands) -> argparse.ArgumentParser:
        parser = command(name, help_text, parent)
        parser.add_argument(
            "--namespace",
            "-n",
            default=os.environ.get("PD_NAMESPACE") or None,
            required=not os.environ.get("PD_NAMESPACE"),
            help="the namespace (env PD_NAMESPACE)",
        )
        return parser

    command("namespaces", "list the namespaces (with tokens on: those the token grants)")
    apply = command("apply", "create or replace the assets of a YAML or JSON file")
    apply.add_argument(
        "file",
        type=Path,
        help="an ApplyAssetsRequest: namespace and assets (snake_case or camelCase fields)",
    )
    apply.add_argument("--namespace", "-n", help="instead of the file's namespace")
    apply.add_argument(
        "--replace-all", action="store_true", help="delete the namespace's assets not listed"
    )

    assets = commands.add_parser("assets", help="list or show assets").add_subparsers(
        dest="assets_command", required=True
    )
    namespaced("list", "list the assets of a namespace", assets)
    get = namespaced("get", "show one asset", assets)
    get.add_argument("asset_key")

    events = commands.add_parser("events", help="report events").add_subparsers(
        dest="events_command", required=True
    )
    report = namespaced("report", "report events, one JSON Event per line", events)
    report.add_argument("file", nargs="?", default="-", help="a file, or - for stdin (default)")

    for name, help_text in (
        ("upstream", "which partitions of each upstream asset the given partitions need"),
        ("downstream", "which partitions of each downstream asset use the given partitions"),
    ):
        query = namespaced(name, help_text)
        query.add_argument("asset_key")
        query.add_argument(
            "partition_keys", nargs="*", help="partition keys (none: an unpartitioned asset)"
        )
        query.add_argument("--as-of", help="the instant that counts as now (ISO 8601)")
        query.add_argument("--keys", action="store_true", help="list the keys, not only ranges")

    staleness = namespaced("staleness", "which partitions are stale or missing, and why")
    staleness.add_argument("asset_keys", nargs="*", help="only these assets (default: all)")
    staleness.add_argument("--as-of", help="the instant that counts as now (ISO 8601)")
    staleness.add_argument("--dagster", action="store_true", help="Dagster's rules exactly")
    staleness.add_argument("--transitive", action="store_true", help="upstream staleness too")
    staleness.add_argument(
        "--limit", type=int, default=100, help="partitions listed with causes (default 100)"
    )

    plan = namespaced("plan", "what should run now, in dependency order")
    plan.add_argument("asset_keys", nargs="*", help="only these assets (default: all)")
    plan.add_argument("--as-of", help="the instant that counts as now (ISO 8601)")
    plan.add_argument(
        "--catch-up", action="store_true", help="every partition, not only the latest window"
    )
    plan.add_argument("--limit", type=int, default=0, help="at most this many partitions")
    plan.add_argument("--dagster", action="store_true", help="from Dagster's staleness rules")


def run(args: argparse.Namespace) -> int:
    """Runs one client command; returns its exit code."""
    try:
        client = Client(args)
        try:
            answer = _COMMANDS[args.command](client, args)
        finally:
            client.channel.close()
    except UsageError as error:
        print(f"partition-deps {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as error:
        failure = failure_of(error)
        print(f"partition-deps {args.command}: {failure.describe()}", file=sys.stderr)
        return _EXIT_BY_CODE.get(failure.code, EXIT_FAILED)
    message, table = answer
    if args.output == "json":
        print(json_format.MessageToJson(message, indent=2))
    else:
        for row in _aligned(table):
            print(row)
    return EXIT_OK


Answer = tuple[Message, list[list[str]]]


def _aligned(rows: list[list[str]]) -> Iterator[str]:
    """Rows padded into columns; a row of one cell is printed as it is (a heading, a note) and
    starts a new block of columns."""
    block: list[list[str]] = []
    for row in [*rows, []]:
        if len(row) > 1:
            block.append(row)
            continue
        widths = (
            [max(len(cells[i]) for cells in block) for i in range(len(block[0]))] if block else []
        )
        for cells in block:
            yield "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()
        block = []
        if row:
            yield row[0]


def _parse(message: M, data: dict[str, Any], source: str) -> M:
    try:
        return json_format.ParseDict(data, message)
    except json_format.ParseError as error:
        raise UsageError(f"{source}: {error}") from None


def _timestamp(text: str | None) -> Timestamp | None:
    if text is None:
        return None
    value = Timestamp()
    try:
        value.FromJsonString(text if "T" in text else f"{text}T00:00:00Z")
    except ValueError as error:
        raise UsageError(f"--as-of {text!r}: {error}") from None
    return value


def _range(part: pb.PartitionRange) -> str:
    if part.first_partition_key == part.last_partition_key:
        return part.first_partition_key
    return f"{part.first_partition_key}..{part.last_partition_key} ({part.count})"


def _ranges(parts: Iterable[pb.PartitionRange]) -> str:
    return ", ".join(_range(part) for part in parts) or "-"


def _options(args: argparse.Namespace) -> staleness_pb.StalenessOptions:
    return staleness_pb.StalenessOptions(
        transitive=getattr(args, "transitive", False),
        semantics=staleness_pb.STALENESS_SEMANTICS_DAGSTER
        if args.dagster
        else staleness_pb.STALENESS_SEMANTICS_UNSPECIFIED,
    )


# -- the commands ---------------------------------------------------------------------------


def _namespaces(client: Client, args: argparse.Namespace) -> Answer:
    listed = defs_pb.ListNamespacesResponse()
    token = ""
    while True:
        page = client.call(
            client.definitions.ListNamespaces,
            defs_pb.ListNamespacesRequest(page_size=PAGE_SIZE, page_token=token),
        )
        listed.namespaces.extend(page.namespaces)
        token = page.next_page_token
        if not token:
            break
    rows = [["NAMESPACE", "ASSETS", "GENERATION"]]
    rows.extend([n.name, str(n.asset_count), str(n.generation)] for n in listed.namespaces)
    return listed, rows


def _apply(client: Client, args: argparse.Namespace) -> Answer:
    try:
        data = yaml.safe_load(args.file.read_text())
    except OSError as error:
        raise UsageError(f"{args.file}: {error.strerror}") from None
    except yaml.YAMLError as error:  # JSON is YAML too
        raise UsageError(f"{args.file}: not YAML or JSON: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{args.file}: expected a mapping with namespace and assets")
    request = _parse(defs_pb.ApplyAssetsRequest(), data, str(args.file))
    if args.namespace:
        request.namespace = args.namespace
    request.replace_all = request.replace_all or args.replace_all
    answer = client.call(client.definitions.ApplyAssets, request)
    rows = [[f"namespace {request.namespace}: generation {answer.generation}"]]
    rows.extend([asset.asset_key, "applied"] for asset in answer.assets)
    return answer, rows


def _asset_rows(assets: Iterable[defs_pb.Asset]) -> list[list[str]]:
    rows = [["ASSET", "PARTITIONS", "UPSTREAM"]]
    for asset in assets:
        kind: str = asset.partitions_definition.WhichOneof("kind") or "unpartitioned"
        if kind == "time_window":
            kind = f"time_window {asset.partitions_definition.time_window.cron_schedule!r}"
        upstream = ", ".join(d.upstream_asset_key for d in asset.dependencies) or "-"
        rows.append([asset.asset_key, kind, upstream])
    return rows


def _assets(client: Client, args: argparse.Namespace) -> Answer:
    if args.assets_command == "get":
        asset = client.call(
            client.definitions.GetAsset,
            defs_pb.GetAssetRequest(namespace=args.namespace, asset_key=args.asset_key),
        )
        return asset, _asset_rows([asset.asset])
    listed = defs_pb.ListAssetsResponse()
    token = ""
    while True:
        page = client.call(
            client.definitions.ListAssets,
            defs_pb.ListAssetsRequest(
                namespace=args.namespace, page_size=PAGE_SIZE, page_token=token
            ),
        )
        listed.assets.extend(page.assets)
        listed.generation = page.generation
        token = page.next_page_token
        if not token:
            return listed, _asset_rows(listed.assets)


def _event_lines(source: str) -> Iterator[tuple[str, str]]:
    """(where, line) of every non-blank line of a file or stdin."""
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        raise UsageError(f"{source}: {error.strerror}") from None
    with stream:
        for number, line in enumerate(stream, 1):
            if line.strip():
                yield f"{'stdin' if source == '-' else source}:{number}", line


def _events(client: Client, args: argparse.Namespace) -> Answer:
    events: list[events_pb.Event] = []
    for where, line in _event_lines(args.file):
        try:
            data = json.loads(line)
        except ValueError as error:
            raise UsageError(f"{where}: not JSON: {error}") from None
        events.append(_parse(events_pb.Event(), data, where))
    total = events_pb.ReportEventsResponse()
    # Batches in order, each committed on its own: a failure names how far it got.
    for start in range(0, len(events), EVENTS_PER_BATCH):
        batch = events[start : start + EVENTS_PER_BATCH]
        try:
            answer = client.call(
                client.events.ReportEvents,
                events_pb.ReportEventsRequest(namespace=args.namespace, events=batch),
            )
        except grpc.RpcError:
            if start:
                print(f"events before line {start + 1} were reported", file=sys.stderr)
            raise
        total.stored_count += answer.stored_count
        total.duplicate_count += answer.duplicate_count
    rows = [[f"stored {total.stored_count}, duplicates {total.duplicate_count}"]]
    return total, rows


def _selection(keys: list[str]) -> pb.PartitionSelection:
    return pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=keys))


def _paging(args: argparse.Namespace) -> queries_pb.KeyPaging:
    return queries_pb.KeyPaging(include_keys=args.keys, page_size=PAGE_SIZE if args.keys else 0)


def _mapping(mapping: pb.PartitionMapping) -> str:
    return mapping.WhichOneof("kind") or "-"


def _upstream(client: Client, args: argparse.Namespace) -> Answer:
    answer = client.call(
        client.queries.GetUpstreamPartitions,
        queries_pb.GetUpstreamPartitionsRequest(
            namespace=args.namespace,
            asset_key=args.asset_key,
            selection=_selection(args.partition_keys),
            as_of=_timestamp(args.as_of),
            key_paging=_paging(args),
        ),
    )
    rows = [["UPSTREAM", "MAPPING", "COUNT", "PARTITIONS", "NONEXISTENT"]]
    for dependency in answer.dependencies:
        needed = "all" if dependency.whole_asset else _ranges(dependency.partitions.ranges)
        rows.append(
            [
                dependency.upstream_asset_key,
                _mapping(dependency.partition_mapping),
                str(dependency.partitions.count),
                needed,
                _ranges(dependency.required_but_nonexistent.ranges),
            ]
        )
        if args.keys:
            rows.append([f"  keys: {' '.join(dependency.partitions.partition_keys)}"])
    return answer, rows


def _downstream(client: Client, args: argparse.Namespace) -> Answer:
    answer = client.call(
        client.queries.GetDownstreamPartitions,
        queries_pb.GetDownstreamPartitionsRequest(
            namespace=args.namespace,
            asset_key=args.asset_key,
            selection=_selection(args.partition_keys),
            as_of=_timestamp(args.as_of),
            key_paging=_paging(args),
        ),
    )
    rows = [["DOWNSTREAM", "MAPPING", "COUNT", "PARTITIONS"]]
    for dependent in answer.dependents:
        used = "all" if dependent.whole_asset else _ranges(dependent.partitions.ranges)
        rows.append(
            [
                dependent.downstream_asset_key,
                _mapping(dependent.partition_mapping),
                str(dependent.partitions.count),
                used,
            ]
        )
        if args.keys:
            rows.append([f"  keys: {' '.join(dependent.partitions.partition_keys)}"])
    return answer, rows


_STATUS = {
    staleness_pb.STALE_STATUS_FRESH: "FRESH",
    staleness_pb.STALE_STATUS_STALE: "STALE",
    staleness_pb.STALE_STATUS_MISSING: "MISSING",
}


def _staleness(client: Client, args: argparse.Namespace) -> Answer:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    answer = client.call(
        client.staleness.GetStaleness,
        staleness_pb.GetStalenessRequest(
            namespace=args.namespace,
            asset_keys=args.asset_keys,
            as_of=_timestamp(args.as_of),
            options=_options(args),
            page_size=args.limit,
        ),
    )
    rows = [["ASSET", "FRESH", "STALE", "MISSING", "STALE RANGES", "MISSING RANGES", "IN PROGRESS"]]
    for asset in answer.assets:
        rows.append(
            [
                asset.asset_key,
                str(asset.fresh_count),
                str(asset.stale_count),
                str(asset.missing_count),
                _ranges(asset.stale_ranges),
                _ranges(asset.missing_ranges),
                _ranges(asset.in_progress_ranges),
            ]
        )
    stale = [p for p in answer.partitions if p.status == staleness_pb.STALE_STATUS_STALE]
    if stale:
        rows.append([""])
        rows.append(["ASSET", "PARTITION", "STATUS", "CAUSE"])
    for partition in stale:
        for cause in partition.causes:
            rows.append([partition.asset_key, partition.partition_key, "STALE", cause.message])
    if answer.next_page_token:
        rows.append([f"(first {args.limit} stale or missing partitions; --limit for more)"])
    return answer, rows


def _plan(client: Client, args: argparse.Namespace) -> Answer:
    answer = client.call(
        client.staleness.PlanRuns,
        staleness_pb.PlanRunsRequest(
            namespace=args.namespace,
            asset_keys=args.asset_keys,
            as_of=_timestamp(args.as_of),
            catch_up=args.catch_up,
            limit=args.limit,
            options=_options(args),
            page_size=PAGE_SIZE,
        ),
    )
    rows = [["ASSET", "PARTITIONS", "READY", "REASON"]]
    for planned in answer.runs:
        partitions = _range(planned.range) if planned.HasField("range") else "-"
        rows.append(
            [planned.asset_key, partitions, "yes" if planned.ready else "no", planned.reason]
        )
    rows.append([f"{answer.total_runs} runs, {answer.total_partitions} partitions"])
    if answer.next_page_token:
        rows.append([f"(the first {len(answer.runs)} runs; --output json pages the same way)"])
    return answer, rows


_COMMANDS: dict[str, Callable[[Client, argparse.Namespace], Answer]] = {
    "namespaces": _namespaces,
    "apply": _apply,
    "assets": _assets,
    "events": _events,
    "upstream": _upstream,
    "downstream": _downstream,
    "staleness": _staleness,
    "plan": _plan,
}
