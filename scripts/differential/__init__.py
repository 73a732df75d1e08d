"""Differential fuzzer: our domain core against real Dagster 1.13.29, from the repository root.

Dagster is never a dependency of the service: it lives in a virtualenv of its own, the one the
benchmarks use (`bench/.venv-dagster`, git-ignored; another with `--dagster-venv DIR` or
`DAGSTER_VENV`). Made once with

    python3.11 -m venv bench/.venv-dagster && bench/.venv-dagster/bin/pip install -e '.[bench]'

`python -m scripts.differential` then runs itself in that virtualenv, with this checkout's
`service/` first on its path:

    python -m scripts.differential --check-oracle                 # oracle vs cases.jsonl
    python -m scripts.differential --cases 2000 --seed 1          # random cases
    python -m scripts.differential --cron-syntax --cases 5000 --seed 1
    python -m scripts.differential --cron-ticks --cases 300 --seed 1

The oracle computes Dagster's answer to a case in the format of tests/conformance/cases.jsonl,
by the steps that computed the answers recorded there (`oracle`). Each disagreement is printed
as one JSON line: the case (with Dagster's answer as `expected`) plus `ours`. `--findings FILE`
appends new distinct patterns to a findings file.

Modules: `oracle` (both answers to one case), `generate` (random cases), `minimise` (kinds,
signatures, smaller cases, known findings), `cron` (cron syntax, tick sequences, DST sweep),
`main` (the modes and the command line).
"""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_DAGSTER_VENV = REPO / "bench" / ".venv-dagster"
DAGSTER_VENV_HELP = (
    "the virtualenv with dagster==1.13.29 to run in when this interpreter has no dagster "
    "(default: $DAGSTER_VENV, else bench/.venv-dagster)"
)
