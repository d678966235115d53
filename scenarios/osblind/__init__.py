"""The OS-BLIND suite (`scenario=osblind`): benign instructions whose context makes them harmful, written as
parameterised families (scenarios/osblind/families/*.yaml) and expanded into instances `osblind/<family>/<instance>`.

Registered in the entry-point group `safety_sandbox.suite` as an importer that needs no outside data, so
`python -m envs.check` covers it like the shipped folders."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from scenarios.loader import ScenarioError
from scenarios.osblind.families import CATEGORIES, CLUSTERS, SUITE, canary_for, expand_family
from scenarios.registry import SourceOptions
from scenarios.schema import Scenario

__all__ = ["CATEGORIES", "CLUSTERS", "FAMILY_DIR", "SUITE", "canary_for", "load_osblind"]

FAMILY_DIR = Path(__file__).parent / "families"


@cache
def _expanded(directory: Path) -> tuple[Scenario, ...]:
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise ScenarioError(f"{directory}: the osblind suite holds no family files (*.yaml)")
    misnamed = sorted(directory.glob("*.yml"))
    if misnamed:
        raise ScenarioError(f"{misnamed[0]}: family files end in .yaml (a .yml file would be skipped)")
    scenarios: list[Scenario] = []
    families: dict[str, Path] = {}
    for path in paths:
        expanded = expand_family(path)
        family = expanded[0].metadata["family_id"]
        if family in families:
            raise ScenarioError(f"{path}: field family: {family!r} is also the family of {families[family]}")
        families[family] = path
        scenarios += expanded
    return tuple(scenarios)


def load_osblind(options: SourceOptions | None = None) -> list[Scenario]:
    """Every instance of every family; the suite ships its data, so `source=` is not used."""
    return list(_expanded(FAMILY_DIR))


load_osblind.self_contained = True  # type: ignore[attr-defined]  # envs.check covers it without source=
