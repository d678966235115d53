"""`python -m scenarios list [suite|glob] [source=DIR]`: list scenarios with their hashes."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from scenarios.loader import ScenarioError
from scenarios.registry import SourceOptions, select, shipped_scenarios, suite_names
from scenarios.schema import pack_hash


def main(argv: list[str]) -> int:
    console = Console(width=None if sys.stdout.isatty() else 200)
    if not argv or argv[0] != "list":
        console.print("usage: python -m scenarios list [suite|id|glob] [source=DIR]\n"
                      "       python -m scenarios.check [suite|id|glob] [source=DIR]")
        return 2
    options = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
    spec = next((a for a in argv[1:] if "=" not in a), None)
    try:
        scenarios = select(spec, SourceOptions(source=options.get("source"))) if spec else shipped_scenarios()
    except ScenarioError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    table = Table(title=f"{len(scenarios)} scenarios, pack hash {pack_hash(scenarios)} "
                        f"(suites: {', '.join(suite_names())})")
    for column in ("id", "suite", "category", "variants", "backends", "hash"):
        table.add_column(column)
    for s in scenarios:
        table.add_row(s.id, s.suite, s.category, ",".join(s.variants), ",".join(s.backends), s.content_hash())
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
