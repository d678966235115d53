"""Apps: the units a world is made of (the operations console, the files; next mail, web, bank, ...).

An app owns its state model (the key scenario files use under `world:` is its name), its tools, and the hooks an
episode calls: at the start (e.g. the console shuffles its options), for placeholders in the messages
(`{{options}}`), and when the agent ends with plain text (ManagerBench's text answers). Apps are found through the
entry-point group `safety_sandbox.app`; each entry point names an App instance.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel

from envs.plugins import PluginError, Registry, instance_of

# An app's name is a key of `world:` and, in a tool name shared by two apps, its prefix (`mail__search`): lowercase,
# no double underscore.
APP_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


class NamedTool(Protocol):
    """What the world needs to know of an app's tools (envs.tools.Tool, which sits above the world, is one)."""

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class EpisodeStart:
    """What an app may use to set up its state for one episode."""

    seed: int
    shuffle_options: bool  # the scenario lets apps shuffle what they present (the console's option order)


class App:
    """Subclass it, set `name`, `state_model` and `tools`, override the hooks the app needs, and register an
    instance. Hooks act on the app's state in this episode's world (a model of type `state_model`)."""

    name: ClassVar[str]
    state_model: ClassVar[type[BaseModel]]
    tools: ClassVar[Sequence[NamedTool]] = ()
    # The `{{name}}` placeholders `placeholders` fills, declared so scenario files can be checked when they load.
    placeholder_names: ClassVar[tuple[str, ...]] = ()

    def surface(self, state: Any) -> object:
        """What the app's tools act on: the state itself, unless the app puts an interface over it (a backend may
        supply its own, e.g. the files of a real sandbox)."""
        return state

    def copy_state(self, state: Any) -> Any:
        """A copy of `state` that an episode may change without changing `state` (a scenario's seed state, an
        episode's pre-world). A deep copy unless the app knows a cheaper one that shares only what cannot change."""
        return state.model_copy(deep=True)

    def on_episode_start(self, state: Any, start: EpisodeStart) -> None:
        """Set up the state of a fresh episode (called on a copy of the scenario's seed state)."""

    def placeholders(self, state: Any) -> Mapping[str, str]:
        """The text of each of `placeholder_names` for the scenario's messages (`{{name}}`), after on_episode_start."""
        return {}

    def on_final_message(self, state: Any, text: str) -> None:
        """The agent ended the episode with plain text (the whole reply, before it is clipped)."""

    def on_action(self, state: Any, number: int) -> None:
        """The agent's action `number` (1-based) is about to run; called on backends whose world is live (sim,
        browser), so an app can act on a schedule (a pop-up due from action 3 on)."""

    def observation_note(self, state: Any) -> str:
        """Text a tool backend adds to its observation for what a screen would show (a pop-up); "" for none. A
        desktop shows it on the page instead."""
        return ""


def begin_action(world: Any, number: int) -> None:
    """Tell each app of `world` (an envs.world.World) that the agent's action `number` is about to run."""
    for name, state in (world.__pydantic_extra__ or {}).items():
        if state is not None and (app := _hooks(name)[0]) is not None:
            app.on_action(state, number)


def observation_notes(world: Any) -> list[str]:
    """What each app of `world` asks a tool backend to add to the observation now."""
    return [note for name, state in (world.__pydantic_extra__ or {}).items()
            if state is not None and (app := _hooks(name)[1]) is not None and (note := app.observation_note(state))]


def acts_on_actions(world: Any) -> bool:
    """Whether an app `world` hosts overrides `on_action` (else `begin_action` would do nothing: steps skip it)."""
    return _hosts_hook(world, 0)


def notes_observations(world: Any) -> bool:
    """Whether an app `world` hosts overrides `observation_note` (else `observation_notes` is always empty)."""
    return _hosts_hook(world, 1)


def _hosts_hook(world: Any, which: int) -> bool:
    return any(state is not None and _hooks(name)[which] is not None
               for name, state in (world.__pydantic_extra__ or {}).items())


# Every step asks each hosted app for these two hooks, and most apps leave both as App's: per app name (and registry
# revision), the app where it overrides `on_action`, and where it overrides `observation_note`, else None.
_HOOKS: dict[str, tuple[App | None, App | None]] = {}
_HOOKS_REVISION: list[object] = [None]


def _hooks(name: str) -> tuple[App | None, App | None]:
    revision = APPS.revision()
    if _HOOKS_REVISION[0] != revision:
        _HOOKS.clear()
        _HOOKS_REVISION[0] = revision
    found = _HOOKS.get(name)
    if found is None:
        app = app_named(name)
        found = _HOOKS[name] = (app if _overrides(app, "on_action") else None,
                                app if _overrides(app, "observation_note") else None)
    return found


def _overrides(app: App, hook: str) -> bool:
    return getattr(getattr(app, hook), "__func__", None) is not getattr(App, hook)


def _an_app(obj: object) -> object:
    app = instance_of(App)(obj)
    state_model = getattr(app, "state_model", None)
    if not (isinstance(state_model, type) and issubclass(state_model, BaseModel)):
        raise TypeError("an App whose state_model is a pydantic model")
    return app


# Found through the entry-point group `safety_sandbox.app`; each entry point names an App instance.
APPS: Registry[App] = Registry("app", _an_app)


def register_app(app: App) -> App:
    """Register an app in this process only (tests, notebooks); installed packages declare an entry point."""
    return APPS.add(app.name, app)


def app_named(name: str) -> App:
    """The app registered as `name`. Raises UnknownPart (suggesting close names) or PluginError, one line each."""
    app = APPS.get(name)
    if _NAMES_CHECKED.get(name) is app:  # asked for at every episode's start: its name is checked once
        return app
    if getattr(app, "name", None) != name or not APP_NAME.match(name):
        raise PluginError(f"app {name!r} is an App named {getattr(app, 'name', None)!r}; the entry point and the app "
                          "must use one name, lowercase words joined by single underscores")
    _NAMES_CHECKED[name] = app
    return app


_NAMES_CHECKED: dict[str, App] = {}  # name -> the app found under it whose own name it is


def placeholder_tokens(app_names: Iterable[str]) -> set[str]:
    """The `{{name}}` tokens the named apps fill in a scenario's messages."""
    return {f"{{{{{token}}}}}" for name in app_names for token in app_named(name).placeholder_names}
