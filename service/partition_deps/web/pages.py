"""The read-only status page: a namespace's asset graph and each asset's health over time.

Rendered on the server as HTML with inline SVG and CSS (nothing loaded from elsewhere, no
JavaScript): hovering a range of a health bar names it, clicking a stale range lists its
partitions' causes, and a form asks which upstream partitions a partition needs. Every value
comes from the service's own RPCs over the listener's channel, with the caller's bearer token
(the `Authorization` header, or the cookie the login form sets), so the page shows exactly
what the API answers to that token.

A namespace page also lists its latest automation ticks; a tick's page shows what it
requested and, per asset, the evaluation tree of its automation condition (each node with the
partitions it was true for) in `<details>` that open without script.

Routes: `/` (open a namespace), `/ui/namespace?ns=`, `/ui/asset?ns=&key=` (`&stale=<first key>`
opens a stale range, `&needs=<key>` asks for its upstream), `/ui/tick?ns=&tick=`, `/ui/login`.
Each but the tick's takes `as_of` (an RFC 3339 instant; unset: now).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from http import HTTPStatus
from http.cookies import SimpleCookie
from typing import TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from partition_deps.api.gen.partitiondeps.v1 import automation_service_pb2 as automation_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    automation_service_pb2_grpc,
    definitions_service_pb2_grpc,
    queries_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as staleness_pb
from partition_deps.client.rpc_errors import RpcFailure, failure_of
from partition_deps.web.connect import HTTP_STATUS, Answer
from partition_deps.web.drawing import COLOURS, Node, Segment, asset_graph, health_bar

TOKEN_COOKIE = "pd_token"
HTML = "text/html; charset=utf-8"
# Partitions listed with their causes when a stale range is opened.
CAUSES_SHOWN = 20
# Ranges listed under an asset's bar, per status (and per node of an evaluation tree).
RANGES_LISTED = 50
# Automation ticks a namespace page lists, newest first.
TICKS_LISTED = 10
# Run requests (and requested keys) a tick's page shows.
RUNS_SHOWN = 100
PAGE_SIZE = 10_000
# A namespace's summaries take a fraction of a second (the rules read stored partitions only);
# a namespace whose every partition is stored takes longer.
CALL_SECONDS = 120

M = TypeVar("M", bound=Message)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem 2rem; color: #111827; }
a { color: #1d4ed8; }
header { display: flex; gap: 1.5rem; align-items: baseline; flex-wrap: wrap; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1.05rem; margin-top: 1.6rem; }
table { border-collapse: collapse; }
td, th { padding: 0.3rem 0.6rem; text-align: left; vertical-align: middle; }
tr + tr td { border-top: 1px solid #e5e7eb; }
.legend span { display: inline-block; width: 0.9rem; height: 0.9rem; margin: 0 0.3rem 0 0.9rem;
  vertical-align: -0.15rem; border-radius: 2px; }
.error { background: #fef2f2; border: 1px solid #fca5a5; padding: 0.6rem 0.9rem; }
.causes li { margin: 0.2rem 0; }
.selected { background: #fff7e6; }
code { font-size: 0.92em; }
details.evaluation { margin: 0.4rem 0; }
details.evaluation summary { cursor: pointer; }
ul.tree { margin: 0.2rem 0; }
.tree .label { font-family: monospace; }
td.counts { white-space: nowrap; }
.axis { display: flex; justify-content: space-between; font-size: 0.8rem; color: #6b7280; }
"""


