"""`python -m scripts.differential`: runs the fuzzer, in the Dagster virtualenv when this
interpreter has no dagster."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from scripts.differential import DAGSTER_VENV_HELP, DEFAULT_DAGSTER_VENV, REPO


def _run_in_dagster_venv(argv: list[str]) -> None:
    """Replace this process by the same command under the Dagster virtualenv's Python."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dagster-venv", type=Path, default=None, help=DAGSTER_VENV_HELP)
    options, _ = pre.parse_known_args(argv)
    venv = options.dagster_venv or Path(os.environ.get("DAGSTER_VENV") or DEFAULT_DAGSTER_VENV)
    python = venv / "bin" / "python"
    if Path(sys.prefix).resolve() == venv.resolve():
        sys.exit(f"the virtualenv {venv} has no dagster: pip install -e '.[bench]' there")
    if not python.exists():
        sys.exit(
            f"no dagster here and no virtualenv at {venv}: make it as the docstring of "
            "scripts/differential/__init__.py says, or name one with --dagster-venv"
        )
    # This checkout's domain core, whichever checkout the virtualenv was installed from.
    paths = [str(REPO / "service"), str(REPO), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    os.execve(python, [str(python), "-m", "scripts.differential", *argv], env)


if __name__ == "__main__":
    if importlib.util.find_spec("dagster") is None:
        _run_in_dagster_venv(sys.argv[1:])
    from scripts.differential.main import main

    main(sys.argv[1:])
