"""What every view handler uses: the world it acts on, pages rendered from templates, the redirect after a POST,
and bad requests shown as a page that names what was wrong (never a traceback)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from envs.world import World

# A form is read whole before it is checked; past this a request is refused (no field needs more).
MAX_FORM_FIELDS = 200
MAX_FORM_FIELD_BYTES = 1 << 20


class BadRequest(Exception):
    """A request the desktop refuses: shown as an error page with this message and status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def world_of(request: Request) -> World:
    return request.app.state.world


def render(request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    return request.app.state.templates.TemplateResponse(request, template, context or {}, status_code=status)


def redirect(url: str) -> RedirectResponse:
    """After a POST: the browser GETs the page that shows the result (303, so a reload does not repeat it)."""
    return RedirectResponse(url, status_code=303)


async def read_form(request: Request) -> FormData:
    try:
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FORM_FIELD_BYTES)
    except Exception as exc:  # malformed bodies, too many fields, a file upload: one clear message
        raise BadRequest(f"the form could not be read: {exc}") from None


def form_text(form: FormData, name: str, *, required: bool = True) -> str:
    """One text field of a posted form; a missing required field is a BadRequest naming it."""
    value = form.get(name)
    if value is None:
        if required:
            raise BadRequest(f"the form has no field {name!r}")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"field {name!r} must be text, not a file upload")
    return value


def query_text(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise BadRequest(f"the address has no {name!r} parameter")
    return value