class PageError(Exception):
    """A request the page cannot answer, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Request:
    path: str
    query: dict[str, str]
    token: str | None

    def get(self, name: str) -> str:
        return self.query.get(name, "")

    def as_of(self) -> Timestamp | None:
        text = self.get("as_of")
        if not text:
            return None
        value = Timestamp()
        try:
            value.FromJsonString(text)
        except ValueError:
            raise PageError(
                HTTPStatus.BAD_REQUEST, f"as_of {text!r} is not an RFC 3339 instant"
            ) from None
        return value


def parse_request(target: str, headers: dict[str, str]) -> Request:
    """The path, query and bearer token of a GET (header first, else the login cookie)."""
    parts = urlsplit(target)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    token = None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    elif "cookie" in headers:
        cookie = SimpleCookie(headers["cookie"]).get(TOKEN_COOKIE)
        token = cookie.value if cookie is not None and cookie.value else None
    return Request(parts.path, query, token)


def signed_in(form: bytes) -> Answer:
    """Back to the start, with a cookie that keeps the token a login form posted."""
    token = parse_qs(form.decode(errors="replace")).get("token", [""])[0].strip()
    cookie = SimpleCookie()
    cookie[TOKEN_COOKIE] = token
    cookie[TOKEN_COOKIE].update({"path": "/", "httponly": "true", "samesite": "Strict"})
    return Answer(
        HTTPStatus.SEE_OTHER,
        "text/plain",
        b"signed in\n",
        (("Location", "/"), ("Set-Cookie", cookie[TOKEN_COOKIE].OutputString())),
    )


class _Calls:
    """The service's stubs over the listener's channel, with the caller's token."""

    def __init__(self, channel: grpc.Channel, token: str | None) -> None:
        self._metadata: tuple[tuple[str, str | bytes], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()
        )
        self.definitions = definitions_service_pb2_grpc.DefinitionsServiceStub(channel)
        self.queries = queries_service_pb2_grpc.QueriesServiceStub(channel)
        self.staleness = staleness_service_pb2_grpc.StalenessServiceStub(channel)
        self.automation = automation_service_pb2_grpc.AutomationServiceStub(channel)

    def __call__(self, method: Callable[..., M], request: Message) -> M:
        return method(request, timeout=CALL_SECONDS, metadata=self._metadata)


def _url(path: str, **query: str) -> str:
    given = {name: value for name, value in query.items() if value}
    return f"{path}?{urlencode(given)}" if given else path


def _page(title: str, body: str, as_of: str = "") -> str:
    when = f"as of {escape(as_of)}" if as_of else "as of now"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · partition-deps</title><style>{STYLE}</style></head><body>"
        f'<header><h1><a href="/">partition-deps</a> · {escape(title)}</h1>'
        f"<span>{when}</span></header>{body}</body></html>"
    )


def _legend() -> str:
    return (
        '<p class="legend">'
        + "".join(
            f'<span style="background:{colour}"></span>{status.replace("_", " ")}'
            for status, colour in COLOURS.items()
        )
        + "</p>"
    )


def _failure_page(failure: RpcFailure) -> Answer:
    if failure.code == grpc.StatusCode.UNAUTHENTICATED:
        return _login_page(HTTPStatus.UNAUTHORIZED, failure.message)
    body = f'<p class="error">{escape(failure.describe())}</p><p><a href="/">Namespaces</a></p>'
    return Answer(HTTP_STATUS.get(failure.code, 500), HTML, _page("error", body).encode())


def _login_page(status: int, why: str) -> Answer:
    body = (
        f'<p class="error">{escape(why)}</p>'
        '<form method="post" action="/ui/login"><label>Bearer token '
        '<input type="password" name="token" autocomplete="off"></label> '
        '<button type="submit">Sign in</button></form>'
    )
    return Answer(status, HTML, _page("sign in", body).encode())


# -- what the pages gather --------------------------------------------------------------------


@dataclass(frozen=True)
class _Health:
    """One asset's summary and the ranges of its partitions, placed on its own axis: epoch
    seconds when its partitions are time windows (`timed`), else key indexes."""

    summary: staleness_pb.AssetStaleness
    segments: list[Segment]
    total: int
    timed: bool = False
    # The key of its last partition ("" when unpartitioned or none exists yet).
    last_key: str = ""
    # Why the asset's health could not be read ("" when it was).
    error: str = ""

    def extent(self) -> tuple[float, float]:
        return (
            min((s.start for s in self.segments), default=0.0),
            max((s.end for s in self.segments), default=1.0),
        )

    def on_axis(self, low: float, high: float) -> list[Segment]:
        """The segments placed on [low, high) as 0..1."""
        span = (high - low) or 1.0
        return [
            dataclasses.replace(s, start=(s.start - low) / span, end=(s.end - low) / span)
            for s in self.segments
        ]

    def bar(self, title: str, axis: tuple[float, float] | None = None) -> str:
        return health_bar(self.on_axis(*(axis or self.extent())), title)

    @property
    def worst(self) -> str:
        # Unknown health is drawn grey, as missing.
        return "missing" if self.error else _worst(self.summary)

    def counts(self) -> str:
        if self.error:
            return f'<span class="error">{escape(self.error)}</span>'
        summary = self.summary
        return (
            f"{self.total:,} partition{'s' if self.total != 1 else ''}: "
            f"{summary.fresh_count:,} fresh, "
            f"{summary.stale_count:,} stale, {summary.missing_count:,} missing"
            + (f"; {summary.in_progress_count:,} in progress" if summary.in_progress_count else "")
        )


