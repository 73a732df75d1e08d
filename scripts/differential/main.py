"""The modes of the differential fuzzer and its command line (see the package docstring)."""

from __future__ import annotations

import argparse
import faulthandler
import json
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

from scripts.differential import DAGSTER_VENV_HELP, REPO
from scripts.differential.cron import (
    dagster_accepts,
    ours_accepts,
    run_cron_syntax,
    run_cron_ticks,
    run_dst_sweep,
)
from scripts.differential.generate import Gen
from scripts.differential.minimise import diff_kind, disagree, known_pattern, minimise, signature
from scripts.differential.oracle import Case, Json, Timeout, oracle, ours, same, time_limit, timed

CASES_FILE = REPO / "tests" / "conformance" / "cases.jsonl"
FINDINGS_FILE = REPO / "scripts" / "differential-findings.jsonl"


def json_lines(path: Path) -> Iterator[Json]:
    """The JSON object of each non-blank line."""
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def check_oracle(path: Path, limit: int | None) -> int:
    bad = 0
    total = 0
    start = time.time()
    for case in json_lines(path):
        total += 1
        got = oracle(case)
        if not same(got, case["expected"]):
            bad += 1
            print(
                json.dumps({"id": case["id"], "expected": case["expected"], "oracle": got})[:1500]
            )
        if limit and total >= limit:
            break
    print(f"oracle: {total - bad}/{total} agree ({time.time() - start:.0f}s)", file=sys.stderr)
    return bad


def _open_findings() -> set[str]:
    """Ids of the reported findings that still differ: their patterns are counted, not
    reported again."""
    if not FINDINGS_FILE.exists():
        return set()
    return {
        item["id"]
        for item in json_lines(FINDINGS_FILE)
        if item.get("status", "differs") == "differs"
    }


def _generate(gen: Gen, n: int) -> Case | None:
    try:
        with time_limit(30):
            return gen.case()
    except Timeout:
        print(f"generator timeout at {n}", file=sys.stderr)
    except Exception:
        traceback.print_exc()
    return None


def run_random(count: int, seed: int, findings: Path | None, show: bool) -> None:
    gen = Gen(seed)
    seen: dict[str, int] = {}
    open_findings = _open_findings()
    if findings and findings.exists():
        for item in json_lines(findings):
            seen[item.get("signature", "")] = 0
    started = time.time()
    bad = 0
    for n in range(count):
        case = _generate(gen, n)
        if case is None:
            continue
        case["id"] = f"fz-s{seed}-{n:05d}"
        if show and n % 50 == 0:
            print(f"  .. {n} {time.time() - started:.0f}s", file=sys.stderr, flush=True)
        result = disagree(case)
        if result is None:
            continue
        bad += 1
        expected, got = result
        if "TIMEOUT" in (expected.get("error"), got.get("error")):
            print(
                json.dumps(
                    {"signature": "TIMEOUT", "case": dict(case, expected=expected), "ours": got}
                )[:3000],
                file=sys.stderr,
            )
            continue
        known = known_pattern(case, expected, got)
        if known and any(fid.startswith(known) for fid in open_findings):
            seen[f"known {known}"] = seen.get(f"known {known}", 0) + 1
            continue
        sig = signature(case, expected, got)
        if sig in seen:
            seen[sig] += 1
            continue
        seen[sig] = 1
        small = minimise(case, diff_kind(expected, got))
        small_result = disagree(small) or result
        line = {
            "signature": sig,
            "case": dict(small, expected=small_result[0]),
            "ours": small_result[1],
        }
        print(json.dumps(line), flush=True)
        if findings:
            with (findings.with_suffix(".raw.jsonl")).open("a") as out:
                out.write(json.dumps(line) + "\n")
        if show:
            print(f"  [{n}] {sig}", file=sys.stderr, flush=True)
    print(
        f"ran {count} cases seed {seed}: {bad} disagreements, {len(seen)} signatures, "
        f"{time.time() - started:.0f}s",
        file=sys.stderr,
    )
    for sig, hits in sorted(seen.items(), key=lambda item: -item[1]):
        if hits:
            print(f"  {hits:5d}  {sig}", file=sys.stderr)


