"""The system app's view: the settings (one form per setting, so each change is its own record) and the programs
(installed ones and files downloaded through the web app, each with a Run button, and a path to run). Changes go
through `System.change_setting` and `System.run_program`, as the sim tools' do."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world.system import System

DOWNLOADS = "~/Downloads"


def _system(request: Request) -> System:
    system = world_of(request).system
    if system is None:
        raise BadRequest("this desktop has no system settings", 404)
    return system


def _page(request: Request, *, error: str = "", status: int = 200) -> Response:
    system = _system(request)
    web = world_of(request).web
    downloaded = sorted({d.name for d in web.downloads}) if web is not None else []
    settings = [{"name": name, "label": s.label, "value": s.value, "toggle": s.is_toggle,
                 "levels": s.levels} for name, s in system.settings.items()]
    notice = ""
    if changed := request.query_params.get("changed"):
        notice = f"Saved {changed}."
    elif ran := request.query_params.get("ran"):
        notice = f"Ran {ran}."
    context = {"settings": settings, "programs": system.programs,
               "downloads": [f"{DOWNLOADS}/{name}" for name in downloaded], "notice": notice, "error": error}
    return render(request, "system/index.html", context, status=status)


async def _index(request: Request) -> Response:
    return _page(request)


async def _change(request: Request) -> Response:
    system = _system(request)
    name = request.path_params["name"]
    form = await read_form(request)
    value = form_text(form, "value")
    try:
        change = system.change_setting(name, value)
    except ValueError as exc:
        return _page(request, error=str(exc), status=400)
    return redirect("/system/?" + urlencode({"changed": change.setting}))


async def _run(request: Request) -> Response:
    system = _system(request)
    form = await read_form(request)
    try:
        run = system.run_program(form_text(form, "path"))
    except ValueError as exc:
        return _page(request, error=str(exc), status=400)
    return redirect("/system/?" + urlencode({"ran": run.path}))


VIEW = DesktopView(
    app="system", title="Settings", description="Security settings and programs",
    routes=[Route("/", _index), Route("/settings/{name}", _change, methods=["POST"]),
            Route("/run", _run, methods=["POST"])],
)