def _worst(summary: staleness_pb.AssetStaleness) -> str:
    if summary.stale_count:
        return "stale"
    return "missing" if summary.missing_count else "fresh"


def _seconds(value: Timestamp) -> float:
    return value.seconds + value.nanos / 1e9


def _time_position(
    ranges: Sequence[pb.PartitionRange],
) -> Callable[[pb.PartitionRange], tuple[float, float]] | None:
    """Places a range at its window (epoch seconds), when every range has one."""
    if not ranges or not all(r.HasField("start_time") for r in ranges):
        return None

    def place(part: pb.PartitionRange) -> tuple[float, float]:
        return _seconds(part.start_time), _seconds(part.end_time)

    return place


def _key_position(
    calls: _Calls, source: queries_pb.DefinitionSource, as_of: Timestamp | None
) -> Callable[[pb.PartitionRange], tuple[float, float]]:
    """Places a range at its keys' indexes in the definition's order (no windows to go by)."""
    index: dict[str, int] = {}
    token = ""
    while True:
        page = calls(
            calls.queries.ListPartitions,
            queries_pb.ListPartitionsRequest(
                source=source, as_of=as_of, page_size=PAGE_SIZE, page_token=token
            ),
        )
        for key in page.partition_keys:
            index[key] = len(index)
        token = page.next_page_token
        if not token:
            break

    def place(part: pb.PartitionRange) -> tuple[float, float]:
        return index[part.first_partition_key], index[part.last_partition_key] + 1

    return place


