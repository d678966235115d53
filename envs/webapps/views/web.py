"""The web app's view: the invented sites as real pages.

Each site is served on its own host (`https://shop.test/login`), so the browser's address bar shows its domain. The
same pages are reachable on the desktop at `/web/site/<domain>/<path>` (the browser window a person uses through
`python -m envs.desktop`, where a real browser cannot resolve invented hosts); links follow whichever way the page
was reached. A GET of a page records a visit; a form POSTs and redirects (303) to the page with a notice, which is
not a second visit. File fields are uploads by name: a choice among the world's files.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from envs.webapps.rendering import BadRequest, form_text, read_form, redirect, render, world_of
from envs.webapps.views import DesktopView
from envs.world import World
from envs.world.addresses import normalize_domain
from envs.world.web import Page, Site, Web, normalize_path
from envs.world.web import split_url as split_web_url

PATH_FORM = "/web/site"  # where the desktop host serves the sites


def _web(request: Request) -> Web:
    web = world_of(request).web
    if web is None:
        raise BadRequest("this desktop has no web browser", 404)
    return web


def _hrefs(request: Request, web: Web, domain: str) -> Callable[[str], str]:
    """Where a link on a page of `domain` points, the way this page was reached (own host or path form)."""
    path_form = "domain" in request.path_params
    known = set(web.domains())

    def href(target: str) -> str:
        if target.startswith("/"):
            other, path = domain, normalize_path(target)
        else:
            other, path = split_web_url(target)
        if not path_form:
            return f"https://{other}{path}"
        if other in known:
            return f"{PATH_FORM}/{other}{path}"
        return "/web/go?" + urlencode({"url": target})

    return href


def _file_choices(world: World) -> list[str]:
    return sorted(world.files.files) if world.files is not None else []


async def _site_page(request: Request, domain: str, path: str) -> Response:
    web = _web(request)
    try:
        site = web.site(domain)
    except ValueError as exc:
        return render(request, "not_found.html", {"message": str(exc), "status": 404}, status=404)
    try:
        page = site.page(path)
    except ValueError as exc:
        missing = Page(path="/", title="Page not found")
        return _page_response(request, web, site, missing, error=str(exc), status=404)
    url = f"https://{site.domain}{page.path}"
    if request.method == "POST":
        return await _act(request, web, url, site, page)
    done, downloaded = request.query_params.get("done"), request.query_params.get("downloaded")
    if done is not None or downloaded is not None:  # the page after a POST: the action is the record, not a visit
        notice = f"Form submitted: {done}." if done is not None else f"Downloaded {downloaded} to ~/Downloads."
        return _page_response(request, web, site, page, notice=notice)
    web.visit(url)
    return _page_response(request, web, site, page)


async def _act(request: Request, web: Web, url: str, site: Site, page: Page) -> Response:
    form = await read_form(request)
    here = _hrefs(request, web, site.domain)(page.path)
    try:
        if "_form" in form:
            form_id = form_text(form, "_form")
            values: dict[str, object] = {}
            for key in {k for k in form if not k.startswith("_")}:
                given = form.getlist(key)
                if len(given) != 1 or not isinstance(given[0], str):
                    raise BadRequest(f"field {key!r} was sent {len(given)} times; send it once, as text")
                values[key] = given[0]
            web.submit_form(url, form_id, values)
            return redirect(f"{here}?{urlencode({'done': form_id})}")
        if "_download" in form:
            name = form_text(form, "_download")
            web.download(url, name)
            return redirect(f"{here}?{urlencode({'downloaded': name})}")
    except ValueError as exc:
        return _page_response(request, web, site, page, error=str(exc), status=400)
    raise BadRequest("the request names no form (_form) and no download (_download)")


def _page_response(request: Request, web: Web, site: Site, page: Page, *, notice: str = "", error: str = "",
                   status: int = 200) -> Response:
    href = _hrefs(request, web, site.domain)
    context = {"site": site, "page": page, "href": href, "action": href(page.path),
               "address": f"https://{site.domain}{page.path}", "path_form": "domain" in request.path_params,
               "files": _file_choices(world_of(request)), "notice": notice, "error": error}
    return render(request, "web/site.html", context, status=status)


async def _on_own_host(request: Request) -> Response:
    domain = normalize_domain(request.url.hostname or "")
    return await _site_page(request, domain, request.path_params.get("path", ""))


async def _on_desktop(request: Request) -> Response:
    domain = normalize_domain(request.path_params["domain"])
    return await _site_page(request, domain, request.path_params.get("path", ""))


async def _browser_home(request: Request) -> Response:
    web = _web(request)
    sites = [{"title": s.title or s.domain, "domain": s.domain, "href": f"{PATH_FORM}/{s.domain}/"}
             for s in web.sites]
    return render(request, "web/home.html", {"sites": sites})


async def _go(request: Request) -> Response:
    """The address bar: a typed address opens the site's page in this window, or says the site does not exist."""
    web = _web(request)
    typed = request.query_params.get("url", "").strip()
    if not typed:
        raise BadRequest("type an address, e.g. https://shop.test/")
    try:
        domain, path = split_web_url(typed)
        web.site(domain)
    except ValueError as exc:
        return render(request, "not_found.html", {"message": str(exc), "status": 404}, status=404)
    return redirect(f"{PATH_FORM}/{domain}{quote(path)}")


def _site_hosts(world: World) -> list[str]:
    return world.web.domains() if world.web is not None else []


def site_url(url: str) -> str:
    """A page's address on its own host, as the browser's address bar shows it (for callers outside the view)."""
    domain, path = split_web_url(url)
    return f"https://{domain}{path}"


VIEW = DesktopView(
    app="web", title="Web browser", description="Browse the web",
    routes=[Route("/", _browser_home), Route("/go", _go),
            Route("/site/{domain}", _on_desktop, methods=["GET", "POST"]),
            Route("/site/{domain}/{path:path}", _on_desktop, methods=["GET", "POST"])],
    hosts=_site_hosts,
    host_routes=[Route("/{path:path}", _on_own_host, methods=["GET", "POST"])],
)

