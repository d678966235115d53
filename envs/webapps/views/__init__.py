"""Desktop views: one per world app, each a set of Starlette routes mounted at `/<app>/` on the desktop's host.

A view is a `DesktopView` registered in the entry-point group `safety_sandbox.desktop_view` under its app's name, so
a plugin app brings its own. The desktop offers a view when the world hosts the app it `needs` (its own app unless
it says otherwise: the terminal needs `files`). A view may also serve hosts of its own (the `web` app's invented
sites): `hosts(world)` names them and `host_routes` serve them.

Handlers read the world from `request.app.state.world` (the very World the desktop was built over), change it only
through its apps' state methods, and render templates with `envs.webapps.rendering.render`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from starlette.routing import BaseRoute

from envs.plugins import PluginError, Registry, instance_of
from envs.world import World


@dataclass(frozen=True)
class DesktopView:
    app: str  # mounted at /<app>/ on the desktop host; the launcher's entry
    title: str  # what the launcher and the navigation call it ("Mail")
    routes: Sequence[BaseRoute]
    needs: str | None = None  # the world app that must be hosted for the view to show (None: `app` itself)
    description: str = ""  # one line under the title in the launcher
    templates: Path | None = None  # a plugin's own templates folder (the project's are in envs/webapps/templates)
    # Hosts this view serves besides the desktop (normalised domains, e.g. the web app's sites) and their routes.
    hosts: Callable[[World], Iterable[str]] | None = None
    host_routes: Sequence[BaseRoute] = field(default_factory=tuple)
    listed: bool = True  # in the launcher and navigation (False: routes only, e.g. the pop-up's button presses)

    @property
    def world_app(self) -> str:
        return self.needs or self.app


# Found through the entry-point group `safety_sandbox.desktop_view`; each entry point names a DesktopView.
VIEWS: Registry[DesktopView] = Registry("desktop_view", instance_of(DesktopView))


def register_view(view: DesktopView) -> DesktopView:
    """Register a view in this process only (tests); installed packages declare an entry point instead."""
    return VIEWS.add(view.app, view)


def view_named(name: str) -> DesktopView:
    view = VIEWS.get(name)
    if view.app != name:
        raise PluginError(f"desktop view {name!r} is a DesktopView for app {view.app!r}; the entry point and the "
                          "view must use one name")
    return view


def views_for(world: World) -> list[DesktopView]:
    """The views of the apps `world` hosts, in the registry's (alphabetical) order."""
    hosted = world.apps()
    views = [view_named(name) for name in VIEWS.names()]
    return [view for view in views if view.world_app in hosted]