def replay(path: Path) -> None:
    """Re-run each case of a file: print whether ours and Dagster still disagree."""
    for item in json_lines(path):
        case = item.get("case", item)
        expected = timed(oracle, case)
        got = timed(ours, case)
        status = "AGREE" if same(expected, got) else "DIFFER"
        print(
            f"{status} {case.get('id')}: dagster={json.dumps(expected)[:200]} "
            f"ours={json.dumps(got)[:200]}"
        )


def _refreshed(item: Json) -> Json:
    if "cron" in item:  # a cron-syntax finding
        item["dagster"] = dagster_accepts(item["cron"])
        item["ours"] = ours_accepts(item["cron"])
        differs = item["dagster"].split()[0] != item["ours"].split()[0]
        item["status"] = "differs" if differs else "agrees now"
        return item
    case = {k: v for k, v in item["case"].items() if k != "expected"}
    expected = timed(oracle, case, 300)
    got = timed(ours, case)
    item["case"] = dict(case, expected=expected)
    item["ours"] = got
    item["status"] = "agrees now" if same(expected, got) else "differs"
    return item


def refresh_findings(path: Path) -> None:
    """Recompute `case.expected` (Dagster) and `ours` for every finding; mark fixed ones."""
    lines = []
    for item in json_lines(path):
        refreshed = _refreshed(item)
        print(f"{refreshed['status']:10s} {refreshed['id']}", file=sys.stderr)
        lines.append(json.dumps(refreshed, ensure_ascii=False))
    path.write_text("\n".join(lines) + "\n")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.differential",
        description="Differential fuzzer: our domain core against real Dagster 1.13.29.",
    )
    parser.add_argument("--dagster-venv", type=Path, default=None, help=DAGSTER_VENV_HELP)
    parser.add_argument(
        "--check-oracle",
        action="store_true",
        help="the oracle must reproduce every `expected` of --cases-file",
    )
    parser.add_argument(
        "--cases-file",
        type=Path,
        default=CASES_FILE,
        help="conformance cases for --check-oracle (default: the repository's)",
    )
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--findings", default=None, help="append raw new patterns next to FILE")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument(
        "--refresh-findings",
        default=None,
        metavar="FILE",
        help="recompute Dagster's and our answers for each finding in FILE",
    )
    parser.add_argument(
        "--replay",
        default=None,
        help="re-run the cases of a jsonl file (lines with `case` or bare cases)",
    )
    parser.add_argument(
        "--dst-sweep",
        action="store_true",
        help="keys, validity and windows around real DST transitions",
    )
    parser.add_argument(
        "--cron-syntax",
        action="store_true",
        help="compare cron accept/reject on --cases random strings",
    )
    parser.add_argument(
        "--cron-ticks",
        action="store_true",
        help="compare tick sequences of --cases random cron x zone definitions",
    )
    return parser


def main(argv: list[str]) -> None:
    faulthandler.register(signal.SIGUSR1)
    args = parser().parse_args(argv)
    if args.check_oracle:
        sys.exit(1 if check_oracle(args.cases_file, args.limit) else 0)
    if args.refresh_findings:
        refresh_findings(Path(args.refresh_findings))
    elif args.replay:
        replay(Path(args.replay))
    elif args.dst_sweep:
        run_dst_sweep(args.cases, args.seed)
    elif args.cron_syntax:
        run_cron_syntax(args.cases, args.seed)
    elif args.cron_ticks:
        run_cron_ticks(args.cases, args.seed)
    else:
        findings = Path(args.findings) if args.findings else None
        run_random(args.cases, args.seed, findings, args.verbose)
