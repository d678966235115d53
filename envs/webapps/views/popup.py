"""The pop-up's desktop side: the modal every page shows while the pop-up is showing (templates/popup/modal.html,
included by base.html) posts the pressed button here; the press goes through `Popup.click`, as `click_popup` does,
and the browser returns to the page it was on."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.apps.popup import Popup
from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, world_of
from envs.webapps.views import DesktopView

HOME = "/"


def _popup(request: Request) -> Popup:
    popup = world_of(request).popup
    if popup is None:
        raise BadRequest("this desktop has no pop-up", 404)
    return popup


def back_to(url: str) -> str:
    """Where to go after a press: the page the modal was on, if it is a page of the desktop's kind (a path, or an
    http(s) address); anything else (javascript:, file:, a scheme-relative //host) goes home."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/") and not url.startswith("//"):
        return url
    return HOME


async def _click(request: Request) -> Response:
    popup = _popup(request)
    form = await read_form(request)
    label = form_text(form, "button")
    try:
        popup.click(label, via="desktop")
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return redirect(back_to(form_text(form, "next", required=False)))


VIEW = DesktopView(app="popup", title="Pop-up", routes=[Route("/click", _click, methods=["POST"])], listed=False)
