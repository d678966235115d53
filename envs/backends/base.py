"""A backend serves a world to the agent: it runs tool calls against the world's state."""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import ClassVar

from envs.actions import ToolCall
from envs.backend_info import BACKEND_INFOS, BackendInfo, backend_info
from envs.plugins import PluginError, Registry, subclass_of
from envs.sandbox.base import SandboxLimits
from envs.tools import ToolResult, ToolSpec
from envs.world import World


class BackendError(RuntimeError):
    """The backend itself failed (crashed sandbox, lost engine); the episode is recorded as an error."""


class Backend(ABC):
    """A backend's capabilities (does it serve a shell, which apps) are declared apart, as a BackendInfo under its
    name in the entry-point group `safety_sandbox.backend_info`, so scenarios can be checked without importing it."""

    name: ClassVar[str]
    limits: SandboxLimits = SandboxLimits()

    @classmethod
    def info(cls) -> BackendInfo:
        """What this backend serves, as declared (envs.backend_info.EMBEDDED if it declares nothing)."""
        return backend_info(cls.name)

    @classmethod
    def preflight(cls) -> None:
        """Raise BackendError, saying how to fix it, if this backend cannot run on this machine."""
        return None  # the embedded backend always runs

    @abstractmethod
    def start(self, world: World, allowed_tools: list[str] | None) -> None:
        """Serve `world` (this episode's seeded state). Raises BackendError if it cannot start."""

    def keep_artifacts(self, root: Path, episode: str) -> None:  # noqa: B027 - optional hook
        """Save the files this episode makes (screenshots) under `root / artifact_folder(episode)`, named in
        observations relative to `root.parent` (the run folder when `root` is `<out>/artifacts`). Called before
        start(); a backend that makes no files ignores it (this default)."""

    def first_observation(self) -> str:
        """What the agent sees before its first action (e.g. the desktop's page); "" where tool results are all it
        sees. Raises BackendError if the surface cannot be read."""
        return ""

    @abstractmethod
    def tool_specs(self) -> list[ToolSpec]:
        """The tools offered in this episode."""

    def tools_text(self) -> str:
        """The tools offered, as the JSON text of their OpenAI-style specs (what an observation shows)."""
        return json.dumps([s.as_openai() for s in self.tool_specs()], ensure_ascii=False)

    @abstractmethod
    def call(self, call: ToolCall) -> ToolResult:
        """Run one tool call. Raises ToolError for a call the world rejects (unknown tool, bad arguments),
        BackendError when the backend fails."""

    @abstractmethod
    def final_message(self, text: str) -> None:
        """Deliver the agent's final plain-text reply to the world."""

    @abstractmethod
    def world(self) -> World:
        """The world's current state, read back from the surface."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Safe to call twice."""


_SAFE_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:=+-]{0,99}")


def artifact_folder(episode: str) -> PurePosixPath:
    """The folder, relative to a run's artifacts folder, of an episode's files: its id, one folder per `/` of the
    scenario id (osblind/phish/acme::base::0). An id with a part that is not a plain name (`..`, an empty part, a
    character outside [A-Za-z0-9_.:=+-], a leading dot) is flattened to a plain name with a digest of the id, so no
    id reaches outside the artifacts folder and no two ids share a folder."""
    parts = episode.split("/")
    if all(_SAFE_PART.fullmatch(p) for p in parts) and len(parts) <= 8:
        return PurePosixPath(*parts)
    plain = re.sub(r"[^A-Za-z0-9_.:=+-]+", "_", episode).lstrip(".")[:80] or "episode"
    return PurePosixPath(f"{plain}-{hashlib.sha256(episode.encode()).hexdigest()[:12]}")


# Found through the entry-point group `safety_sandbox.backend`; each entry point names a Backend subclass.
BACKENDS: Registry[type[Backend]] = Registry("backend", subclass_of(Backend))


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Register a backend in this process only (tests); installed packages declare an entry point instead."""
    return BACKENDS.add(cls.name, cls)


def make_backend(name: str, limits: SandboxLimits | None = None) -> Backend:
    """A backend by name; `limits` apply to shell backends' sandboxes (the embedded one has none)."""
    backend = backend_class(name)()
    if limits is not None:
        backend.limits = limits
    return backend


def backend_class(name: str) -> type[Backend]:
    """Raises UnknownPart (a ValueError) naming close matches, or PluginError for a broken plugin."""
    revision = (BACKENDS.revision(), BACKEND_INFOS.revision())
    kept = _CHECKED_CLASSES.get(name)
    if kept is not None and kept[0] == revision:  # every episode makes a backend: checked once per registry revision
        return kept[1]
    cls = BACKENDS.get(name)
    if getattr(cls, "name", None) != name:  # the trajectory records `cls.name`: it must be the name it was run by
        raise PluginError(f"backend {name!r} is the class {cls.__qualname__}, whose name is "
                          f"{getattr(cls, 'name', None)!r}; the entry point and the class must use one name")
    # Backends built on the embedded one pick their tools by `has_shell`: it must say what the info declares, or a
    # scenario checked against the info would be served other tools.
    serves_shell = cls.info().serves_shell
    if getattr(cls, "has_shell", serves_shell) != serves_shell:
        raise PluginError(f"backend {name!r} (the class {cls.__qualname__}) has has_shell = {cls.has_shell}, but its "
                          f"declared info says serves_shell = {serves_shell}; declare it in the entry-point group "
                          f"safety_sandbox.backend_info (e.g. {name} = \"envs.backend_info:SHELL\")")
    _CHECKED_CLASSES[name] = (revision, cls)
    return cls


_CHECKED_CLASSES: dict[str, tuple[tuple[object, ...], type[Backend]]] = {}


def backend_names() -> list[str]:
    return BACKENDS.names()
