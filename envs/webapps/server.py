"""The desktop: one ASGI app (Starlette + Jinja2) over one episode's World, mutated in place.

`http://desktop.test/` is the launcher; each hosted app's view is mounted at `/<app>/` on that host. Hosts a view
claims (the web app's invented sites) are served by that view; any other host gets a "site not found" page. Pages
use no CDN, font or script from elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, Router
from starlette.templating import Jinja2Templates
from starlette.types import Receive, Scope, Send

from envs.webapps.rendering import BadRequest, render
from envs.webapps.views import DesktopView, views_for
from envs.world import World
from envs.world.addresses import normalize_domain
from envs.world.files import FileSurface
from envs.world.web import DESKTOP_HOST

TEMPLATES = Path(__file__).parent / "templates"
ShellRunner = Callable[[str], str]  # a command in, its exit code and output as text out (FileSurface.run)


@dataclass(frozen=True)
class DesktopConfig:
    shell: ShellRunner | None = None  # runs the terminal's commands (a sandbox's `run`); None: no terminal
    files: FileSurface | None = None  # what the files view acts on; None: the world's files app (in memory)
    # Hosts that serve the desktop itself. `python -m envs.desktop` adds the loopback names a person's browser uses.
    desktop_hosts: tuple[str, ...] = (DESKTOP_HOST,)
    task: str = ""  # shown on the launcher when a person plays the episode
    on_finish: Callable[[], None] | None = None  # given: the launcher has a Finish button that calls it


def build_desktop(world: World, config: DesktopConfig | None = None) -> Starlette:
    """The desktop over `world`: every action through it changes `world` itself (no copy)."""
    config = config or DesktopConfig()
    views = views_for(world)
    app = Starlette(routes=[Mount("", app=_HostDispatch(world, config, views))],
                    exception_handlers={BadRequest: _bad_request, HTTPException: _http_error})
    app.state.world = world
    app.state.config = config
    app.state.views = views
    app.state.templates = _templates(views)
    return app


def served_hosts(world: World) -> list[str]:
    """The hosts besides desktop.test this world's desktop serves (the web app's invented sites), so the browser
    backend routes them to the app instead of blocking them (envs.backends.browser.project_desktop reads it)."""
    return sorted({host for view in views_for(world) if view.hosts is not None for host in view.hosts(world)})


def _templates(views: list[DesktopView]) -> Jinja2Templates:
    folders = [TEMPLATES, *(view.templates for view in views if view.templates is not None)]
    env = Environment(loader=ChoiceLoader([FileSystemLoader(folder) for folder in folders]),
                      autoescape=select_autoescape(default=True))
    return Jinja2Templates(env=env, context_processors=[_page_context])


def _page_context(request: Request) -> dict[str, Any]:
    """What every page may show: the navigation and any pending pop-up (the popup app's state, or None)."""
    world: World = request.app.state.world
    current = request.url.path.strip("/").split("/", 1)[0]
    nav = [{"app": v.app, "title": v.title, "url": f"/{v.app}/", "current": v.app == current,
            "description": v.description} for v in request.app.state.views if v.listed]
    return {"nav": nav, "popup": getattr(world, "popup", None), "world": world}


class _HostDispatch:
    """Routes a request by its Host header: the desktop, a host a view serves, or "site not found"."""

    def __init__(self, world: World, config: DesktopConfig, views: list[DesktopView]) -> None:
        self.world = world
        self.desktop_hosts = {normalize_domain(h) for h in config.desktop_hosts}
        own = [Route("/", _home), *([Route("/finish", _finish, methods=["POST"])] if config.on_finish else [])]
        self.desktop = Router(routes=[*own, *(Mount(f"/{v.app}", routes=list(v.routes)) for v in views)])
        self.hosted = [(v, Router(routes=list(v.host_routes))) for v in views if v.hosts is not None]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = normalize_domain(_hostname(Headers(scope=scope).get("host", "")))
        if host in self.desktop_hosts:
            await self.desktop(scope, receive, send)
            return
        for view, router in self.hosted:
            if host in set(view.hosts(self.world)):  # type: ignore[misc]
                await router(scope, receive, send)
                return
        raise HTTPException(404, f"site not found: {host or '(no host)'}")


def _hostname(host_header: str) -> str:
    if host_header.startswith("["):  # an IPv6 literal, [::1]:8000
        return host_header.partition("]")[0] + "]"
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


async def _home(request: Request) -> Response:
    config: DesktopConfig = request.app.state.config
    return render(request, "home.html", {"task": config.task, "can_finish": config.on_finish is not None})


async def _finish(request: Request) -> Response:
    """A person ends the episode (python -m envs.desktop scores it once the server stops)."""
    config: DesktopConfig = request.app.state.config
    assert config.on_finish is not None  # the route exists only then
    config.on_finish()
    return render(request, "finished.html")


async def _bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return render(request, "error.html", {"message": str(exc), "status": exc.status}, status=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if exc.status_code != 404 or exc.detail.startswith("site not found") else \
        f"no page at {request.url.path}"
    template = "not_found.html" if exc.detail.startswith("site not found") else "error.html"
    return render(request, template, {"message": message, "status": exc.status_code}, status=exc.status_code)
