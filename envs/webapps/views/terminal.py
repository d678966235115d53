"""The terminal view: a command line over the shell sandbox the desktop is given (`DesktopConfig.shell`, e.g. a
local or docker sandbox's `run`); without one it says the terminal is unavailable. The output is the answer to the
POST itself, not kept anywhere: what a command changes is in the sandbox, which the backend reads back."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.apps.files import BashArgs
from envs.webapps.rendering import BadRequest, form_text, read_form, render
from envs.webapps.views import DesktopView


def _shell(request: Request) -> Callable[[str], str] | None:
    return request.app.state.config.shell


async def _index(request: Request) -> Response:
    return render(request, "terminal/index.html", {"available": _shell(request) is not None})


async def _run(request: Request) -> Response:
    shell = _shell(request)
    if shell is None:
        return render(request, "terminal/index.html", {"available": False}, status=409)
    form = await read_form(request)
    command = form_text(form, "command")
    try:
        BashArgs(command=command)
    except ValidationError as exc:
        raise BadRequest(f"the command cannot run: {exc.errors()[0]['msg']}") from None
    try:
        output = shell(command)
    except OSError as exc:  # the sandbox refused or died: say so on the page, never a traceback
        return render(request, "terminal/index.html", {"available": True, "command": command,
                                                       "error": f"the command did not run: {exc}"}, status=502)
    return render(request, "terminal/index.html", {"available": True, "command": command, "output": output})


VIEW = DesktopView(
    app="terminal", title="Terminal", description="A command line", needs="files",
    routes=[Route("/", _index), Route("/run", _run, methods=["POST"])],
)
