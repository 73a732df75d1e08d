"""Domain core against Dagster 1.13: the same partition questions, timed in one process run.

Run it from the bench virtualenv (see bench/README.md); Dagster is a benchmark-only dependency.

Method, so that the ratios mean something on a noisy shared machine:
- Both sides get the same definitions, the same mapping and the same query in each round, and
  each round alternates which side goes first. Ratios are Dagster's median over ours, from the
  same rounds of the same run.
- By default every round asks a question never asked before in the run (`--questions fresh`):
  the queried keys differ each round, and on the whole-definition rows `as_of` moves on an hour
  a round, so no answer is served from a memo of earlier answers on either side. `as_of` moves
  on one second a round elsewhere, as "now" does in a service. `--questions repeated` asks small
  pools over and over instead, as a polling scheduler does; memoised answers then count.
- The timed region is everything a caller needs for the answer: the evaluation context, parsing
  the queried keys, the mapping, and the answer as a list of keys (as runs for the range row).
- Every timed answer of both sides is compared afterwards, outside the timed region; a row whose
  answers differ is reported as MISMATCH and the script exits with status 2.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any, Generic, Literal, TypeVar

try:
    import dagster as dg
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("dagster is not installed here: run this from the bench virtualenv (bench/README.md)")

T = TypeVar("T")

AS_OF = datetime(2025, 1, 1, tzinfo=UTC)
HOURLY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"


@dataclass(frozen=True)
class TimeDef:
    """One time-window definition, built identically for both sides."""

    cron: str
    start: datetime
    timezone: str
    fmt: str

    def ours(self) -> Any:
        from partition_deps.domain.definitions import TimeWindowPartitions

        return TimeWindowPartitions(
            cron_schedule=self.cron, start=self.start, timezone=self.timezone, fmt=self.fmt
        )

    def dagster(self) -> dg.TimeWindowPartitionsDefinition:
        return dg.TimeWindowPartitionsDefinition(
            cron_schedule=self.cron, start=self.start, timezone=self.timezone, fmt=self.fmt
        )


@dataclass(frozen=True)
class Side(Generic[T]):
    """How one side answers the i-th question: `run` is timed, `normalize` is not."""

    run: Callable[[int], T]
    normalize: Callable[[int, T], object]


Maker = Callable[[list[datetime]], Side[Any]]
"""Builds one side of a row for the given per-round `as_of` instants."""


@dataclass(frozen=True)
class Target:
    kind: Literal["ratio", "under_us", "none"]
    value: float = 0.0

    def describe(self) -> str:
        if self.kind == "ratio":
            return f">= {self.value:g}x"
        if self.kind == "under_us":
            return f"< {self.value:g} us"
        return "-"

    def passed(self, ours_us: float, ratio: float) -> bool | None:
        if self.kind == "ratio":
            return ratio >= self.value
        if self.kind == "under_us":
            return ours_us < self.value
        return None


@dataclass(frozen=True)
class Row:
    name: str
    target: Target
    warmup: int
    rounds: int
    dagster_call: str
    dagster: Side[Any]
    ours: Side[Any] | None
    ours_missing: str = ""
    when: Sequence[datetime] = ()


@dataclass(frozen=True)
class Measurement:
    row: Row
    ours_ns: list[int]
    dagster_ns: list[int]
    mismatch: str
    ours_error: str


def as_ofs(count: int, step: timedelta) -> list[datetime]:
    """One `as_of` per round, `step` later each round, as "now" moves on in a service."""
    return [AS_OF + step * i for i in range(count)]


def day_keys(first: datetime, count: int, step: timedelta) -> list[str]:
    return [(first + step * i).strftime(DAILY_FMT) for i in range(count)]


# ---------------------------------------------------------------- the two sides of each row


def ours_upstream(
    up: TimeDef, down: TimeDef, queries: Sequence[Sequence[str]], when: Sequence[datetime]
) -> Side[tuple[list[str], Any]]:
    from partition_deps.domain.definitions import Evaluation
    from partition_deps.domain.dependencies import upstream_partitions
    from partition_deps.domain.mappings.kinds import TimeWindowMapping

    up_def, down_def, mapping = up.ours(), down.ours(), TimeWindowMapping()

    def run(i: int) -> tuple[list[str], Any]:
        keys = queries[i % len(queries)]
        result = upstream_partitions(up_def, down_def, mapping, keys, Evaluation(as_of=when[i]))
        return result.partitions.keys(), result

    def normalize(i: int, raw: tuple[list[str], Any]) -> object:
        keys, result = raw
        return keys, list(result.required_but_nonexistent.keys())

    return Side(run, normalize)


def dagster_upstream(
    up: TimeDef, down: TimeDef, queries: Sequence[Sequence[str]], when: Sequence[datetime]
) -> Side[tuple[list[str], Any]]:
    up_def, down_def = up.dagster(), down.dagster()
    mapping = dg.TimeWindowPartitionMapping()

    def run(i: int) -> tuple[list[str], Any]:
        keys = queries[i % len(queries)]
        with dg.partition_loading_context(effective_dt=when[i]):
            subset = down_def.subset_with_partition_keys(keys)
            result = mapping.get_upstream_mapped_partitions_result_for_partitions(
                subset, down_def, up_def
            )
            return list(result.partitions_subset.get_partition_keys()), result

    def normalize(i: int, raw: tuple[list[str], Any]) -> object:
        keys, result = raw
        with dg.partition_loading_context(effective_dt=when[i]):
            return keys, list(result.required_but_nonexistent_subset.get_partition_keys())

    return Side(run, normalize)


def ours_all(defn: TimeDef, when: Sequence[datetime], as_runs: bool) -> Side[Any]:
    from partition_deps.domain.definitions import Evaluation
    from partition_deps.domain.partitions import all_partitions

    ours_def = defn.ours()

    def run(i: int) -> Any:
        subset = all_partitions(ours_def, Evaluation(as_of=when[i]))
        return subset.runs() if as_runs else subset.keys()

    def normalize(i: int, raw: Any) -> object:
        if as_runs:
            return [(r.first_key, r.last_key, r.count) for r in raw]
        return list(raw)

    return Side(run, normalize)


def dagster_ranges(defn: TimeDef, when: Sequence[datetime]) -> Side[tuple[list[Any], Any]]:
    dagster_def = defn.dagster()

    def run(i: int) -> tuple[list[Any], Any]:
        with dg.partition_loading_context(effective_dt=when[i]):
            subset = dagster_def.subset_with_all_partitions()
            return list(subset.get_partition_key_ranges(dagster_def)), subset

    def normalize(i: int, raw: tuple[list[Any], Any]) -> object:
        ranges, subset = raw
        with dg.partition_loading_context(effective_dt=when[i]):
            counts = [
                dagster_def.get_num_partitions_in_window(w.to_public_time_window())
                for w in subset.included_time_windows
            ]
        return [(r.start, r.end, n) for r, n in zip(ranges, counts, strict=True)]

    return Side(run, normalize)


def dagster_keys(defn: TimeDef, when: Sequence[datetime]) -> Side[list[str]]:
    dagster_def = defn.dagster()

    def run(i: int) -> list[str]:
        with dg.partition_loading_context(effective_dt=when[i]):
            return list(dagster_def.get_partition_keys())

    def normalize(i: int, raw: list[str]) -> object:
        return raw

    return Side(run, normalize)


def ours_or_reason(make: Maker, when: list[datetime]) -> tuple[Side[Any] | None, str]:
    try:
        return make(when), ""
    except (ImportError, NotImplementedError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- the rows


def recent_keys(last: datetime, count: int, step: timedelta) -> list[list[str]]:
    """`count` one-key questions, oldest first, the newest on `last`."""
    return [[k] for k in day_keys(last - step * (count - 1), count, step)]


def build_rows(scale: float, with_ours: bool, fresh: bool = True) -> list[Row]:
    def n(rounds: int) -> int:
        return max(3, round(rounds * scale))

    utc, new_york = "UTC", "America/New_York"
    daily_long = TimeDef("0 0 * * *", datetime(1972, 1, 1), utc, DAILY_FMT)
    weekly_long = TimeDef("0 0 * * 0", datetime(1972, 1, 1), utc, DAILY_FMT)
    daily = TimeDef("0 0 * * *", datetime(2015, 1, 1), utc, DAILY_FMT)
    hourly = TimeDef("0 * * * *", datetime(2015, 1, 1), utc, HOURLY_FMT)
    daily_ny = TimeDef("0 0 * * *", datetime(2015, 1, 1), new_york, DAILY_FMT)
    hourly_ny = TimeDef("0 * * * *", datetime(2015, 1, 1), new_york, HOURLY_FMT)

    # Fresh: one question per round, never asked before in the run (the pool is as long as the
    # row), so no answer can come from a memo of earlier answers, ours or Dagster's. Repeated:
    # small pools asked over and over, as a polling scheduler does. The daily pools cross New
    # York's 23- and 25-hour days.
    def pool(fresh_count: int, repeated_count: int, step: timedelta) -> list[list[str]]:
        last = datetime(2024, 12, 22) if step == timedelta(weeks=1) else datetime(2024, 12, 30)
        return recent_keys(last, fresh_count if fresh else repeated_count, step)

    one_key_warmup, one_key_rounds = 100, n(2000)
    weeks = pool(one_key_warmup + one_key_rounds, 256, timedelta(weeks=1))
    if weeks[0][0] < weekly_long.start.strftime(DAILY_FMT):
        sys.exit(f"--scale {scale} needs more distinct weekly keys than 1972-2024 holds")
    days = pool(one_key_warmup + one_key_rounds, 512, timedelta(days=1))
    year_warmup, year_rounds = 5, n(80)
    years = [
        day_keys(datetime(2023, 1, 1) + timedelta(days=j), 365, timedelta(days=1))
        for j in range(year_warmup + year_rounds if fresh else 40)
    ]
    # The whole-definition rows have no keys to vary: fresh moves as_of on one hour a round,
    # so each round asks about a different set of partitions.
    whole_step = timedelta(hours=1) if fresh else timedelta(seconds=1)

    upstream_call = (
        "partition_loading_context(effective_dt) + subset_with_partition_keys + "
        "TimeWindowPartitionMapping.get_upstream_mapped_partitions_result_for_partitions + "
        "partitions_subset.get_partition_keys()"
    )

    def row(
        name: str,
        target: Target,
        counts: tuple[int, int],
        call: str,
        dagster: Maker,
        ours: Maker,
        step: timedelta = timedelta(seconds=1),
    ) -> Row:
        warmup, rounds = counts
        when = as_ofs(warmup + rounds, step)
        our_side, missing = ours_or_reason(ours, when) if with_ours else (None, "skipped")
        return Row(name, target, warmup, rounds, call, dagster(when), our_side, missing, when)

    one_key = (one_key_warmup, one_key_rounds)
    return [
        row(
            "weekly <- daily, 1 key, UTC",
            Target("ratio", 50),
            one_key,
            upstream_call,
            lambda w: dagster_upstream(daily_long, weekly_long, weeks, w),
            lambda w: ours_upstream(daily_long, weekly_long, weeks, w),
        ),
        row(
            "daily <- hourly, 1 key, UTC",
            Target("ratio", 20),
            one_key,
            upstream_call,
            lambda w: dagster_upstream(hourly, daily, days, w),
            lambda w: ours_upstream(hourly, daily, days, w),
        ),
        row(
            "daily <- hourly, 1 key, New York",
            Target("ratio", 20),
            one_key,
            upstream_call,
            lambda w: dagster_upstream(hourly_ny, daily_ny, days, w),
            lambda w: ours_upstream(hourly_ny, daily_ny, days, w),
        ),
        row(
            "365 daily keys -> hourly keys, UTC",
            Target("ratio", 100),
            (year_warmup, year_rounds),
            upstream_call,
            lambda w: dagster_upstream(hourly, daily, years, w),
            lambda w: ours_upstream(hourly, daily, years, w),
        ),
        row(
            "10y hourly as ranges, UTC",
            Target("under_us", 1000),
            (100, n(2000)),
            "partition_loading_context + subset_with_all_partitions().get_partition_key_ranges()",
            lambda w: dagster_ranges(hourly, w),
            lambda w: ours_all(hourly, w, as_runs=True),
            whole_step,
        ),
        row(
            "10y hourly keys listed, UTC",
            Target("none"),
            (1, n(10)),
            "partition_loading_context + get_partition_keys()",
            lambda w: dagster_keys(hourly, w),
            lambda w: ours_all(hourly, w, as_runs=False),
            whole_step,
        ),
    ]


# ---------------------------------------------------------------- measuring


def timed(side: Side[Any], i: int) -> tuple[int, Any]:
    start = time.perf_counter_ns()
    answer = side.run(i)
    return time.perf_counter_ns() - start, answer


def measure(row: Row) -> Measurement:
    """Alternate the two sides round by round (ours first on even rounds) on the same question."""
    times: dict[str, list[int]] = {"ours": [], "dagster": []}
    answers: dict[str, list[Any]] = {"ours": [], "dagster": []}
    sides: dict[str, Side[Any] | None] = {"ours": row.ours, "dagster": row.dagster}
    ours_error = row.ours_missing
    gc.collect()
    for i in range(row.warmup + row.rounds):
        for name in ("ours", "dagster") if i % 2 == 0 else ("dagster", "ours"):
            side = sides[name]
            if side is None:
                continue
            try:
                ns, answer = timed(side, i)
            except Exception as exc:
                if name == "dagster":
                    raise
                # The core is being written while this bench is: report, keep timing Dagster.
                sides["ours"], ours_error = None, f"round {i}: {type(exc).__name__}: {exc}"
                continue
            answers[name].append(answer)
            if i >= row.warmup:
                times[name].append(ns)
    ours = sides["ours"]
    if ours is None:
        return Measurement(row, [], times["dagster"], "", ours_error)
    mismatch = compare(row, ours, answers["ours"], answers["dagster"])
    return Measurement(row, times["ours"], times["dagster"], mismatch, ours_error)


def compare(row: Row, ours: Side[Any], ours_answers: list[Any], dagster_answers: list[Any]) -> str:
    for i, (mine, theirs) in enumerate(zip(ours_answers, dagster_answers, strict=True)):
        a, b = ours.normalize(i, mine), row.dagster.normalize(i, theirs)
        if a != b:
            return f"round {i} (as_of {row.when[i].isoformat()}): {difference(a, b)}"
    return ""


def difference(ours: object, dagster: object) -> str:
    """Where two normalized answers first differ, short enough to read."""
    if isinstance(ours, tuple) and isinstance(dagster, tuple) and len(ours) == len(dagster):
        for part, (a, b) in enumerate(zip(ours, dagster, strict=True)):
            if a != b:
                return f"part {part}: {difference(a, b)}"
    if isinstance(ours, list) and isinstance(dagster, list):
        sizes = f"ours {len(ours)} items, Dagster {len(dagster)}"
        for j, (a, b) in enumerate(zip(ours, dagster, strict=False)):
            if a != b:
                return f"{sizes}; first difference at {j}: ours {short(a)}, Dagster {short(b)}"
        longer = ours if len(ours) > len(dagster) else dagster
        return f"{sizes}; first extra item {short(longer[min(len(ours), len(dagster))])}"
    return f"ours {short(ours)} != Dagster {short(dagster)}"


def short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 300 else text[:300] + "..."


# ---------------------------------------------------------------- reporting


def us(ns_values: Sequence[int]) -> float:
    return statistics.median(ns_values) / 1000.0


def report(results: Sequence[Measurement], started: float) -> int:
    header = ("row", "ours med us", "Dagster med us", "ratio", "paired", "target", "result", "n")
    lines: list[tuple[str, ...]] = []
    status = 0
    for m in results:
        dagster_us = us(m.dagster_ns)
        if not m.ours_ns:
            lines.append(
                (
                    m.row.name,
                    "-",
                    f"{dagster_us:.1f}",
                    "-",
                    "-",
                    m.row.target.describe(),
                    "NOT RUN",
                    str(len(m.dagster_ns)),
                )
            )
            status = max(status, 1)
            continue
        ours_us = us(m.ours_ns)
        ratio = dagster_us / ours_us
        paired = statistics.median(d / o for d, o in zip(m.dagster_ns, m.ours_ns, strict=True))
        verdict = m.row.target.passed(ours_us, ratio)
        if m.mismatch:
            result, status = "MISMATCH", 2
        elif verdict is None:
            result = "info"
        elif verdict:
            result = "pass"
        else:
            result, status = "FAIL", max(status, 1)
        lines.append(
            (
                m.row.name,
                f"{ours_us:.1f}",
                f"{dagster_us:.1f}",
                f"{ratio:.1f}x",
                f"{paired:.1f}x",
                m.row.target.describe(),
                result,
                str(len(m.ours_ns)),
            )
        )
    widths = [max(len(r[c]) for r in [header, *lines]) for c in range(len(header))]
    for line in [header, *lines]:
        cells = [line[0].ljust(widths[0])] + [
            v.rjust(w) for v, w in zip(line[1:], widths[1:], strict=True)
        ]
        print("  ".join(cells))
    print()
    print("ratio = Dagster median / ours median; paired = median of per-round Dagster/ours.")
    for m in results:
        if m.ours_error:
            print(f"ours not run on '{m.row.name}': {m.ours_error}")
        if m.mismatch:
            print(f"MISMATCH on '{m.row.name}': {m.mismatch}")
    print("Dagster calls timed:")
    for call in dict.fromkeys(m.row.dagster_call for m in results):
        print(f"  {call}")
    print(
        f"wall time {time.monotonic() - started:.0f} s; load average now "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return status


def profile_ours(rows: Sequence[Row], top: int = 30) -> int:
    """Run our side of each row under cProfile and print where the time goes."""
    for row in rows:
        if row.ours is None:
            print(f"ours not available on '{row.name}': {row.ours_missing}")
            continue
        profiler = cProfile.Profile()
        try:
            for i in range(row.warmup):
                row.ours.run(i)
            profiler.enable()
            for i in range(row.warmup, row.warmup + row.rounds):
                row.ours.run(i)
        except Exception as exc:
            print(f"ours failed on '{row.name}': {type(exc).__name__}: {exc}")
            continue
        finally:
            profiler.disable()
        print(f"== {row.name}: {row.rounds} calls after {row.warmup} unprofiled warm-up calls")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every row's round count (default 1.0, about 2 minutes)",
    )
    parser.add_argument(
        "--dagster-only",
        action="store_true",
        help="time Dagster alone (while the domain core is not ready)",
    )
    parser.add_argument(
        "--row",
        action="append",
        default=[],
        help="only rows whose name contains this text (repeatable)",
    )
    parser.add_argument(
        "--questions",
        choices=("fresh", "repeated"),
        default="fresh",
        help="fresh (default): no question is asked twice in a run, so memoised answers never"
        " serve a timed round; repeated: small pools asked over and over (a polling scheduler)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of timing, profile our side of the selected rows (cProfile, by cumtime)",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    print(
        f"python {platform.python_version()}, dagster {metadata.version('dagster')}, "
        f"partition-deps {metadata.version('partition-deps')}, {platform.platform()}, "
        f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    fresh = args.questions == "fresh"
    print(
        "questions: "
        + (
            "fresh (never asked before in the run)"
            if fresh
            else "repeated (small pools asked again and again)"
        )
        + f"; as_of from {AS_OF.isoformat()}, one second later a round"
        + (" (one hour on the 10y rows)" if fresh else ""),
        flush=True,
    )
    rows = build_rows(args.scale, with_ours=not args.dagster_only, fresh=fresh)
    if args.row:
        rows = [r for r in rows if any(text in r.name for text in args.row)]
    if args.profile:
        return profile_ours(rows)
    results = []
    for row in rows:
        row_started = time.monotonic()
        results.append(measure(row))
        print(f"  measured {row.name} in {time.monotonic() - row_started:.1f} s", flush=True)
    print()
    return report(results, started)


if __name__ == "__main__":
    sys.exit(main())
