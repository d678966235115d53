"""One way to register parts: Python entry points in the groups `safety_sandbox.<kind>`.

The project declares its own backends, sandbox providers, tools, agents, suites, transforms and metrics in
pyproject.toml exactly as an outside package would, so a package installed beside it adds a part with no edit
here. Names are listed from package metadata without importing anything; a part's module is imported the first
time that part is asked for by name. This module imports only the standard library: every layer may use it.
"""

from __future__ import annotations

import difflib
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import Generic, TypeVar

GROUP_PREFIX = "safety_sandbox."
# Every kind of part; `judge` is the group judges will use (none ship yet); `desktop_view` an app's web view.
KINDS = ("app", "check", "backend", "backend_info", "sandbox_provider", "tool", "agent", "suite", "transform",
         "metric", "judge", "desktop_view")
IN_PROCESS = "this process"  # who registered a part added by `Registry.add` rather than by an entry point

T = TypeVar("T")


class PluginError(ValueError):
    """A part that cannot be used: registered twice, fails to load, or points to the wrong kind of object."""


class UnknownPart(PluginError):
    """No part of that kind has that name."""


def group(kind: str) -> str:
    return GROUP_PREFIX + kind


@dataclass(frozen=True)
class Entry:
    """One registration of a part: where it comes from, before anything is imported."""

    kind: str
    name: str
    target: str  # what it points to: "module:attribute" for an entry point
    origin: str  # who registered it, for messages: "package P (entry point name = module:attribute)"
    load: Callable[[], object]


_generation = 0  # bumped by refresh_installed, so every registry lists its entries again
_registries: dict[str, weakref.WeakSet[Registry]] = {}  # every registry made in this process, by kind


@cache
def _installed_entry_points() -> metadata.EntryPoints:
    # One scan of the installed packages' metadata per process (~40 ms), made on first use, never at import.
    return metadata.entry_points()


def entry_points_of(kind: str) -> list[Entry]:
    """The entry points every installed package declares for `kind` (the same package found twice on sys.path is
    counted once, as importlib.metadata does)."""
    found = []
    for ep in _installed_entry_points().select(group=group(kind)):
        owner = ep.dist.name if ep.dist is not None else "an unnamed package"
        found.append(Entry(kind=kind, name=ep.name, target=ep.value,
                           origin=f"package {owner} (entry point {ep.name} = {ep.value})", load=ep.load))
    return found


def names_of(kind: str) -> list[str]:
    """Every name of `kind`, installed or added in this process, with nothing imported: how a lower layer learns
    the names a higher layer's registry holds (a scenario's `backends:` are checked this way)."""
    names = set(_installed_names(kind, _generation))
    for registry in list(_registries.get(kind, ())):
        names.update(registry.names())
    return sorted(names)


@cache
def _installed_names(kind: str, generation: int) -> frozenset[str]:
    # Scenario validation asks for every scenario (2,440 official ones): list once per scan, not per call.
    return frozenset(ep.name for ep in _installed_entry_points().select(group=group(kind)))


def refresh_installed() -> None:
    """Forget the scan, e.g. after `pip install` in this process."""
    global _generation
    _installed_entry_points.cache_clear()
    _generation += 1



def subclass_of(base: type) -> Callable[[object], object]:
    def check(obj: object) -> object:
        if not (isinstance(obj, type) and issubclass(obj, base)):
            raise TypeError(f"a subclass of {base.__module__}.{base.__qualname__}")
        return obj

    return check


def instance_of(*types: type) -> Callable[[object], object]:
    def check(obj: object) -> object:
        if not isinstance(obj, types):
            raise TypeError(" or ".join(f"a {t.__module__}.{t.__qualname__}" for t in types))
        return obj

    return check


def a_callable(obj: object) -> object:
    if not callable(obj):
        raise TypeError("a callable")
    return obj