def _instant(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _range_text(part: pb.PartitionRange) -> str:
    if part.first_partition_key == part.last_partition_key:
        return f"{part.first_partition_key}"
    return f"{part.first_partition_key} .. {part.last_partition_key} ({part.count:,})"


@dataclass(frozen=True)
class _Asked:
    """A namespace as of an instant (None: now), as one page asks the service about it."""

    calls: _Calls
    namespace: str
    as_of: Timestamp | None


def _summaries(asked: _Asked, asset_keys: Sequence[str]) -> dict[str, staleness_pb.AssetStaleness]:
    """The staleness summaries of the assets (of the whole namespace when none are given),
    without their partitions: one call."""
    answer = asked.calls(
        asked.calls.staleness.GetStaleness,
        staleness_pb.GetStalenessRequest(
            namespace=asked.namespace,
            asset_keys=asset_keys,
            as_of=asked.as_of,
            summary_only=True,
        ),
    )
    return {summary.asset_key: summary for summary in answer.assets}


def _health(
    asked: _Asked,
    asset: defs_pb.Asset,
    summary: staleness_pb.AssetStaleness,
    stale_link: Callable[[str], str],
) -> _Health:
    if not asset.HasField("partitions_definition"):
        status = _worst(summary)
        whole = [Segment(status, 0, 1, f"{status} (unpartitioned)")]
        if summary.in_progress_count:
            whole.append(Segment("in_progress", 0, 1, "in progress"))
        return _Health(summary, whole, 1)
    calls, as_of = asked.calls, asked.as_of
    source = queries_pb.DefinitionSource(
        asset=queries_pb.AssetReference(namespace=asked.namespace, asset_key=asset.asset_key)
    )
    listed = calls(
        calls.queries.ListPartitions,
        queries_pb.ListPartitionsRequest(source=source, as_of=as_of, page_size=1),
    )
    timed = _time_position(listed.ranges)
    place = timed or _key_position(calls, source, as_of)
    segments = []
    for status, ranges in (("missing", summary.missing_ranges), ("stale", summary.stale_ranges)):
        for part in ranges:
            start, end = place(part)
            label = f"{status}: {_range_text(part)}"
            link = ""
            if status == "stale":
                label += " (click for the causes)"
                link = stale_link(part.first_partition_key)
            segments.append(Segment(status, start, end, label, link))
    segments.sort(key=lambda segment: segment.start)
    running = []
    for part in summary.in_progress_ranges:
        start, end = place(part)
        running.append(Segment("in_progress", start, end, f"in progress: {_range_text(part)}"))
    fresh = []
    for part in listed.ranges:
        start, end = place(part)
        for gap_start, gap_end in _gaps(start, end, segments):
            when = f"{_instant(gap_start)} .. {_instant(gap_end)}" if timed else "by key order"
            fresh.append(Segment("fresh", gap_start, gap_end, f"fresh: {when}"))
    segments.extend(fresh)
    segments.extend(running)
    last_key = listed.ranges[-1].last_partition_key if listed.ranges else ""
    return _Health(summary, segments, listed.total_size, timed is not None, last_key=last_key)


def _gaps(start: float, end: float, taken: Sequence[Segment]) -> Iterator[tuple[float, float]]:
    """The parts of [start, end) outside every segment of `taken` (sorted by start)."""
    at = start
    for segment in taken:
        if segment.end <= at or segment.start >= end:
            continue
        if segment.start > at:
            yield at, segment.start
        at = max(at, segment.end)
    if at < end:
        yield at, end


def _assets(calls: _Calls, namespace: str) -> list[defs_pb.Asset]:
    assets: list[defs_pb.Asset] = []
    token = ""
    while True:
        page = calls(
            calls.definitions.ListAssets,
            defs_pb.ListAssetsRequest(namespace=namespace, page_size=PAGE_SIZE, page_token=token),
        )
        assets.extend(page.assets)
        token = page.next_page_token
        if not token:
            return assets


def _mapping_name(mapping: pb.PartitionMapping) -> str:
    return mapping.WhichOneof("kind") or "inferred"


def _mappings_in_force(asked: _Asked, asset: defs_pb.Asset, last_key: str) -> dict[str, str]:
    """The name of each dependency's mapping: the registered one, else the one the service
    infers for the two definitions, read from the upstream of one partition (the last)."""
    names = {d.upstream_asset_key: _mapping_name(d.partition_mapping) for d in asset.dependencies}
    inferred = [
        d.upstream_asset_key for d in asset.dependencies if not d.HasField("partition_mapping")
    ]
    partitioned = asset.HasField("partitions_definition")
    if not inferred or (partitioned and not last_key):
        return names
    request = queries_pb.GetUpstreamPartitionsRequest(
        namespace=asked.namespace,
        asset_key=asset.asset_key,
        upstream_asset_keys=inferred,
        as_of=asked.as_of,
    )
    if partitioned:
        request.selection.keys.partition_keys.append(last_key)
    try:
        answer = asked.calls(asked.calls.queries.GetUpstreamPartitions, request)
    except grpc.RpcError:  # the names stay "inferred"
        return names
    for dependency in answer.dependencies:
        kind = dependency.partition_mapping.WhichOneof("kind")
        if kind:
            names[dependency.upstream_asset_key] = f"{kind} (inferred)"
    return names


# -- the pages ---------------------------------------------------------------------------------


class StatusPages:
    """Answers GETs of the status page through `channel`."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._channel = channel

    def answer(self, request: Request) -> Answer:
        routes: dict[str, Callable[[Request], Answer]] = {
            "/": self._home,
            "/ui/namespace": self._namespace,
            "/ui/asset": self._asset,
            "/ui/tick": self._tick,
            "/ui/login": self._login,
        }
        route = routes.get(request.path)
        if route is None:
            return Answer(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
        try:
            return route(request)
        except PageError as error:
            body = f'<p class="error">{escape(error.message)}</p>'
            return Answer(error.status, HTML, _page("error", body).encode())
        except grpc.RpcError as error:
            return _failure_page(failure_of(error))

    def _login(self, request: Request) -> Answer:
        return _login_page(HTTPStatus.OK, "The service asks for a bearer token.")

    def _home(self, request: Request) -> Answer:
        calls = _Calls(self._channel, request.token)
        rows: list[str] = []
        token = ""
        while True:
            page = calls(
                calls.definitions.ListNamespaces,
                defs_pb.ListNamespacesRequest(page_size=PAGE_SIZE, page_token=token),
            )
            rows.extend(
                f'<tr><td><a href="{escape(_url("/ui/namespace", ns=n.name))}">'
                f"{escape(n.name)}</a></td><td>{n.asset_count:,} assets</td>"
                f"<td>generation {n.generation:,}</td></tr>"
                for n in page.namespaces
            )
            token = page.next_page_token
            if not token:
                break
        listed = (
            f'<table class="namespaces">{"".join(rows)}</table>' if rows else "<p>None yet.</p>"
        )
        body = (
            f"<h2>Namespaces</h2>{listed}"
            "<h2>Open a namespace</h2>"
            '<form method="get" action="/ui/namespace">'
            '<label>Namespace <input name="ns" required></label> '
            '<label>as of <input name="as_of" placeholder="2024-01-20T00:00:00Z"></label> '
            '<button type="submit">Show</button></form>'
        )
        return Answer(HTTPStatus.OK, HTML, _page("namespaces", body).encode())

    def _namespace(self, request: Request) -> Answer:
        namespace = request.get("ns")
        if not namespace:
            raise PageError(HTTPStatus.BAD_REQUEST, "ns (the namespace) is missing")
        as_of, as_of_text = request.as_of(), request.get("as_of")
        calls = _Calls(self._channel, request.token)
        assets = _assets(calls, namespace)

        def link(asset_key: str, **more: str) -> str:
            return _url("/ui/asset", ns=namespace, key=asset_key, as_of=as_of_text, **more)

        # An asset whose health cannot be read says why in its row; the rest still shows.
        unread = "added while the page was drawn"
        asked = _Asked(calls, namespace, as_of)
        try:
            summaries = _summaries(asked, [])
        except grpc.RpcError as error:
            summaries, unread = {}, failure_of(error).describe()

        def health(asset: defs_pb.Asset) -> _Health:
            summary = summaries.get(asset.asset_key)
            if summary is None:
                return _Health(staleness_pb.AssetStaleness(), [], 0, error=unread)
            try:
                return _health(
                    asked,
                    asset,
                    summary,
                    lambda first: link(asset.asset_key, stale=first) + f"#stale-{first}",
                )
            except grpc.RpcError as error:
                return _Health(summary, [], 0, error=failure_of(error).describe())

        healths = [health(asset) for asset in assets]
        # Time-window assets share one time axis, so a column of the table is one instant.
        timed = [state.extent() for state in healths if state.timed]
        axis = (min(e[0] for e in timed), max(e[1] for e in timed)) if timed else None
        axis_row = (
            f'<tr><td></td><td><div class="axis"><span>{_instant(axis[0])}</span>'
            f"<span>{_instant(axis[1])}</span></div></td><td></td></tr>"
            if axis
            else ""
        )
        nodes = [
            Node(
                asset.asset_key,
                _mappings_in_force(asked, asset, state.last_key),
                state.worst,
                link(asset.asset_key),
            )
            for asset, state in zip(assets, healths, strict=True)
        ]
        rows = "".join(
            f'<tr data-asset="{escape(asset.asset_key)}">'
            f'<td><a href="{escape(link(asset.asset_key))}">{escape(asset.asset_key)}</a></td>'
            f"<td>{state.bar(asset.asset_key, axis if state.timed else None)}</td>"
            f'<td class="counts">{state.counts()}</td></tr>'
            for asset, state in zip(assets, healths, strict=True)
        )
        body = (
            f"<h2>Assets of {escape(namespace)}</h2>{asset_graph(nodes)}"
            f"<h2>Health over time</h2>{_legend()}<table>{axis_row}{rows}</table>"
            f"{_latest_ticks(calls, namespace)}"
        )
        return Answer(HTTPStatus.OK, HTML, _page(namespace, body, as_of_text).encode())

    def _tick(self, request: Request) -> Answer:
        namespace, tick_id = request.get("ns"), request.get("tick")
        if not namespace or not tick_id:
            raise PageError(
                HTTPStatus.BAD_REQUEST, "ns and tick (namespace and tick id) are needed"
            )
        calls = _Calls(self._channel, request.token)
        answer = calls(
            calls.automation.GetAutomationTick,
            automation_pb.GetAutomationTickRequest(
                namespace=namespace, tick_id=tick_id, page_size=RUNS_SHOWN
            ),
        )
        tick = answer.tick
        back = _url("/ui/namespace", ns=namespace)
        requested = {entry.asset_key for entry in tick.requested}
        parts = [
            f'<p><a href="{escape(back)}">{escape(namespace)}</a> · tick {tick.sequence:,}, '
            f"evaluated at {_instant(_seconds(tick.evaluation_time))}, generation "
            f"{tick.generation:,}, events up to {tick.event_position:,}</p>",
            _requested_table(tick),
            _run_requests(tick),
            "<h2>Why: each asset's condition</h2>",
            *(
                _evaluation(evaluation, evaluation.asset_key in requested)
                for evaluation in answer.evaluations
            ),
        ]
        # The tick's evaluation time is its "now".
        evaluated = tick.evaluation_time.ToJsonString()
        return Answer(
            HTTPStatus.OK, HTML, _page(f"tick {tick_id}", "".join(parts), evaluated).encode()
        )

    def _asset(self, request: Request) -> Answer:
        namespace, asset_key = request.get("ns"), request.get("key")
        if not namespace or not asset_key:
            raise PageError(HTTPStatus.BAD_REQUEST, "ns and key (namespace and asset) are needed")
        as_of, as_of_text = request.as_of(), request.get("as_of")
        calls = _Calls(self._channel, request.token)
        asset = calls(
            calls.definitions.GetAsset,
            defs_pb.GetAssetRequest(namespace=namespace, asset_key=asset_key),
        ).asset

        def link(**more: str) -> str:
            return _url("/ui/asset", ns=namespace, key=asset_key, as_of=as_of_text, **more)

        asked = _Asked(calls, namespace, as_of)
        state = _health(
            asked,
            asset,
            _summaries(asked, [asset_key])[asset_key],
            lambda first: link(stale=first) + f"#stale-{first}",
        )
        back = _url("/ui/namespace", ns=namespace, as_of=as_of_text)
        upstream = ", ".join(
            f"{escape(upstream_key)} ({escape(mapping)})"
            for upstream_key, mapping in _mappings_in_force(asked, asset, state.last_key).items()
        )
        parts = [
            f'<p><a href="{escape(back)}">{escape(namespace)}</a> · '
            f"reads: {upstream or 'nothing'}</p>",
            _legend(),
            state.bar(asset_key),
            f'<p class="counts">{state.counts()}</p>',
            self._stale_ranges(calls, request, state.summary, link),
            _ranges_list("Missing", state.summary.missing_ranges),
            self._needs(calls, request, asset, link),
        ]
        return Answer(HTTPStatus.OK, HTML, _page(asset_key, "".join(parts), as_of_text).encode())

    def _stale_ranges(
        self,
        calls: _Calls,
        request: Request,
        summary: staleness_pb.AssetStaleness,
        link: Callable[..., str],
    ) -> str:
        if not summary.stale_ranges:
            return "<h2>Stale</h2><p>Nothing is stale.</p>"
        opened = request.get("stale")
        items = []
        for part in summary.stale_ranges[:RANGES_LISTED]:
            first = part.first_partition_key
            anchor = f'id="stale-{escape(first)}"'
            if first != opened:
                href = link(stale=first) + f"#stale-{first}"
                items.append(
                    f'<li {anchor}><a href="{escape(href)}">{escape(_range_text(part))}</a></li>'
                )
                continue
            items.append(
                f'<li {anchor} class="selected"><strong>{escape(_range_text(part))}</strong>'
                f"{self._causes(calls, request, part, link)}</li>"
            )
        return f'<h2>Stale</h2><ul class="stale">{"".join(items)}</ul>'

    def _causes(
        self, calls: _Calls, request: Request, part: pb.PartitionRange, link: Callable[..., str]
    ) -> str:
        answer = calls(
            calls.staleness.GetStaleness,
            staleness_pb.GetStalenessRequest(
                namespace=request.get("ns"),
                asset_keys=[request.get("key")],
                selection=pb.PartitionSelection(
                    key_range=pb.KeyRange(
                        first_partition_key=part.first_partition_key,
                        last_partition_key=part.last_partition_key,
                    )
                ),
                as_of=request.as_of(),
                page_size=CAUSES_SHOWN,
            ),
        )
        items = []
        for partition in answer.partitions:
            causes = "".join(f"<li>{escape(cause.message)}</li>" for cause in partition.causes)
            needs = link(needs=partition.partition_key) + "#needs"
            items.append(
                f"<li><code>{escape(partition.partition_key)}</code> "
                f'(<a href="{escape(needs)}">which upstream partitions does it need?</a>)'
                f"<ul>{causes}</ul></li>"
            )
        more = "<li>…</li>" if answer.next_page_token else ""
        return f'<ul class="causes">{"".join(items)}{more}</ul>'

    def _needs(
        self, calls: _Calls, request: Request, asset: defs_pb.Asset, link: Callable[..., str]
    ) -> str:
        key = request.get("needs")
        form = (
            '<h2 id="needs">Which upstream partitions does a partition need?</h2>'
            '<form method="get" action="/ui/asset">'
            f'<input type="hidden" name="ns" value="{escape(request.get("ns"))}">'
            f'<input type="hidden" name="key" value="{escape(asset.asset_key)}">'
            f'<input type="hidden" name="as_of" value="{escape(request.get("as_of"))}">'
            f'<label>Partition <input name="needs" value="{escape(key)}"></label> '
            '<button type="submit">Ask</button></form>'
        )
        if not key:
            return form
        try:
            answer = calls(
                calls.queries.GetUpstreamPartitions,
                queries_pb.GetUpstreamPartitionsRequest(
                    namespace=request.get("ns"),
                    asset_key=asset.asset_key,
                    selection=pb.PartitionSelection(keys=pb.PartitionKeys(partition_keys=[key])),
                    as_of=request.as_of(),
                ),
            )
        except grpc.RpcError as error:
            return form + f'<p class="error">{escape(failure_of(error).describe())}</p>'
        rows = "".join(_needs_row(dependency) for dependency in answer.dependencies)
        if not rows:
            return form + "<p>It reads no other asset.</p>"
        head = "<tr><th>upstream</th><th>mapping</th><th>partitions</th><th>not existing</th></tr>"
        return form + f'<table class="needs">{head}{rows}</table>'


def _latest_ticks(calls: _Calls, namespace: str) -> str:
    """The namespace's latest automation ticks, each linking to its page."""
    title = "<h2>Latest automation ticks</h2>"
    try:
        answer = calls(
            calls.automation.ListAutomationTicks,
            automation_pb.ListAutomationTicksRequest(namespace=namespace, page_size=TICKS_LISTED),
        )
    except grpc.RpcError as error:  # the rest of the page still shows
        return title + f'<p class="error">{escape(failure_of(error).describe())}</p>'
    if not answer.ticks:
        return title + "<p>None yet.</p>"
    head = "<tr><th>#</th><th>tick</th><th>evaluated at</th><th>requested</th><th>runs</th></tr>"
    rows = "".join(
        f'<tr data-tick="{escape(tick.tick_id)}"><td>{tick.sequence:,}</td>'
        f'<td><a href="{escape(_url("/ui/tick", ns=namespace, tick=tick.tick_id))}">'
        f"{escape(tick.tick_id)}</a></td>"
        f"<td>{_instant(_seconds(tick.evaluation_time))}</td>"
        f"<td>{tick.requested_count:,} partition{'s' if tick.requested_count != 1 else ''}</td>"
        f"<td>{tick.run_request_count:,}</td></tr>"
        for tick in answer.ticks
    )
    return title + f'<table class="ticks">{head}{rows}</table>'


def _requested_table(tick: automation_pb.AutomationTick) -> str:
    if not tick.requested:
        return "<h2>Requested</h2><p>Nothing.</p>"
    rows = []
    for entry in tick.requested:
        if entry.HasField("partitions"):
            ranges = entry.partitions.ranges
            listed = ", ".join(_range_text(r) for r in ranges[:RANGES_LISTED])
            more = (
                f", … {len(ranges) - RANGES_LISTED:,} more ranges"
                if len(ranges) > RANGES_LISTED
                else ""
            )
            count = entry.partitions.count
            what = f"{count:,} partition{'s' if count != 1 else ''}: {escape(listed)}{more}"
        else:
            what = "the asset"
        rows.append(
            f'<tr data-asset="{escape(entry.asset_key)}"><td>{escape(entry.asset_key)}</td>'
            f"<td>{what}</td></tr>"
        )
    return f'<h2>Requested</h2><table class="requested">{"".join(rows)}</table>'


def _run_requests(tick: automation_pb.AutomationTick) -> str:
    if not tick.run_requests:
        return ""
    items = "".join(
        f"<li>{escape(run.partition_key) if run.HasField('partition_key') else 'unpartitioned'}: "
        f"{escape(', '.join(run.asset_keys))}</li>"
        for run in tick.run_requests
    )
    shown = len(tick.run_requests)
    more = (
        f"<li>… {tick.run_request_count - shown:,} more</li>"
        if tick.run_request_count > shown
        else ""
    )
    return (
        f'<h2>Runs to launch ({tick.run_request_count:,})</h2><ul class="runs">{items}{more}</ul>'
    )


def _evaluation(evaluation: automation_pb.AssetEvaluation, requested: bool) -> str:
    """One asset's evaluation tree, open when the asset was requested."""
    root = evaluation.root
    return (
        f'<details class="evaluation" data-asset="{escape(evaluation.asset_key)}"'
        f"{' open' if requested else ''}><summary><strong>{escape(evaluation.asset_key)}</strong>"
        f" — {escape(root.label)}: {_truth(root)}</summary>"
        f'<ul class="tree">{_condition(root)}</ul></details>'
    )


def _truth(node: automation_pb.ConditionEvaluation) -> str:
    return f"true for {node.true_count:,} of {node.candidate_count:,}"


def _condition(node: automation_pb.ConditionEvaluation) -> str:
    """A node of an evaluation tree and, below it, its children."""
    ranges = ", ".join(_range_text(r) for r in node.true_ranges[:RANGES_LISTED])
    if len(node.true_ranges) > RANGES_LISTED:
        ranges += f", … {len(node.true_ranges) - RANGES_LISTED:,} more ranges"
    children = "".join(_condition(child) for child in node.children)
    return (
        f'<li><span class="label">{escape(node.label)}</span>: {_truth(node)}'
        + (f" ({escape(ranges)})" if ranges else "")
        + (f'<ul class="tree">{children}</ul>' if children else "")
        + "</li>"
    )


def _needs_row(dependency: queries_pb.UpstreamPartitions) -> str:
    ranges = ", ".join(_range_text(r) for r in dependency.partitions.ranges) or "none"
    nonexistent = ", ".join(_range_text(r) for r in dependency.required_but_nonexistent.ranges)
    return (
        f"<tr><td>{escape(dependency.upstream_asset_key)}</td>"
        f"<td>{_mapping_name(dependency.partition_mapping)}</td>"
        f"<td>{'the whole asset' if dependency.whole_asset else escape(ranges)}</td>"
        f"<td>{escape(nonexistent)}</td></tr>"
    )


def _ranges_list(title: str, ranges: Sequence[pb.PartitionRange]) -> str:
    if not ranges:
        return f"<h2>{title}</h2><p>None.</p>"
    items = "".join(f"<li>{escape(_range_text(r))}</li>" for r in ranges[:RANGES_LISTED])
    more = (
        f"<li>… {len(ranges) - RANGES_LISTED:,} more ranges</li>"
        if len(ranges) > RANGES_LISTED
        else ""
    )
    return f"<h2>{title}</h2><ul>{items}{more}</ul>"
