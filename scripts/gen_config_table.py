"""Write the README's Configuration table from service/partition_deps/options.py (or check it).

Usage:
    python scripts/gen_config_table.py           # rewrite the table in README.md
    python scripts/gen_config_table.py --check   # exit 1 if README.md's table is stale

The table is the `serve` options, in the order options.py lists them, between two marker
comments in README.md; everything around it is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from partition_deps import options

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = (
    "<!-- configuration table: scripts/gen_config_table.py writes it from"
    " service/partition_deps/options.py -->\n"
)
END = "<!-- end of configuration table -->\n"


def row(option: options.Option) -> str:
    flag = f"`{option.flag}`" + (" (repeatable)" if option.repeatable else "")
    meaning = option.meaning + (f"; see {option.see}" if option.see else "")
    return (
        f"| {flag} | `{option.env}`{option.env_note} | {option.default_markdown()} | {meaning} |\n"
    )


def table() -> str:
    rows = "".join(row(option) for option in options.of_command("serve"))
    return "| flag | environment | default | meaning |\n|---|---|---|---|\n" + rows


def with_table(readme: str) -> str:
    """`readme` with the text between the markers replaced by the table."""
    start = readme.index(BEGIN) + len(BEGIN)
    return readme[:start] + table() + readme[readme.index(END, start) :]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the table is stale")
    args = parser.parse_args()
    current = README.read_text()
    fresh = with_table(current)
    if args.check:
        if fresh != current:
            print(
                "README.md's configuration table is stale; run: python scripts/gen_config_table.py",
                file=sys.stderr,
            )
            return 1
        print("README.md's configuration table is up to date")
        return 0
    README.write_text(fresh)
    print("wrote README.md's configuration table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
