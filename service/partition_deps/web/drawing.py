"""SVG drawn on the server: an asset graph in layers and a health bar of partition ranges.

Pure functions of plain values: the pages gather the values from the service, these only place
and draw them. Every text is escaped here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

# Health bar colours per status; the legend uses them too.
COLOURS = {
    "fresh": "#3a9d5d",
    "stale": "#e8a33d",
    "missing": "#c9ccd1",
    "in_progress": "#2563eb",
}
_LAYER = {"fresh": 0, "missing": 0, "stale": 1, "in_progress": 2}
BAR_WIDTH = 720
BAR_HEIGHT = 22
# A stale range narrower than this still shows (and can be clicked). Other ranges keep their
# true width: a few fresh partitions among 100,000 are a faint line, not a green bar.
MIN_STALE_WIDTH = 1.5


@dataclass(frozen=True)
class Segment:
    """A run of partitions of one status over [start, end) of the bar, both in 0..1."""

    status: str
    start: float
    end: float
    label: str
    # Where clicking the range leads ("" for nowhere).
    link: str = ""


def health_bar(segments: Sequence[Segment], title: str, width: int = BAR_WIDTH) -> str:
    """A bar of `width` pixels: each segment a rectangle with its label on hover."""
    parts = [
        f'<svg class="bar" role="img" width="{width}" height="{BAR_HEIGHT}" '
        f'viewBox="0 0 {width} {BAR_HEIGHT}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{BAR_HEIGHT}" fill="#f2f3f5"/>',
    ]
    # Stale ranges on top of fresh and missing ones; runs in progress as a band over the top
    # third, so the status under them still shows.
    for segment in sorted(segments, key=lambda s: _LAYER[s.status]):
        x = segment.start * width
        w = (segment.end - segment.start) * width
        if segment.status in ("stale", "in_progress"):
            w = max(w, MIN_STALE_WIDTH)
        height = BAR_HEIGHT / 3 if segment.status == "in_progress" else BAR_HEIGHT
        rect = (
            f'<rect class="range {segment.status}" x="{x:.2f}" y="0" width="{w:.2f}" '
            f'height="{height:.1f}" fill="{COLOURS[segment.status]}">'
            f"<title>{escape(segment.label)}</title></rect>"
        )
        if segment.link:
            rect = f'<a href="{escape(segment.link)}">{rect}</a>'
        parts.append(rect)
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class Node:
    key: str
    # The assets it reads, with the mapping's name.
    upstream: Mapping[str, str]
    # "stale", "missing" or "fresh": the colour of its border.
    health: str
    link: str


NODE_HEIGHT = 34
ROW_GAP = 22
COLUMN_GAP = 90
CHARACTER_WIDTH = 7.2
# Of the 11-pixel sans-serif text of an edge's mapping.
LABEL_CHARACTER_WIDTH = 6.2


def _layers(nodes: Mapping[str, Node]) -> dict[str, int]:
    """Each asset's layer: 0 without upstream in the graph, else one past its deepest upstream."""
    layer: dict[str, int] = {}
    for key in sorted(nodes):
        stack = [key]
        while stack:
            current = stack[-1]
            waiting = [u for u in nodes[current].upstream if u in nodes and u not in layer]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            upstream = [layer[u] + 1 for u in nodes[current].upstream if u in nodes]
            layer[current] = max(upstream, default=0)
    return layer


def asset_graph(nodes: Sequence[Node]) -> str:
    """The assets in layers left to right (upstream first), each edge labelled by its mapping."""
    by_key = {node.key: node for node in nodes}
    layer = _layers(by_key)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for key in sorted(by_key):
        columns[layer[key]].append(key)
    for index, column in enumerate(columns):
        if index:  # the mean row of its upstream keeps edges short
            column.sort(
                key=lambda k: (
                    sum(row[u] for u in by_key[k].upstream if u in row)
                    / max(1, sum(1 for u in by_key[k].upstream if u in row)),
                    k,
                )
            )
        for position, key in enumerate(column):
            row[key] = position
    widths = [
        max((len(key) * CHARACTER_WIDTH + 24 for key in column), default=0) for column in columns
    ]
    # Wide enough for the mapping names on the edges that end in each column.
    gaps = [
        max(
            [COLUMN_GAP]
            + [
                len(mapping) * LABEL_CHARACTER_WIDTH + 24
                for key in column
                for mapping in by_key[key].upstream.values()
            ]
        )
        for column in columns
    ]
    lefts = [sum(widths[:i]) + sum(gaps[1 : i + 1]) + 10 for i in range(len(columns))]
    place = {
        key: (lefts[layer[key]], 10 + row[key] * (NODE_HEIGHT + ROW_GAP), widths[layer[key]])
        for key in by_key
    }
    width = (lefts[-1] + widths[-1] + 10) if columns else 20
    height = 20 + max((len(c) for c in columns), default=0) * (NODE_HEIGHT + ROW_GAP)
    parts = [
        f'<svg class="graph" role="img" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" xmlns="http://www.w3.org/2000/svg">',
        "<title>asset graph</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker>'
        "</defs>",
    ]
    for node in nodes:
        x2, y2, _ = place[node.key]
        for upstream, mapping in sorted(node.upstream.items()):
            if upstream not in place:
                continue
            ux, uy, uw = place[upstream]
            x1, y1, y2c = ux + uw, uy + NODE_HEIGHT / 2, y2 + NODE_HEIGHT / 2
            middle = (x1 + x2) / 2
            label = f"{upstream} -> {node.key}: {mapping}"
            parts.append(
                f'<g class="edge" data-from="{escape(upstream)}" data-to="{escape(node.key)}">'
                f"<title>{escape(label)}</title>"
                f'<path d="M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2c:.1f} '
                f'{x2:.1f},{y2c:.1f}" fill="none" stroke="#6b7280" stroke-width="1.5" '
                'marker-end="url(#arrow)"/>'
                f'<text x="{middle:.1f}" y="{(y1 + y2c) / 2 - 4:.1f}" font-size="11" '
                f'text-anchor="middle" fill="#374151">{escape(mapping)}</text></g>'
            )
    for node in nodes:
        x, y, w = place[node.key]
        parts.append(
            f'<a href="{escape(node.link)}"><g class="node" data-asset="{escape(node.key)}">'
            f"<title>{escape(node.key)}: {node.health}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{NODE_HEIGHT}" rx="6" '
            f'fill="#ffffff" stroke="{COLOURS[node.health]}" stroke-width="3"/>'
            f'<text x="{x + 12:.1f}" y="{y + NODE_HEIGHT / 2 + 4:.1f}" font-size="13" '
            f'font-family="monospace">{escape(node.key)}</text></g></a>'
        )
    parts.append("</svg>")
    return "".join(parts)
