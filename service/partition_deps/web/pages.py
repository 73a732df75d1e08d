"""The read-only status page: a namespace's asset graph and each asset's health over time.

Rendered on the server as HTML with inline SVG and CSS (nothing loaded from elsewhere, no
JavaScript): hovering a range of a health bar names it, clicking a stale range lists its
partitions' causes, and a form asks which upstream partitions a partition needs. Every value
comes from the service's own RPCs over the listener's channel, with the caller's bearer token
(the `Authorization` header, or the cookie the login form sets), so the page shows exactly
what the API answers to that token.

Routes: `/` (open a namespace), `/ui/namespace?ns=`, `/ui/asset?ns=&key=` (`&stale=<first key>`
opens a stale range, `&needs=<key>` asks for its upstream), `/ui/login`. Each takes `as_of`
(an RFC 3339 instant; unset: now).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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

from partition_deps.api.gen.partitiondeps.v1 import definitions_service_pb2 as defs_pb
from partition_deps.api.gen.partitiondeps.v1 import (
    definitions_service_pb2_grpc,
    queries_service_pb2_grpc,
    staleness_service_pb2_grpc,
)
from partition_deps.api.gen.partitiondeps.v1 import partitions_pb2 as pb
from partition_deps.api.gen.partitiondeps.v1 import queries_service_pb2 as queries_pb
from partition_deps.api.gen.partitiondeps.v1 import staleness_service_pb2 as staleness_pb
from partition_deps.client.rpc_errors import RpcFailure, failure_of
from partition_deps.web.connect import HTTP_STATUS, Answer
from partition_deps.web.drawing import COLOURS, Node, Segment, asset_graph, health_bar

TOKEN_COOKIE = "pd_token"
HTML = "text/html; charset=utf-8"
# Assets whose bars a namespace page gathers at once: staleness is computing in the server's
# interpreter, so more would only hold more database connections.
PARALLEL_CALLS = 2
# Partitions listed with their causes when a stale range is opened.
CAUSES_SHOWN = 20
# Ranges listed under an asset's bar, per status.
RANGES_LISTED = 50
PAGE_SIZE = 10_000
# Staleness of an asset of 100,000 partitions takes about a second on a busy machine, and a
# namespace page waits for each of its assets.
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


def _health(
    calls: _Calls,
    namespace: str,
    asset: defs_pb.Asset,
    as_of: Timestamp | None,
    stale_link: Callable[[str], str],
) -> _Health:
    [summary] = calls(
        calls.staleness.GetStaleness,
        staleness_pb.GetStalenessRequest(
            namespace=namespace, asset_keys=[asset.asset_key], as_of=as_of, page_size=1
        ),
    ).assets
    if not asset.HasField("partitions_definition"):
        status = _worst(summary)
        whole = [Segment(status, 0, 1, f"{status} (unpartitioned)")]
        if summary.in_progress_count:
            whole.append(Segment("in_progress", 0, 1, "in progress"))
        return _Health(summary, whole, 1)
    source = queries_pb.DefinitionSource(
        asset=queries_pb.AssetReference(namespace=namespace, asset_key=asset.asset_key)
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
    return _Health(summary, segments, listed.total_size, timed is not None)


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
    return mapping.WhichOneof("kind") or "default"


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

        def health(asset: defs_pb.Asset) -> _Health:
            try:
                return _health(
                    calls,
                    namespace,
                    asset,
                    as_of,
                    lambda first: link(asset.asset_key, stale=first) + f"#stale-{first}",
                )
            except grpc.RpcError as error:  # the other assets still show
                summary = staleness_pb.AssetStaleness(asset_key=asset.asset_key)
                return _Health(summary, [], 0, error=failure_of(error).describe())

        with ThreadPoolExecutor(PARALLEL_CALLS, thread_name_prefix="status-page") as workers:
            healths = list(workers.map(health, assets))
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
                {
                    d.upstream_asset_key: _mapping_name(d.partition_mapping)
                    for d in asset.dependencies
                },
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
        )
        return Answer(HTTPStatus.OK, HTML, _page(namespace, body, as_of_text).encode())

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

        state = _health(
            calls, namespace, asset, as_of, lambda first: link(stale=first) + f"#stale-{first}"
        )
        back = _url("/ui/namespace", ns=namespace, as_of=as_of_text)
        upstream = ", ".join(
            f"{escape(d.upstream_asset_key)} ({_mapping_name(d.partition_mapping)})"
            for d in asset.dependencies
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
