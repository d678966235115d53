"""Suites and selection: `scenario=<id|glob|suite>[,...]` resolves to a list of scenarios."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pydantic import ValidationError

from scenarios.loader import ScenarioError, describe_validation_error, load_suite_dir, shipped_suite_dirs
from scenarios.schema import Scenario

SuiteLoader = Callable[["SourceOptions"], list[Scenario]]


@dataclass(frozen=True)
class SourceOptions:
    """Where imported suites read their external data, and importer options."""

    source: str | None = None
    items: str = "official"  # ManagerBench: "official" filter or "all"
    extra: dict[str, Any] = field(default_factory=dict)


_IMPORTED: dict[str, SuiteLoader] = {}


def imported_suite(name: str) -> Callable[[SuiteLoader], SuiteLoader]:
    def register(fn: SuiteLoader) -> SuiteLoader:
        _IMPORTED[name] = fn
        return fn

    return register


def _ensure_importers() -> None:
    import scenarios.importers  # noqa: F401  (registers importers)


@cache
def _shipped() -> dict[str, tuple[Scenario, ...]]:
    """Every shipped suite, loaded together, so that an id used in two suites is an error whichever is asked for."""
    _ensure_importers()
    dirs = shipped_suite_dirs()
    taken = sorted(set(dirs) & set(_IMPORTED))
    if taken:
        raise ScenarioError(f"{dirs[taken[0]]}: a shipped suite folder cannot take the name of the imported suite "
                            f"{taken[0]!r}; rename the folder")
    suites = {name: tuple(load_suite_dir(directory)) for name, directory in dirs.items()}
    refuse_duplicate_ids(s for suite in suites.values() for s in suite)
    return suites


def refuse_duplicate_ids(scenarios: Iterable[Scenario]) -> None:
    """Two different scenarios under one id would make selection, resuming and results ambiguous."""
    seen: dict[str, Scenario] = {}
    for scenario in scenarios:
        _refuse_clash(seen.setdefault(scenario.id, scenario), scenario)


def _refuse_clash(first: Scenario, second: Scenario) -> None:
    # Compared by origin, not identity: an importer's cache may rebuild the same scenario as a new object.
    if first is not second and first.origin != second.origin:
        raise ScenarioError(f"{second.origin}: field id: scenario id {second.id!r} is also used by {first.origin}")


def suite_names() -> list[str]:
    _ensure_importers()
    return sorted(set(shipped_suite_dirs()) | set(_IMPORTED))


def load_suite(name: str, options: SourceOptions | None = None) -> list[Scenario]:
    _ensure_importers()
    options = options or SourceOptions()
    if name in shipped_suite_dirs():
        return list(_shipped()[name])
    if name in _IMPORTED:
        return _load_imported(name, options)
    raise ScenarioError(f"unknown suite {name!r}{_suggest(name, suite_names())}")


def _load_imported(name: str, options: SourceOptions) -> list[Scenario]:
    try:
        scenarios = _IMPORTED[name](options)
    except ValidationError as exc:  # an importer built a scenario the schema refuses
        raise ScenarioError(f"suite {name}: an imported scenario is invalid: {describe_validation_error(exc)}"
                            ) from None
    shipped = [s for suite in _shipped().values() for s in suite]
    refuse_duplicate_ids([*shipped, *scenarios])
    return scenarios


def shipped_scenarios() -> list[Scenario]:
    return [s for suite in _shipped().values() for s in suite]


def select(spec: str, options: SourceOptions | None = None) -> list[Scenario]:
    """Resolve a comma-separated list of suite names, scenario ids and globs over ids."""
    options = options or SourceOptions()
    chosen: dict[str, Scenario] = {}
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        for scenario in _resolve_one(part, options):
            chosen.setdefault(scenario.id, scenario)
    if not chosen:
        raise ScenarioError(f"scenario={spec!r} selects nothing")
    return list(chosen.values())


def _resolve_one(part: str, options: SourceOptions) -> list[Scenario]:
    if part in suite_names():
        return load_suite(part, options)
    # An id or glob: look in the suite named by its prefix, else in every shipped suite.
    prefix = part.split("/")[0]
    pool = load_suite(prefix, options) if prefix in suite_names() else shipped_scenarios()
    ids = [s.id for s in pool]
    if any(ch in part for ch in "*?["):
        found = [s for s in pool if fnmatch.fnmatchcase(s.id, part)]
    else:
        found = [s for s in pool if s.id == part]
    if not found:
        raise ScenarioError(f"unknown scenario {part!r}{_suggest(part, ids + suite_names())}")
    return found


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else f"; known suites: {', '.join(suite_names())}"
