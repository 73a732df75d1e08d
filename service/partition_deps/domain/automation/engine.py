"""One automation tick, Dagster-exact: which partitions each asset's condition requests now.

The evaluation follows Dagster's declarative automation (the rules are in the README's
automation section):

- assets are evaluated dependencies first, so `will_be_requested` sees this tick's requests of
  the assets evaluated before;
- `and` narrows the candidates operand by operand, `or` and `not` work within the candidates,
  and `since` and `newly_true` evaluate their operands over every partition of the asset,
  because they remember what was true from one tick to the next;
- `any_deps_match`/`all_deps_match` map the candidates to each dependency through its partition
  mapping, evaluate the operand there, and map the answer back;
- `newly_updated`, `newly_requested` and `cron_tick_passed` carry the instant at which they
  became true for each partition; `since` uses it when its trigger and reset are true together
  (the later wins; the reset wins a tie or when either side has no instant).

What a tick remembers for the next one is a `TickState`: per asset, what it requested, when it
was evaluated, the last event position it saw, and the state of its `since` and `newly_true`
nodes (keyed by node ids that stay the same from tick to tick, as Dagster's are).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from partition_deps.domain.assets import AssetDefinition
from partition_deps.domain.automation.conditions import Condition
from partition_deps.domain.automation.facts import Facts
from partition_deps.domain.compiled_windows import compile_time_windows
from partition_deps.domain.definitions import (
    Evaluation,
    MultiPartitions,
    PartitionsDefinition,
    TimeWindowPartitions,
)
from partition_deps.domain.dependencies import (
    downstream_partitions,
    involves_dynamic,
    upstream_partitions,
)
from partition_deps.domain.mappings.inference import resolve_mapping
from partition_deps.domain.mappings.kinds import (
    IdentityMapping,
    PartitionMapping,
    TimeWindowMapping,
)
from partition_deps.domain.partitions import (
    MULTI_KEY_DELIMITER,
    all_partitions,
    order_keys,
    sorted_dimensions,
    time_window_for_key,
)

# A set of partitions of one asset; `None` stands for an unpartitioned asset itself.
Keys = frozenset[str | None]
EMPTY: Keys = frozenset()
WHOLE: Keys = frozenset({None})
# Instants (seconds) at which partitions became true: {instant: partitions}.
Timing = dict[float, Keys]
# Past this many updated partitions, `newly_updated` dates them all at the tick's instant
# instead of at each one's latest materialization, as Dagster does (its default limit).
_MAX_TIMED_UPDATES = 100


# ----- the primitive operators a condition expands into -------------------------------


@dataclass(frozen=True, eq=False)
class Node:
    """One operator of an expanded condition.

    `name` identifies the operator for the remembered state (two nodes with the same name in
    the same place share it, as in Dagster); `label` is what an evaluation tree shows. Nodes
    compare by identity: `expand` builds one tree per condition and the ids are memoised on it.
    """

    op: str  # and, or, not, since, newly_true, any_deps, all_deps, leaf
    name: str
    label: str
    children: tuple[Node, ...] = ()
    leaf: Condition | None = None
    allow: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None


def _leaf(kind: str, **fields: Any) -> Node:
    condition = Condition(kind, **fields)
    return Node("leaf", _leaf_name(condition), kind, leaf=condition)


def _leaf_name(condition: Condition) -> str:
    if condition.kind == "cron_tick_passed":
        return (
            f"cron_tick_passed(cron_schedule={condition.cron_schedule}, "
            f"cron_timezone={condition.cron_timezone})"
        )
    if condition.kind == "in_latest_time_window" and condition.lookback_seconds:
        return f"in_latest_time_window(lookback_timedelta={condition.lookback_seconds})"
    return condition.kind


def _and(*children: Node, label: str = "and") -> Node:
    return Node("and", "AND", label, children)


def _or(*children: Node, label: str = "or") -> Node:
    return Node("or", "OR", label, children)


def _not(child: Node, label: str = "not") -> Node:
    return Node("not", "NOT", label, (child,))


def _since(trigger: Node, reset: Node, label: str = "since") -> Node:
    return Node("since", "SINCE", label, (trigger, reset))


def _newly_true(child: Node, label: str = "newly_true") -> Node:
    return Node("newly_true", "NEWLY_TRUE", label, (child,))


def _deps(
    quantifier: str,
    child: Node,
    allow: tuple[str, ...] | None,
    ignore: tuple[str, ...] | None,
    label: str,
) -> Node:
    name = "ANY_DEPS_MATCH" if quantifier == "any" else "ALL_DEPS_MATCH"
    return Node(f"{quantifier}_deps", name, label, (child,), allow=allow, ignore=ignore)


def _handled() -> Node:
    return _or(
        _leaf("newly_requested"),
        _leaf("newly_updated"),
        _leaf("initial_evaluation"),
        label="handled",
    )


def _in_progress() -> Node:
    return _or(_leaf("run_in_progress"), _leaf("backfill_in_progress"), label="in_progress")


def _any_deps_updated(allow: tuple[str, ...] | None, ignore: tuple[str, ...] | None) -> Node:
    updated = _and(
        _leaf("newly_updated"),
        _not(_leaf("executed_with_root_target")),
        label="newly_updated_without_root",
    )
    return _deps("any", _or(updated, _leaf("will_be_requested")), allow, ignore, "any_deps_updated")


def _any_deps_missing(allow: tuple[str, ...] | None, ignore: tuple[str, ...] | None) -> Node:
    missing = _and(_leaf("missing"), _not(_leaf("will_be_requested")))
    return _deps("any", missing, allow, ignore, "any_deps_missing")


def _any_deps_in_progress(allow: tuple[str, ...] | None, ignore: tuple[str, ...] | None) -> Node:
    return _deps("any", _in_progress(), allow, ignore, "any_deps_in_progress")


def _all_deps_updated_since_cron(cron: str, zone: str) -> Node:
    tick = _leaf("cron_tick_passed", cron_schedule=cron, cron_timezone=zone)
    updated = _or(_since(_leaf("newly_updated"), tick), _leaf("will_be_requested"))
    return _deps("all", updated, None, None, f"all_deps_updated_since_cron({cron}, {zone})")


def _newly_missing() -> Node:
    return _newly_true(_leaf("missing"), label="newly_missing")


# Thread safety: functools.lru_cache locks its own bookkeeping; the trees are immutable.
@functools.lru_cache(maxsize=1024)
def expand(condition: Condition) -> Node:
    """The primitive operators a condition stands for (presets written out as Dagster does)."""
    kind = condition.kind
    children = tuple(expand(child) for child in condition.operands)
    if kind == "and":
        return _and(*children)
    if kind == "or":
        return _or(*children)
    if kind == "not":
        return _not(children[0])
    if kind == "since":
        return _since(children[0], children[1])
    if kind == "since_last_handled":
        return _since(children[0], _handled(), label="since_last_handled")
    if kind == "newly_true":
        return _newly_true(children[0])
    if kind in ("any_deps_match", "all_deps_match"):
        return _deps(kind[:3], children[0], condition.allow, condition.ignore, kind)
    if kind == "newly_missing":
        return _newly_missing()
    if kind == "in_progress":
        return _in_progress()
    if kind == "any_deps_updated":
        return _any_deps_updated(condition.allow, condition.ignore)
    if kind == "any_deps_missing":
        return _any_deps_missing(condition.allow, condition.ignore)
    if kind == "any_deps_in_progress":
        return _any_deps_in_progress(condition.allow, condition.ignore)
    if kind == "all_deps_updated_since_cron":
        return _all_deps_updated_since_cron(condition.cron_schedule, condition.cron_timezone)
    if kind == "eager":
        return _and(
            _leaf("in_latest_time_window"),
            _since(_or(_newly_missing(), _any_deps_updated(None, None)), _handled()),
            _not(_any_deps_missing(None, None)),
            _not(_any_deps_in_progress(None, None)),
            _not(_in_progress()),
            label="eager",
        )
    if kind == "on_cron":
        cron, zone = condition.cron_schedule, condition.cron_timezone
        tick = _leaf("cron_tick_passed", cron_schedule=cron, cron_timezone=zone)
        return _and(
            _leaf("in_latest_time_window"),
            _since(tick, _handled()),
            _all_deps_updated_since_cron(cron, zone),
            label=f"on_cron({cron}, {zone})",
        )
    if kind == "on_missing":
        return _and(
            _leaf("in_latest_time_window"),
            _since(_newly_missing(), _handled(), label="missing_since_last_handled"),
            _not(_any_deps_missing(None, None)),
            label="on_missing",
        )
    if kind == "in_latest_time_window":
        return _leaf(kind, lookback_seconds=condition.lookback_seconds)
    if kind == "cron_tick_passed":
        return _leaf(
            kind, cron_schedule=condition.cron_schedule, cron_timezone=condition.cron_timezone
        )
    return _leaf(kind)


# ----- node ids: stable from tick to tick ---------------------------------------------


def _hash(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()[:20]


# Thread safety: functools.lru_cache locks its own bookkeeping.
@functools.lru_cache(maxsize=65536)
def node_id(node: Node, parent: str | None, index: int | None, target: str | None) -> str:
    """The id under which a node's state is kept. `since` and `newly_true` are keyed by what
    they are and the asset they run on, wherever they sit in the tree; other nodes by their
    place in it. Dependency operators ignore their allow/ignore lists, as Dagster does."""
    if node.op in ("since", "newly_true"):
        child_ids = [node_id(child, None, i, target) for i, child in enumerate(node.children)]
        return _hash("".join([node.name, *child_ids, target or ""]))
    return _hash(f"{parent}{index}{node.name}")


# ----- results ------------------------------------------------------------------------


class NodeEvaluation(NamedTuple):
    """One node of an evaluation tree: its label, the asset it ran on (a dependency's, under
    `any_deps_match`/`all_deps_match`), the partitions it was true for and how many it was
    asked about."""

    label: str
    asset: str
    true_keys: Keys
    candidate_count: int
    children: tuple[NodeEvaluation, ...] = ()
    # When partitions became true (newly_updated, newly_requested, cron_tick_passed, passed on
    # by since and the dependency operators): what `since` compares when both sides fire.
    timing: Timing | None = None


@dataclass(frozen=True)
class RunRequest:
    """One run a scheduler would launch: these assets, for this partition key."""

    partition_key: str | None
    assets: tuple[str, ...]


@dataclass
class AssetState:
    """What one asset's evaluation leaves for the next tick."""

    requested: tuple[str | None, ...]
    evaluation_time: float
    partitions: str
    # Per node id: {"true": [...]} (since), {"child": [...]} (newly_true), {"value": s}.
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class TickState:
    """Everything a tick remembers for the next one (Dagster's cursor)."""

    evaluation_time: float | None = None
    assets: dict[str, AssetState] = field(default_factory=dict)
    # Partitions whose latest run failed, per asset: they stay failed until materialized.
    failed: dict[str, tuple[str | None, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "evaluation_time": self.evaluation_time,
            "assets": {
                key: {
                    "requested": list(state.requested),
                    "evaluation_time": state.evaluation_time,
                    "partitions": state.partitions,
                    "nodes": state.nodes,
                }
                for key, state in self.assets.items()
            },
            "failed": {key: list(keys) for key, keys in self.failed.items()},
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> TickState:
        return TickState(
            evaluation_time=data.get("evaluation_time"),
            assets={
                key: AssetState(
                    requested=tuple(value["requested"]),
                    evaluation_time=float(value["evaluation_time"]),
                    partitions=str(value["partitions"]),
                    nodes=dict(value["nodes"]),
                )
                for key, value in data.get("assets", {}).items()
            },
            failed={key: tuple(keys) for key, keys in data.get("failed", {}).items()},
        )


@dataclass(frozen=True)
class TickOutcome:
    # Per asset with something requested: its keys in the definition's order (None: the
    # unpartitioned asset itself).
    requested: dict[str, tuple[str, ...] | None]
    run_requests: tuple[RunRequest, ...]
    trees: dict[str, NodeEvaluation]
    state: TickState


# ----- the tick ---------------------------------------------------------------------------


def evaluate_tick(
    assets: Sequence[AssetDefinition],
    facts: Facts,
    previous: TickState | None,
    evaluation_time: datetime,
    dynamic_keys: Mapping[str, Sequence[str]] | None = None,
) -> TickOutcome:
    """Evaluate every asset that has a condition at `evaluation_time`."""
    tick = _Tick(assets, facts, previous or TickState(), evaluation_time, dynamic_keys or {})
    return tick.run()


def _fingerprint(definition: PartitionsDefinition | None) -> str:
    """Names a partitions definition in the kept state (its state starts afresh when it
    changes); a hash, as each asset's state carries one."""
    return _hash(repr(definition))


class _Tick:
    """One evaluation: built, used and dropped by one call on one thread, so its memos need
    no lock."""

    def __init__(
        self,
        assets: Sequence[AssetDefinition],
        facts: Facts,
        previous: TickState,
        evaluation_time: datetime,
        dynamic_keys: Mapping[str, Sequence[str]],
    ) -> None:
        self.assets = {asset.key: asset for asset in assets}
        self.facts = facts
        self.previous = previous
        self.now = evaluation_time.timestamp()
        self.at = Evaluation(evaluation_time, dynamic_keys)
        self.requested: dict[str, Keys] = {}
        self._full: dict[str, Keys] = {}
        self._full_of: dict[PartitionsDefinition, Keys] = {}
        self._ordered_of: dict[PartitionsDefinition, list[str]] = {}
        self._latest: dict[tuple[PartitionsDefinition, float | None], Keys] = {}
        self._executable: dict[tuple[str, str], bool] = {}
        # Facts asked more than once in a tick, asked once (per asset).
        self._updated: dict[str, Keys] = {}
        self._materialized: dict[str, Keys] = {}
        # Per asset: the last candidate set `missing` was asked of, and the answer.
        self._missing: dict[str, tuple[Keys, Keys]] = {}
        self._in_progress: dict[str, Keys] = {}
        self._same: dict[tuple[str, str], bool] = {}
        self._ordered: dict[str, list[str]] = {}
        self.failed = self._refresh_failed()

    # -- the asset graph --

    def definition(self, key: str) -> PartitionsDefinition | None:
        asset = self.assets.get(key)
        return None if asset is None else asset.partitions

    def mapping(self, child: str, parent: str) -> PartitionMapping | None:
        for dependency in self.assets[child].dependencies:
            if dependency.upstream_key == parent:
                return dependency.mapping
        return None

    def full(self, key: str) -> Keys:
        """Every partition of the asset that exists at the evaluation time."""
        found = self._full.get(key)
        if found is None:
            definition = self.definition(key)
            if definition is None:
                found = WHOLE
            else:
                found = self._full_of.get(definition)
                if found is None:  # assets sharing a definition share the answer
                    ordered = list(all_partitions(definition, self.at))
                    self._ordered_of[definition] = ordered
                    found = self._full_of[definition] = frozenset(ordered)
                self._ordered[key] = self._ordered_of[definition]
            self._full[key] = found
        return found

    def ordered(self, key: str, keys: Keys) -> list[str]:
        """`keys` in the definition's order at the evaluation time."""
        definition = self.definition(key)
        assert definition is not None
        present = [k for k in keys if k is not None]
        if len(present) * 4 >= len(self.full(key)):
            return [k for k in self._ordered[key] if k in keys]
        return order_keys(definition, present, self.at)

    def levels(self) -> list[list[str]]:
        """Asset keys by topological level (dependencies first), as Dagster orders them."""
        level: dict[str, int] = {}

        def depth(key: str, seen: frozenset[str]) -> int:
            known = level.get(key)
            if known is not None:
                return known
            asset = self.assets.get(key)
            parents = (
                [d.upstream_key for d in asset.dependencies if d.upstream_key in self.assets]
                if asset
                else []
            )
            value = 0
            for parent in parents:
                if parent not in seen:
                    value = max(value, depth(parent, seen | {key}) + 1)
            level[key] = value
            return value

        for key in self.assets:
            depth(key, frozenset())
        by_level: dict[int, list[str]] = {}
        for key in sorted(self.assets):
            by_level.setdefault(level[key], []).append(key)
        return [by_level[index] for index in sorted(by_level)]

    def same_partitions(self, child: str, parent: str) -> bool:
        """Whether the dependency maps each partition to the same key on the other side: one
        definition on both sides with the identity or a zero-offset time-window mapping."""
        found = self._same.get((child, parent))
        if found is None:
            definition = self.definition(child)
            mapping = self.mapping(child, parent)
            found = (
                definition is not None
                and definition == self.definition(parent)
                and (mapping is None or mapping in (IdentityMapping(), TimeWindowMapping()))
            )
            self._same[(child, parent)] = found
        return found

    def map_up(self, child: str, keys: Keys, parent: str) -> Keys:
        """The partitions of `parent` that `keys` of `child` depend on (existing ones)."""
        if not keys:
            return EMPTY
        parent_definition = self.definition(parent)
        if parent_definition is None:
            return WHOLE
        if self.same_partitions(child, parent):
            return keys & self.full(parent)
        child_definition = self.definition(child)
        child_keys = [] if child_definition is None else self.ordered(child, keys)
        result = upstream_partitions(
            parent_definition,
            child_definition,
            self.mapping(child, parent),
            child_keys,
            self.at,
        )
        return frozenset(result.partitions)

    def map_down(self, parent: str, keys: Keys, child: str) -> Keys:
        """The partitions of `child` that depend on `keys` of `parent`."""
        if not keys:
            return EMPTY
        parent_definition, child_definition = self.definition(parent), self.definition(child)
        if parent_definition is None or child_definition is None:
            return self.full(child)
        if self.same_partitions(child, parent):
            return keys & self.full(child)
        result = downstream_partitions(
            parent_definition,
            child_definition,
            self.mapping(child, parent),
            self.ordered(parent, keys),
            self.at,
        )
        return frozenset(result.partitions)

    # -- facts --

    def observable(self, key: str) -> bool:
        asset = self.assets.get(key)
        return asset is not None and asset.observable_source

    def _refresh_failed(self) -> dict[str, Keys]:
        """Partitions whose latest run failed, per partitioned asset: they stay failed until
        materialized again (Dagster's partition status cache)."""
        failed: dict[str, Keys] = {}
        for key, asset in self.assets.items():
            if asset.partitions is None:
                continue
            kept = frozenset(self.previous.failed.get(key, ()))
            if kept:
                kept = kept - self.facts.updated(key, False)
            keys = kept | self.facts.failed_attempts(key, True)
            if keys:
                failed[key] = keys
        return failed

    def execution_failed(self, key: str) -> Keys:
        if self.definition(key) is not None:
            return self.failed.get(key, EMPTY)
        return self.facts.failed_attempts(key, False)

    def updated(self, key: str) -> Keys:
        """Partitions updated since the previous tick that are partitions now."""
        found = self._updated.get(key)
        if found is None:
            found = self._updated[key] = self.facts.updated(key, self.observable(key)) & self.full(
                key
            )
        return found

    def missing(self, key: str, candidate: Keys) -> Keys:
        """`candidate` without the materialized partitions. An eager condition asks this of
        the same candidate set several times per asset, each a difference of a thousand keys:
        the last answer is kept per asset, for that very set object."""
        found = self._missing.get(key)
        if found is not None and found[0] is candidate:
            return found[1]
        answer = candidate - self.materialized(key)
        self._missing[key] = (candidate, answer)
        return answer

    def materialized(self, key: str) -> Keys:
        found = self._materialized.get(key)
        if found is None:
            found = self._materialized[key] = self.facts.materialized(key, self.observable(key))
        return found

    def in_progress(self, key: str) -> Keys:
        found = self._in_progress.get(key)
        if found is None:
            partitioned = self.definition(key) is not None
            found = self._in_progress[key] = self.facts.in_progress(key, partitioned)
        return found

    def latest_time_window(self, key: str, lookback: float | None) -> Keys:
        definition = self.definition(key)
        if definition is None:
            return WHOLE
        found = self._latest.get((definition, lookback))
        if found is None:
            found = self._latest[(definition, lookback)] = self._latest_window(key, lookback)
        return found

    def _latest_window(self, key: str, lookback: float | None) -> Keys:
        definition = self.definition(key)
        time_definition: TimeWindowPartitions | None = None
        if isinstance(definition, TimeWindowPartitions):
            time_definition = definition
        elif isinstance(definition, MultiPartitions):
            for dimension in definition.dimensions:
                if isinstance(dimension.partitions, TimeWindowPartitions):
                    time_definition = dimension.partitions
        if time_definition is None:
            return self.full(key)
        time_keys = list(all_partitions(time_definition, self.at))
        if not time_keys:
            return EMPTY
        last_start, last_end = time_window_for_key(time_definition, time_keys[-1])
        if lookback:
            start = max(
                compile_time_windows(time_definition).start_ts,
                (last_end - timedelta(seconds=lookback)).timestamp(),
            )
        else:
            start = last_start.timestamp()
        window: list[str] = []
        for time_key in reversed(time_keys):
            if time_window_for_key(time_definition, time_key)[0].timestamp() < start:
                break
            window.append(time_key)
        if isinstance(definition, TimeWindowPartitions):
            return frozenset(window)
        assert isinstance(definition, MultiPartitions)
        chosen = set(window)
        return frozenset(
            k
            for k in self.full(key)
            if k is not None and _time_part(definition, k, time_definition) in chosen
        )

    def previous_cron_tick(self, cron: str, zone: str) -> float:
        windows = compile_time_windows(
            TimeWindowPartitions(cron_schedule=cron, start=datetime(1970, 1, 1), timezone=zone)
        )
        return float(windows.last_tick_at_or_before(int(self.now)))

    # -- running --

    def run(self) -> TickOutcome:
        new_state = TickState(evaluation_time=self.now)
        trees: dict[str, NodeEvaluation] = {}
        for level in self.levels():
            for key in level:
                asset = self.assets[key]
                if asset.automation_condition is None:
                    continue
                evaluation = _AssetEvaluation(self, asset, self.previous.assets.get(key))
                result = evaluation.evaluate()
                trees[key] = result
                keys = result.true_keys
                self.requested[key] = self.requested.get(key, EMPTY) | keys
                new_state.assets[key] = AssetState(
                    requested=self._listed(key, keys),
                    evaluation_time=self.now,
                    partitions=_fingerprint(asset.partitions),
                    nodes=evaluation.saved,
                )
        new_state.failed = {key: self._listed(key, keys) for key, keys in self.failed.items()}
        requested: dict[str, tuple[str, ...] | None] = {}
        for key in sorted(self.requested):
            keys = self.requested[key]
            if not keys:
                continue
            requested[key] = (
                None if self.definition(key) is None else tuple(self.ordered(key, keys))
            )
        return TickOutcome(requested, _run_requests(self, requested), trees, new_state)

    def storable_keys(self, key: str, keys: Keys) -> Any:
        """`keys` of asset `key` as a tick keeps them: a list, or, when they are most of the
        asset's partitions and the partitions follow from the definition and the time alone
        (no dynamic keys), what the partitions at this tick lack (`all_but`) plus any key
        outside them (`extra`). An `on_cron` asset's `since` holds every partition once its
        cron tick passed: 1,095 keys a day for three years of daily partitions, 15 kB a tick."""
        definition = self.definition(key)
        full = self.full(key)
        if definition is None or involves_dynamic(definition) or len(keys) * 2 <= len(full):
            return list(keys)
        return {"at": self.now, "all_but": list(full - keys), "extra": list(keys - full)}

    def stored_keys(self, key: str, stored: Any) -> Keys:
        """The keys `storable_keys` kept (nothing stored: none)."""
        if stored is None:
            return EMPTY
        if isinstance(stored, list):
            return frozenset(stored)
        definition = self.definition(key)
        assert definition is not None
        when = datetime.fromtimestamp(float(stored["at"]), UTC)
        then = frozenset(all_partitions(definition, Evaluation(when)))
        return (then - frozenset(stored["all_but"])) | frozenset(stored["extra"])

    def _listed(self, key: str, keys: Keys) -> tuple[str | None, ...]:
        if self.definition(key) is None:
            return (None,) if keys else ()
        return tuple(sorted(k for k in keys if k is not None))


def _time_part(definition: MultiPartitions, key: str, time_definition: TimeWindowPartitions) -> str:
    parts = key.split(MULTI_KEY_DELIMITER)
    for dimension, part in zip(sorted_dimensions(definition), parts, strict=False):
        if dimension.partitions is time_definition:
            return part
    return ""


def _run_requests(
    tick: _Tick, requested: Mapping[str, tuple[str, ...] | None]
) -> tuple[RunRequest, ...]:
    """Runs as Dagster's daemon groups requests: one per (partitions definition, key) with
    every asset requested for it, one for all the unpartitioned assets requested; ordered by
    partition key (unpartitioned first), ties in the order the assets were evaluated."""
    groups: dict[tuple[PartitionsDefinition | None, str | None], list[str]] = {}
    for asset in tick.requested:
        keys = requested.get(asset, ())
        definition = tick.definition(asset)
        for key in (None,) if keys is None else keys:
            groups.setdefault((definition, key), []).append(asset)
    ordered = sorted(groups.items(), key=lambda item: item[0][1] or "")
    return tuple(RunRequest(key, tuple(assets)) for (_, key), assets in ordered)


class _AssetEvaluation:
    """One asset's condition, evaluated once."""

    def __init__(self, tick: _Tick, asset: AssetDefinition, previous: AssetState | None) -> None:
        self.tick = tick
        self.asset = asset
        self.root = asset.key
        fingerprint = _fingerprint(asset.partitions)
        if previous is not None and previous.partitions != fingerprint:
            previous = None  # a new partitions definition starts afresh
        self.previous = previous
        self.saved: dict[str, dict[str, Any]] = {}

    def evaluate(self) -> NodeEvaluation:
        condition = self.asset.automation_condition
        assert condition is not None
        node = expand(condition)
        return self.node(
            node, self.root, self.tick.full(self.root), [node_id(node, None, None, None)]
        )

    # -- state --

    def _state(self, ids: Sequence[str]) -> dict[str, Any] | None:
        if self.previous is None:
            return None
        for unique in ids:
            found = self.previous.nodes.get(unique)
            if found is not None:
                return found
        return None

    def _save(self, unique: str, value: dict[str, Any]) -> None:
        self.saved[unique] = value

    # -- evaluation --

    def node(self, node: Node, key: str, candidate: Keys, ids: list[str]) -> NodeEvaluation:
        op = node.op
        if op == "and":
            return self._and(node, key, candidate, ids)
        if op == "or":
            results = [
                self.node(child, key, candidate, self._child_ids(child, ids, i, key))
                for i, child in enumerate(node.children)
            ]
            true = frozenset().union(*(result.true_keys for result in results))
            return self._result(node, key, candidate, true, None, results)
        if op == "not":
            child = node.children[0]
            result = self.node(child, key, candidate, self._child_ids(child, ids, 0, key))
            return self._result(node, key, candidate, candidate - result.true_keys, None, [result])
        if op == "since":
            return self._since(node, key, candidate, ids)
        if op == "newly_true":
            return self._newly_true(node, key, candidate, ids)
        if op in ("any_deps", "all_deps"):
            return self._deps(node, key, candidate, ids)
        true, timing = self._leaf(node, key, candidate, ids)
        return self._result(node, key, candidate, true, timing, [])

    def _child_ids(self, child: Node, ids: list[str], index: int | None, key: str) -> list[str]:
        target = None if key == self.root else key
        return [node_id(child, ids[0], index, target)]

    @staticmethod
    def _result(
        node: Node,
        key: str,
        candidate: Keys,
        true: Keys,
        timing: Timing | None,
        children: list[NodeEvaluation],
    ) -> NodeEvaluation:
        return NodeEvaluation(node.label, key, true, len(candidate), tuple(children), timing)

    def _and(self, node: Node, key: str, candidate: Keys, ids: list[str]) -> NodeEvaluation:
        true = candidate
        results = []
        for index, child in enumerate(node.children):
            result = self.node(child, key, true, self._child_ids(child, ids, index, key))
            results.append(result)
            true = true & result.true_keys
        return self._result(node, key, candidate, true, None, results)

    def _since(self, node: Node, key: str, candidate: Keys, ids: list[str]) -> NodeEvaluation:
        full = self.tick.full(key)
        trigger_node, reset_node = node.children
        trigger = self.node(trigger_node, key, full, self._child_ids(trigger_node, ids, 0, key))
        reset = self.node(reset_node, key, full, self._child_ids(reset_node, ids, 1, key))
        state = self._state(ids)
        previous = self.tick.stored_keys(key, state.get("true")) if state else EMPTY
        true = (previous | trigger.true_keys) - reset.true_keys
        both = trigger.true_keys & reset.true_keys
        if both and trigger.timing and reset.timing:
            true = true | (_later(trigger.timing, reset.timing) & both)
        self._save(ids[0], {"true": self.tick.storable_keys(key, true)})
        return self._result(node, key, candidate, true, trigger.timing, [trigger, reset])

    def _newly_true(self, node: Node, key: str, candidate: Keys, ids: list[str]) -> NodeEvaluation:
        child_node = node.children[0]
        full = self.tick.full(key)
        child = self.node(child_node, key, full, self._child_ids(child_node, ids, 0, key))
        state = self._state(ids)
        previous = self.tick.stored_keys(key, state.get("child")) if state else EMPTY
        true = candidate & (child.true_keys - previous)
        self._save(ids[0], {"child": self.tick.storable_keys(key, child.true_keys)})
        return self._result(node, key, candidate, true, None, [child])

    def _deps(self, node: Node, key: str, candidate: Keys, ids: list[str]) -> NodeEvaluation:
        tick = self.tick
        asset = tick.assets[key]
        dep_keys = {d.upstream_key for d in asset.dependencies}
        if node.allow is not None:
            dep_keys &= set(node.allow)
        if node.ignore is not None:
            dep_keys -= set(node.ignore)
        operand = node.children[0]
        any_match = node.op == "any_deps"
        true: Keys = EMPTY if any_match else candidate
        merged: Timing = {}
        results = []
        for dep in sorted(dep_keys):
            # Each dependency is its own node (Dagster's "entity matches"), named by the key.
            dep_id = _hash(f"{ids[0]}None{dep}")
            target = None if dep == self.root else dep
            mapped = tick.map_up(key, candidate, dep) if dep in tick.assets else EMPTY
            result = self.node(operand, dep, mapped, [node_id(operand, dep_id, 0, target)])
            back = tick.map_down(dep, result.true_keys, key) if dep in tick.assets else EMPTY
            results.append(
                self._result(Node("leaf", dep, dep), key, candidate, back, None, [result])
            )
            if any_match:
                true = true | back
                for instant, keys in (result.timing or {}).items():
                    mapped_keys = tick.map_down(dep, keys, key)
                    merged[instant] = merged.get(instant, EMPTY) | mapped_keys
            else:
                true = true & back
        if any_match:
            true = candidate & true
        timing = merged or None if any_match else None
        return self._result(node, key, candidate, true, timing, results)

    # -- leaves --

    def _leaf(
        self, node: Node, key: str, candidate: Keys, ids: list[str]
    ) -> tuple[Keys, Timing | None]:
        tick = self.tick
        leaf = node.leaf
        assert leaf is not None
        kind = leaf.kind
        if kind == "code_version_changed":
            current = tick.assets[key].code_version
            state = self._state(ids)
            self._save(ids[0], {"value": current})
            if state is None or state.get("value") == current:
                return EMPTY, None
            return candidate, None
        if kind == "initial_evaluation":
            return (candidate if self.previous is None else EMPTY), None
        if not candidate:
            return EMPTY, None
        if kind == "missing":
            return tick.missing(key, candidate), None
        if kind == "run_in_progress":
            return tick.in_progress(key), None
        if kind == "backfill_in_progress":
            return EMPTY, None
        if kind == "execution_failed":
            return tick.execution_failed(key), None
        if kind == "will_be_requested":
            requested = tick.requested.get(key)
            if requested and self._executable_with_root(key):
                return requested, None
            return EMPTY, None
        if kind == "in_latest_time_window":
            return tick.latest_time_window(key, leaf.lookback_seconds), None
        if kind == "executed_with_root_target":
            return self._executed_with_root(key, candidate), None
        if kind == "newly_requested":
            return self._newly_requested(key)
        if kind == "newly_updated":
            return self._newly_updated(key)
        if kind == "data_version_changed":
            return self._data_version_changed(key), None
        if kind == "cron_tick_passed":
            return self._cron_tick_passed(leaf, candidate)
        raise ValueError(f"unknown condition kind {kind!r}")

    def _executable_with_root(self, key: str) -> bool:
        """Whether `key` can run in one run with the asset evaluated (Dagster's
        `executable_in_same_run`): same definition, identity or time-window mapping."""
        found = self.tick._executable.get((self.root, key))
        if found is None:
            found = self.tick._executable[(self.root, key)] = self._executable_uncached(key)
        return found

    def _executable_uncached(self, key: str) -> bool:
        tick = self.tick
        root_definition = tick.definition(self.root)
        if root_definition != tick.definition(key):
            return False
        if root_definition is not None:
            mapping = resolve_mapping(
                root_definition, root_definition, tick.mapping(self.root, key)
            )
            if not isinstance(mapping, TimeWindowMapping | IdentityMapping):
                return False
        return not tick.observable(key)

    def _executed_with_root(self, key: str, candidate: Keys) -> Keys:
        if key == self.root:
            return EMPTY
        latest = self.tick.facts.latest_materialization(key)
        if latest is None or latest[0] not in candidate or latest[1] is None:
            return EMPTY
        run_assets = self.tick.facts.run_assets(latest[1])
        if run_assets is None or self.root not in run_assets:
            return EMPTY
        return frozenset({latest[0]})

    def _newly_requested(self, key: str) -> tuple[Keys, Timing | None]:
        state = self.tick.previous.assets.get(key)
        keys: Keys = frozenset(state.requested) if state is not None else EMPTY
        if key == self.root and self.previous is None:
            keys = EMPTY
        if not keys or self.previous is None:
            return keys, None
        return keys, {self.previous.evaluation_time: keys}

    def _newly_updated(self, key: str) -> tuple[Keys, Timing | None]:
        if self.previous is None:
            return EMPTY, None
        keys = self.tick.updated(key)
        if not keys:
            return EMPTY, None
        if len(keys) > _MAX_TIMED_UPDATES:
            return keys, {self.tick.now: keys}
        timing: Timing = {}
        for partition, instant in self.tick.facts.update_times(key, keys).items():
            timing[instant] = timing.get(instant, EMPTY) | {partition}
        return keys, timing or None

    def _data_version_changed(self, key: str) -> Keys:
        if self.previous is None:
            return EMPTY
        tick = self.tick
        partitioned = tick.definition(key) is not None
        changed = tick.facts.data_version_changed(key, tick.observable(key), partitioned)
        return changed & tick.full(key)

    def _cron_tick_passed(self, leaf: Condition, candidate: Keys) -> tuple[Keys, Timing | None]:
        if self.previous is None:
            return EMPTY, None
        tick_time = self.tick.previous_cron_tick(leaf.cron_schedule, leaf.cron_timezone)
        if tick_time < self.previous.evaluation_time:
            return EMPTY, None
        return candidate, {tick_time: candidate}


def _later(trigger: Timing, reset: Timing) -> Keys:
    """Partitions for which the trigger carries a later instant than every reset instant."""
    result: Keys = EMPTY
    for instant, keys in trigger.items():
        remaining = keys
        for other_instant, other_keys in reset.items():
            if other_instant >= instant:
                remaining = remaining - other_keys
        result = result | remaining
    return result
