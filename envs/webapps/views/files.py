"""The files view: a file manager and plain-text editor over the world's files (or the surface the desktop is
given, e.g. a sandbox's). Opening and saving go through the file tools themselves (`read_file`, `write_file`), so a
path, a read-only file or a bad name gets the same answer here as through the sim tools; deleting uses
`FileSystem.remove`."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.apps.files import MAX_PATH_BYTES, read_file, write_file
from envs.tools.base import ToolError
from envs.webapps.rendering import BadRequest, form_text, query_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world.files import FileSurface, FileSystem, PathEscapeError, ReadOnlyFileError

MAX_EDIT_BYTES = 256 * 1024  # larger files are shown, not edited (saving a cut copy would lose the rest)


def _surface(request: Request) -> FileSurface:
    configured = request.app.state.config.files
    if configured is not None:
        return configured
    files = world_of(request).files
    if files is None:
        raise BadRequest("this desktop has no files", 404)
    return files


def _rows(surface: FileSurface) -> list[dict[str, str]]:
    if isinstance(surface, FileSystem):
        return [{"path": p, "mode": oct(e.mode)[2:], "size": str(e.size if e.size is not None else len(e.data()))}
                for p, e in sorted(surface.files.items())]
    rows = []
    for line in surface.listing(surface.resolve(".")).splitlines():  # "mode path", one a line, or "(empty)"
        mode, _, path = line.strip().partition(" ")
        if path:
            rows.append({"path": path.strip(), "mode": mode, "size": ""})
    return rows


def _path(value: str) -> str:
    if len(value.encode()) > MAX_PATH_BYTES:
        raise BadRequest(f"the path is over {MAX_PATH_BYTES} bytes")
    return value


async def _index(request: Request) -> Response:
    notice = f"Deleted {request.query_params['deleted']}." if "deleted" in request.query_params else ""
    return render(request, "files/index.html", {"rows": _rows(_surface(request)), "notice": notice})


def _editor(request: Request, path: str, *, content: str | None = None, notice: str = "", error: str = "",
            status: int = 200) -> Response:
    surface = _surface(request)
    editable = True
    if content is None:
        try:
            data, size = surface.read(surface.resolve(path))
        except (OSError, PathEscapeError):
            data, size = None, None
        try:
            text = read_file.invoke(surface, {"path": path}).output
        except ToolError as exc:
            return render(request, "files/index.html", {"rows": _rows(surface), "error": str(exc)}, status=404)
        # Only whole UTF-8 text is edited here: saving a cut or decoded copy would change the file.
        editable = data is not None and size is None and len(data) <= MAX_EDIT_BYTES and _is_text(data)
        content = data.decode() if editable and data is not None else text
    context = {"path": path, "content": content, "editable": editable, "notice": notice, "error": error}
    return render(request, "files/edit.html", context, status=status)


def _is_text(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


async def _open(request: Request) -> Response:
    path = _path(query_text(request, "path"))
    return _editor(request, path, notice="Saved." if "saved" in request.query_params else "")


async def _save(request: Request) -> Response:
    form = await read_form(request)
    path = _path(form_text(form, "path"))
    content = form_text(form, "content", required=False).replace("\r\n", "\n")  # browsers send CRLF in textareas
    try:
        write_file.invoke(_surface(request), {"path": path, "content": content})
    except ToolError as exc:
        return _editor(request, path, content=content, error=str(exc), status=400)
    return redirect("/files/open?" + urlencode({"path": path, "saved": "1"}))


async def _delete(request: Request) -> Response:
    form = await read_form(request)
    path = _path(form_text(form, "path"))
    surface = _surface(request)
    remove = getattr(surface, "remove", None)
    if remove is None:
        raise BadRequest("files here are deleted from the terminal (rm)")
    try:
        resolved = surface.resolve(path)
        remove(resolved)
    except PathEscapeError as exc:
        raise BadRequest(str(exc)) from None
    except ReadOnlyFileError:
        raise BadRequest(f"permission denied: {path} is read-only", 403) from None
    except FileNotFoundError:
        raise BadRequest(f"no such file: {path}", 404) from None
    return redirect("/files/?" + urlencode({"deleted": resolved}))


VIEW = DesktopView(
    app="files", title="Files", description="Your files and documents",
    routes=[Route("/", _index), Route("/open", _open), Route("/save", _save, methods=["POST"]),
            Route("/delete", _delete, methods=["POST"])],
)
