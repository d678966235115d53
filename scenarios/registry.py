"""Suites and selection: `scenario=<id|glob|suite>[,...]` resolves to a list of scenarios."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from scenarios.loader import ScenarioError, load_suite_dir, shipped_suite_dirs
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
def _shipped(name: str) -> tuple[Scenario, ...]:
    return tuple(load_suite_dir(shipped_suite_dirs()[name]))


def suite_names() -> list[str]:
    _ensure_importers()
    return sorted(set(shipped_suite_dirs()) | set(_IMPORTED))


def load_suite(name: str, options: SourceOptions | None = None) -> list[Scenario]:
    _ensure_importers()
    options = options or SourceOptions()
    if name in shipped_suite_dirs():
        return list(_shipped(name))
    if name in _IMPORTED:
        return _IMPORTED[name](options)
    raise ScenarioError(f"unknown suite {name!r}{_suggest(name, suite_names())}")


def shipped_scenarios() -> list[Scenario]:
    return [s for name in shipped_suite_dirs() for s in _shipped(name)]


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