class Registry(Generic[T]):
    """The parts of one kind, by name. `check` returns the loaded object if it is the right kind of part and raises
    TypeError naming what was expected if not."""

    def __init__(self, kind: str, check: Callable[[object], object], discover: Callable[[str], Iterable[Entry]]
                 = entry_points_of) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind of part {kind!r}; kinds: {', '.join(KINDS)}")
        self.kind = kind
        self.check = check
        self.discover = discover  # replaceable: a test may show a registry exactly the entries it sets up
        self.local: dict[str, Entry] = {}  # parts added in this process, by name
        self._listed: tuple[int, Callable[[str], Iterable[Entry]], list[Entry]] | None = None
        self._loaded: dict[Entry, T] = {}
        self._local_changes = 0  # bumped by add and remove (see revision)
        self._by_name: tuple[tuple[object, ...], dict[str, list[Entry]]] | None = None
        # Parts `get` answered under one revision, read without the lock: apps are looked up several times a step.
        self._answered: tuple[tuple[object, ...], dict[str, T]] = ((), {})
        self._lock = threading.RLock()
        _registries.setdefault(kind, weakref.WeakSet()).add(self)

    def add(self, name: str, part: T) -> T:
        """Register `part` in this process only (a test, a notebook); installed packages use entry points."""
        qualname = getattr(part, "__qualname__", None)
        target = f"{part.__module__}:{qualname}" if qualname and hasattr(part, "__module__") else repr(part)[:120]
        with self._lock:
            self.local[name] = Entry(self.kind, name, target, f"{IN_PROCESS} ({name} = {target})", lambda: part)
            self._local_changes += 1
        return part

    def remove(self, name: str) -> None:
        with self._lock:
            self.local.pop(name, None)
            self._local_changes += 1

    def revision(self) -> tuple[object, ...]:
        """Changes whenever what `get` may answer changes (a part added or removed here, a new scan, another
        discover function): a caller that caches lookups on a hot path keeps its cache while this stays equal."""
        return _generation, self.discover, self._local_changes

    def _discovered(self) -> list[Entry]:
        # Listed once per discover function and scan of the installed packages (refresh_installed lists again).
        if self._listed is None or self._listed[:2] != (_generation, self.discover):
            self._listed = (_generation, self.discover, list(self.discover(self.kind)))
        return self._listed[2]

    def _entries(self) -> dict[str, list[Entry]]:
        # Looked up tens of thousands of times while a suite loads: merged once per revision (callers only read it).
        with self._lock:
            revision = self.revision()
            if self._by_name is not None and self._by_name[0] == revision:
                return self._by_name[1]
            by_name: dict[str, list[Entry]] = {}
            for entry in [*self._discovered(), *self.local.values()]:
                same = by_name.setdefault(entry.name, [])
                if all(e.target != entry.target for e in same):  # one object named twice is one part
                    same.append(entry)
            self._by_name = (revision, by_name)
            return by_name

    def names(self) -> list[str]:
        """Every registered name, sorted; nothing is imported."""
        return sorted(self._entries())

    def __contains__(self, name: object) -> bool:
        return name in self._entries()

    def get(self, name: str) -> T:
        """The part registered as `name`, imported on first use. Raises UnknownPart (suggesting close names) or
        PluginError (registered twice, fails to load, not the right kind of object), each one line."""
        revision, answered = self._answered
        if name in answered and revision == self.revision():
            return answered[name]
        with self._lock:
            entries = self._entries()
            if name not in entries:
                raise UnknownPart(self.unknown_message(name, list(entries)))
            entry = _only(entries[name])
            if entry not in self._loaded:
                self._loaded[entry] = self._load(entry)
            if self._answered[0] != self.revision():
                self._answered = (self.revision(), {})
            self._answered[1][name] = self._loaded[entry]
            return self._loaded[entry]

    def load_all(self) -> dict[str, T]:
        """Every part of this kind, imported (for listings that need them all, e.g. the tools a scenario may offer)."""
        return {name: self.get(name) for name in self.names()}

    def unknown_message(self, name: str, known: list[str] | None = None) -> str:
        known = sorted(self._entries() if known is None else known)
        close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        available = ", ".join(known) if known else f"none (no installed package declares group {group(self.kind)})"
        return f"unknown {self.kind.replace('_', ' ')} {name!r}{hint}; available: {available}"

    def _load(self, entry: Entry) -> T:
        try:
            obj = entry.load()
        except Exception as exc:  # a plugin's module may fail in any way; it must not become a traceback
            raise PluginError(f"{self.kind} {entry.name!r} from {entry.origin} failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        try:
            return self.check(obj)  # type: ignore[return-value]
        except TypeError as exc:
            raise PluginError(f"{self.kind} {entry.name!r} from {entry.origin} is {_describe(obj)}, not {exc}"
                              ) from None


def _only(entries: list[Entry]) -> Entry:
    if len(entries) > 1:
        first, second = entries[:2]
        raise PluginError(f"{first.kind} {first.name!r} is registered twice: by {first.origin} and by "
                          f"{second.origin}; remove one of them (pip uninstall the package you do not want)")
    return entries[0]


def _describe(obj: object) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    return f"a {type(obj).__qualname__}"
