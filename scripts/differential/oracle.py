"""Answers to one case: Dagster's (the oracle) and ours, in the format of a case's `expected`.

The oracle follows the steps by which the conformance cases' answers were computed: build both
definitions and the mapping, validate the definitions (upstream first), load two assets into
`Definitions`, validate the queried keys, then map them through the resolved asset graph.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import dagster as dg
from dagster._core.definitions.partitions.context import _current_ctx
from dagster._core.definitions.partitions.subset.all import AllPartitionsSubset
from dagster._core.definitions.partitions.subset.time_window import TimeWindowPartitionsSubset

from partition_deps.domain import codec

Json = dict[str, Any]
Case = dict[str, Any]  # one question in the cases.jsonl format
Answer = dict[str, Any]  # keys, the whole asset, or {"error", "message"}


@contextlib.contextmanager
def quiet_dagster() -> Iterator[None]:
    """Dagster warns that some mappings and parameters are beta or preview: true, and noise for
    a fuzzer that builds thousands of them. Only those warnings, only around the calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        warnings.simplefilter("ignore", dg.PreviewWarning)
        yield


class _Reject(Exception):
    def __init__(self, category: str, error: BaseException) -> None:
        super().__init__(category)
        self.category = category
        self.error = error


def dg_definition(data: Json | None) -> Any:
    """Dagster's partitions definition for one definition in the cases.jsonl format."""
    with quiet_dagster():
        return _dg_definition(data)


def _dg_definition(data: Json | None) -> Any:
    if data is None:
        return None
    kind = data["type"]
    if kind == "time_window":
        exclusions = []
        for item in data["exclusions"]:
            try:
                exclusions.append(datetime.fromisoformat(item))
            except ValueError:
                exclusions.append(item)
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=data["cron_schedule"],
            start=datetime.fromisoformat(data["start"]),
            end=None if data["end"] is None else datetime.fromisoformat(data["end"]),
            timezone=data["timezone"],
            fmt=data["fmt"],
            end_offset=data["end_offset"],
            exclusions=exclusions or None,
        )
    if kind == "static":
        return dg.StaticPartitionsDefinition(list(data["keys"]))
    if kind == "dynamic":
        return dg.DynamicPartitionsDefinition(name=data["name"])
    return dg.MultiPartitionsDefinition(
        {item["name"]: _dg_definition(item["partitions"]) for item in data["dimensions"]}
    )


def _dg_mapping(data: Json | None) -> Any:
    if data is None:
        return None
    kind = data["type"]
    if kind == "identity":
        return dg.IdentityPartitionMapping()
    if kind == "all":
        return dg.AllPartitionMapping()
    if kind == "last":
        return dg.LastPartitionMapping()
    if kind == "time_window":
        return dg.TimeWindowPartitionMapping(
            start_offset=data["start_offset"],
            end_offset=data["end_offset"],
            allow_nonexistent_upstream_partitions=data["allow_nonexistent_upstream_partitions"],
        )
    if kind == "static":
        table = data["downstream_partition_keys_by_upstream_partition_key"]
        return dg.StaticPartitionMapping(
            {k: (v if isinstance(v, str) else set(v)) for k, v in table.items()}
        )
    if kind == "specific":
        return dg.SpecificPartitionsPartitionMapping(list(data["partition_keys"]))
    if kind == "multi_to_single_dimension":
        return dg.MultiToSingleDimensionPartitionMapping(
            partition_dimension_name=data["partition_dimension_name"]
        )
    return dg.MultiPartitionMapping(
        {
            upstream: dg.DimensionPartitionMapping(
                dimension_name=item["dimension_name"],
                partition_mapping=_dg_mapping(item["partition_mapping"]),
            )
            for upstream, item in data["downstream_mappings_by_upstream_dimension"].items()
        }
    )


def _materialize_nothing() -> None:
    """The body of both assets: only their definitions and dependency are asked about."""


def _chain_text(error: BaseException) -> str:
    parts = []
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def _ordered(subset: Any, definition: Any) -> list[str]:
    keys = list(subset.get_partition_keys())
    if isinstance(subset, (TimeWindowPartitionsSubset, AllPartitionsSubset)):
        return keys  # Dagster's own (chronological / enumeration) order
    if not keys:
        return []
    enumeration = {key: index for index, key in enumerate(definition.get_partition_keys())}
    known = sorted((k for k in keys if k in enumeration), key=enumeration.__getitem__)
    unknown = sorted(k for k in keys if k not in enumeration)
    return known + unknown


def oracle(case: Case) -> Answer:
    """Dagster's answer for one case, in the cases.jsonl `expected` format."""
    try:
        with quiet_dagster():
            return _oracle(case)
    except _Reject as reject:
        return {"error": reject.category, "message": _chain_text(reject.error)[:500]}


