"""Suites and selection: `scenario=<id|glob|suite>[,...]` resolves to a list of scenarios.

Suites are found by name through the entry-point group `safety_sandbox.suite` (see pyproject.toml): a suite folder
(YAML files with references) or an importer that reads data the user points at."""

from __future__ import annotations

import difflib
import fnmatch
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from envs.plugins import Entry, PluginError, Registry, UnknownPart, entry_points_of
from scenarios.loader import ScenarioError, describe_validation_error, load_suite_dir
from scenarios.schema import Scenario
from scenarios.suite_ids import declared_ids

SuiteLoader = Callable[["SourceOptions"], list[Scenario]]


@dataclass(frozen=True)
class SourceOptions:
    """Where imported suites read their external data, and importer options."""

    source: str | None = None
    items: str = "official"  # ManagerBench: "official" filter or "all"
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteFolder:
    """A suite written as YAML files in one folder (a shipped suite): every scenario carries good and bad references
    and names the suite it is registered as."""

    path: Path

    @classmethod
    def beside(cls, module_file: str, *parts: str) -> SuiteFolder:
        """The folder `parts` next to a module, e.g. `SuiteFolder.beside(__file__, "my-suite")`."""
        return cls(Path(module_file).parent.joinpath(*parts))


def _suite_part(obj: object) -> object:
    if isinstance(obj, SuiteFolder) or (callable(obj) and not isinstance(obj, type)):
        return obj
    raise TypeError("a scenarios.registry.SuiteFolder or an importer function (SourceOptions -> list[Scenario])")


# Found through the entry-point group `safety_sandbox.suite`; each entry point names a SuiteFolder or an importer.
SUITES: Registry[SuiteFolder | SuiteLoader] = Registry("suite", _suite_part)


def imported_suite(name: str) -> Callable[[SuiteLoader], SuiteLoader]:
    """Register an importer in this process only (tests); installed packages declare an entry point instead."""

    def register(fn: SuiteLoader) -> SuiteLoader:
        return SUITES.add(name, fn)

    return register


def folder_suites(root: Path) -> list[Entry]:
    """A suite for every sub-folder of `root` that holds scenario files, named after the folder."""
    found = sorted(d for d in root.iterdir() if d.is_dir() and any(d.glob("*.yaml")))
    return [Entry("suite", d.name, str(d), f"the folder {d}", partial(SuiteFolder, d)) for d in found]


def with_folder_suites(root: Path) -> Callable[[str], list[Entry]]:
    """For `SUITES.discover`: the installed importers of outside data, with the installed shipped suites (folders,
    and importers of data they ship, marked `self_contained`) replaced by the folders under `root` (how a test sets
    up suites of its own and nothing else)."""

    def shipped(part: object) -> bool:
        return isinstance(part, SuiteFolder) or getattr(part, "self_contained", False)

    def discover(kind: str) -> list[Entry]:
        importers = [e for e in entry_points_of(kind) if not shipped(e.load())]
        return [*importers, *folder_suites(root)]

    return discover


def _suite(name: str) -> SuiteFolder | SuiteLoader:
    try:
        return SUITES.get(name)
    except UnknownPart:
        raise ScenarioError(f"unknown suite {name!r}{_suggest(name, suite_names())}") from None
    except PluginError as exc:
        raise ScenarioError(str(exc)) from None


class ShippedSuites:
    """Every shipped suite folder and the ids its files declare (read, not validated: scenarios.suite_ids), so that an
    id used in two suites is an error whichever suite is asked for; a suite's scenarios are loaded and validated the
    first time it is asked for, so a run over one suite does not pay for the others."""

    def __init__(self, folders: dict[str, SuiteFolder]) -> None:
        self.folders = folders
        self.declared: dict[str, str] = {}  # id -> the file that declares it (as a scenario's origin names it)
        self._loaded: dict[str, tuple[Scenario, ...]] = {}
        self._lock = threading.Lock()
        for folder in folders.values():
            files = sorted(folder.path.glob("*.yaml")) if folder.path.is_dir() else []
            in_folder: set[str] = set()
            for scenario_id, path in declared_ids(files):
                first = self.declared.setdefault(scenario_id, str(path))
                if first != str(path) and scenario_id not in in_folder:  # a clash inside one folder: load_suite_dir
                    raise ScenarioError(f"{path}: field id: scenario id {scenario_id!r} is also used by {first}")
                in_folder.add(scenario_id)

    def suite(self, name: str) -> tuple[Scenario, ...]:
        with self._lock:  # a suite is loaded once, even when several threads ask at once
            if name not in self._loaded:
                scenarios = _load_folder(name, self.folders[name])
                self._loaded[name] = tuple(scenarios)
                for scenario in scenarios:  # the file's id as validated is the id it declared
                    self.refuse_clash(scenario)
            return self._loaded[name]

    def everything(self) -> list[Scenario]:
        return [s for name in self.folders for s in self.suite(name)]

    def refuse_clash(self, scenario: Scenario) -> None:
        """`scenario` (shipped or imported) may not take an id that another shipped file declares."""
        first = self.declared.get(scenario.id)
        if first is not None and first != scenario.origin:
            raise ScenarioError(f"{scenario.origin}: field id: scenario id {scenario.id!r} is also used by {first}")


@cache
def _shipped() -> ShippedSuites:
    return ShippedSuites({name: part for name in suite_names() if isinstance(part := _suite(name), SuiteFolder)})


def _load_folder(name: str, folder: SuiteFolder) -> list[Scenario]:
    if not folder.path.is_dir() or not any(folder.path.glob("*.yaml")):
        raise ScenarioError(f"{folder.path}: suite {name!r} is registered as this folder, which holds no scenario "
                            "files (*.yaml)")
    return load_suite_dir(folder.path, name)


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
    """Every registered suite; nothing is imported."""
    return SUITES.names()


def load_suite(name: str, options: SourceOptions | None = None) -> list[Scenario]:
    options = options or SourceOptions()
    part = _suite(name)
    if isinstance(part, SuiteFolder):
        return list(_shipped().suite(name))
    return _load_imported(name, part, options)


def _load_imported(name: str, importer: SuiteLoader, options: SourceOptions) -> list[Scenario]:
    try:
        scenarios = importer(options)
    except ValidationError as exc:  # an importer built a scenario the schema refuses
        raise ScenarioError(f"suite {name}: an imported scenario is invalid: {describe_validation_error(exc)}"
                            ) from None
    shipped = _shipped()
    for scenario in scenarios:
        shipped.refuse_clash(scenario)
    refuse_duplicate_ids(scenarios)
    return scenarios


def shipped_scenarios() -> list[Scenario]:
    return _shipped().everything()


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
