"""`python -m scenarios list [suite|id|glob] [source=DIR] [items=official|all]`: list scenarios with their hashes."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from envs.cli_args import ArgumentError, one_line, split_key_values, wants_help
from scenarios.loader import ScenarioError
from scenarios.registry import SourceOptions, select, shipped_scenarios, suite_names
from scenarios.schema import pack_hash

USAGE = ("usage: python -m scenarios list [suite|id|glob] [source=DIR] [items=official|all]\n"
         "       python -m envs.check [suite|id|glob] [source=DIR] [items=official|all] [backends=sim,...] "
         "[workers=N]")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_help(argv):
        print(USAGE)
        return 0
    try:
        if not argv or argv[0] != "list":
            raise ArgumentError(f"unknown command {argv[0]!r}; the command is 'list'" if argv else
                                "missing command; try: python -m scenarios list")
        positional, options = split_key_values(argv[1:], ("source", "items"), max_positional=1)
        source = SourceOptions(source=options.get("source"), items=check_items(options.get("items", "official")))
        scenarios = select(positional[0], source) if positional else shipped_scenarios()
    except (ArgumentError, ScenarioError) as exc:  # ScenarioError is a ValueError; both are bad input here
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    console = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"{len(scenarios)} scenarios, pack hash {pack_hash(scenarios)} "
                        f"(suites: {', '.join(suite_names())})")
    for column in ("id", "suite", "category", "variants", "backends", "hash"):
        table.add_column(column)
    for s in scenarios:
        table.add_row(s.id, s.suite, s.category, ",".join(s.variants), ",".join(s.backends), s.content_hash())
    console.print(table)
    return 0


def check_items(items: str) -> str:
    if items not in ("official", "all"):
        raise ArgumentError(f"items={items!r}: must be official or all")
    return items


if __name__ == "__main__":
    sys.exit(main())