def _oracle(case: Case) -> Answer:
    as_of = datetime.fromisoformat(case["as_of"])
    instance = _new_instance(case["dynamic_partitions"].items())
    with dg.partition_loading_context(effective_dt=as_of, dynamic_partitions_store=instance):
        # 1. build
        try:
            up_def = dg_definition(case["upstream"])
            down_def = dg_definition(case["downstream"])
        except Exception as error:
            raise _Reject("invalid_definition", error) from None
        try:
            mapping = _dg_mapping(case["mapping"])
        except Exception as error:
            raise _Reject("invalid_mapping", error) from None
        # 2. validate definitions, upstream first
        for definition in (up_def, down_def):
            if definition is not None:
                try:
                    definition.validate_partition_definition()
                except Exception as error:
                    raise _Reject("invalid_definition", error) from None
        # 3. load
        try:
            dep = (
                dg.AssetDep("up", partition_mapping=mapping)
                if mapping is not None
                else dg.AssetDep("up")
            )
            # Applied as calls: decorator syntax on Dagster's untyped decorators fails mypy.
            up_asset = dg.asset(name="up", partitions_def=up_def)(_materialize_nothing)
            down_asset = dg.asset(name="down", partitions_def=down_def, deps=[dep])(
                _materialize_nothing
            )
            defs = dg.Definitions(assets=[up_asset, down_asset])
            dg.Definitions.validate_loadable(defs)
            graph = defs.resolve_asset_graph()
            resolved = graph.get_partition_mapping(dg.AssetKey("down"), dg.AssetKey("up"))
        except Exception as error:
            text = _chain_text(error)
            category = "timezone_mismatch" if "don't match" in text else "invalid_mapping"
            raise _Reject(category, error) from None
        # 4. keys
        keys = case["partition_keys"]
        queried = down_def if case["direction"] == "upstream" else up_def
        ctx = _current_ctx.get()
        if queried is not None:
            for key in keys:
                try:
                    queried.validate_partition_key(key, ctx)
                except Exception as error:
                    raise _Reject("invalid_partition_key", error) from None
        # 5. map
        whole = {"partition_keys": [], "required_but_nonexistent": [], "whole_asset": True}
        try:
            if case["direction"] == "upstream":
                if up_def is None:
                    return whole
                subset = None if down_def is None else down_def.subset_with_partition_keys(keys)
                result = resolved.get_upstream_mapped_partitions_result_for_partitions(
                    subset, down_def, up_def
                )
                return {
                    "partition_keys": _ordered(result.partitions_subset, up_def),
                    "required_but_nonexistent": _ordered(
                        result.required_but_nonexistent_subset, up_def
                    ),
                }
            if down_def is None:
                return whole
            if up_def is None:
                return {
                    "partition_keys": list(down_def.get_partition_keys()),
                    "required_but_nonexistent": [],
                }
            subset = up_def.empty_subset().with_partition_keys(keys)
            result = resolved.get_downstream_partitions_for_partitions(subset, up_def, down_def)
            return {"partition_keys": _ordered(result, down_def), "required_but_nonexistent": []}
        except _Reject:
            raise
        except Exception as error:
            raise _Reject("mapping_error", error) from None


def _new_instance(dynamic_keys: Iterable[tuple[str, Sequence[str]]]) -> Any:
    """An ephemeral Dagster instance holding these dynamic keys, added one at a time in order."""
    instance = dg.DagsterInstance.ephemeral()
    for name, keys in dynamic_keys:
        for key in keys:
            instance.add_dynamic_partitions(name, [key])
    return instance


@functools.lru_cache(maxsize=64)
def _instance_cached(frozen: tuple[tuple[str, tuple[str, ...]], ...]) -> Any:
    return _new_instance(frozen)


def instance_for(dyn: dict[str, list[str]]) -> Any:
    return _instance_cached(tuple((k, tuple(v)) for k, v in sorted(dyn.items())))


def ours(raw: Case) -> Answer:
    try:
        answer = codec.answer_to_json(raw)
    except Exception as error:  # a crash in our core is a finding too
        return {"error": "CRASH", "message": f"{type(error).__name__}: {error}"[:300]}
    if "message" in answer:
        answer["message"] = answer["message"][:300]
    return answer


def same(a: Answer, b: Answer) -> bool:
    a = {k: v for k, v in a.items() if k != "message"}
    b = {k: v for k, v in b.items() if k != "message"}
    return a == b


class Timeout(BaseException):
    """Raised in the main thread when a time_limit runs out (a BaseException, so that the
    `except Exception` around each side's answer does not swallow it)."""


def _alarm(_signum: int, _frame: object) -> None:
    raise Timeout()


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise Timeout if the block runs longer than `seconds` (SIGALRM: main thread only)."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)


def timed(fn: Callable[[Case], Answer], case: Case, seconds: int = 30) -> Answer:
    try:
        with time_limit(seconds):
            return fn(case)
    except Timeout:
        return {"error": "TIMEOUT"}
