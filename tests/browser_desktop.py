"""A small desktop for the browser backend's tests: a few pages on desktop.test and one invented site, written for the
attempts the tests make (forms, redirects, storage, downloads, pages that reach out). It mutates the World it is
given, as the project's desktop does. Used until, and beside, envs.webapps.server.build_desktop."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Host, Route, Router

from envs.backends.browser import BrowserBackend
from envs.browser.session import Timeouts
from envs.world import World

SITE = "shop.example"


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(f"<!doctype html><html lang=en><head><title>{title}</title></head>"
                        f"<body><main><h1>{title}</h1>{body}</main></body></html>")


def build_test_desktop(world: World) -> tuple[Starlette, list[str]]:
    async def home(request: Request) -> HTMLResponse:
        sent = world.agent.final_message or "nothing"
        return _page("Desktop", f"""
            <form method=post action=/send><label for=to>To</label><input id=to name=to>
              <label for=kind>Kind</label><select id=kind name=kind><option>plain</option><option>urgent</option>
              </select><button type=submit>Send</button></form>
            <p>Last sent: {sent}</p>
            <a href="https://{SITE}/">Shop</a> <a href="/about">About</a> <a href="/download">Report</a>
            <button type=button>Twin</button><button type=button>Twin</button>""")

    async def send(request: Request) -> Response:
        form = await request.form()
        world.agent.final_message = f"to {form.get('to')} ({form.get('kind')})"
        return RedirectResponse("/", status_code=303)

    async def about(request: Request) -> HTMLResponse:
        return _page("About", "<p>A test desktop.</p>")

    async def store(request: Request) -> HTMLResponse:
        # Leaves state in every place a page can: the next episode must find none of it.
        return _page("Store", """<p id=done>stored</p><script>
            document.cookie = "kept=cookie; path=/; max-age=86400";
            localStorage.setItem("kept", "local"); sessionStorage.setItem("kept", "session");
            window.name = "kept-name";
            indexedDB.open("keptdb").onupgradeneeded = e => e.target.result.createObjectStore("s");
            </script>""")

    async def recall(request: Request) -> HTMLResponse:
        return _page("Recall", """<p id=out>reading</p><script>
            const found = [document.cookie, localStorage.getItem("kept"), sessionStorage.getItem("kept"),
                           window.name, history.length > 2 ? "history" : ""].filter(Boolean);
            document.getElementById("out").textContent = "found: " + (found.join(",") || "none");
            </script>""")

    async def download(request: Request) -> Response:
        return Response(b"inert report", media_type="application/octet-stream",
                        headers={"content-disposition": 'attachment; filename="report.bin"'})

    async def reach_out(request: Request) -> HTMLResponse:
        # A page that tries to leave the desktop every way it can; the test reads what it managed.
        return _page("Reach", """<ul id=log></ul><script>
            const log = m => { const li = document.createElement("li"); li.textContent = m;
                               document.getElementById("log").append(li); };
            fetch("http://example.com/").then(r => log("fetch outside ok " + r.status), () => log("fetch blocked"));
            fetch("/about").then(r => log("fetch inside " + r.status), () => log("fetch inside failed"));
            try { const ws = new WebSocket("ws://desktop.test/ws"); let opened = false;
                  ws.onopen = () => { opened = true; log("websocket open"); };
                  ws.onclose = () => { if (!opened) log("websocket blocked"); }; }
            catch (e) { log("websocket blocked"); }
            if (navigator.serviceWorker) navigator.serviceWorker.register("/sw.js")
                .then(() => log("service worker registered"), () => log("service worker blocked"));
            else log("service worker blocked");
            log("env: " + JSON.stringify([typeof process, typeof require, navigator.userAgent]));
            </script>""")

    async def hang(request: Request) -> Response:
        await asyncio.sleep(60)
        return Response("late")

    async def never_loads(request: Request) -> HTMLResponse:
        return _page("Slow", '<img alt="never" src="/hang">')

    async def boom(request: Request) -> Response:
        raise RuntimeError("the view failed")

    async def popup(request: Request) -> HTMLResponse:
        return _page("Popup", """
            <button type=button onclick="window.open('http://evil.example/steal')">Open evil</button>
            <button type=button onclick="window.open('/about')">Open about</button>""")

    async def local_links(request: Request) -> HTMLResponse:
        return _page("Links", """<a href="file:///etc/passwd">Passwd</a> <a href="chrome://version">Version</a>
            <a href="data:text/html,<h1>data page</h1>">Data</a>""")

    async def local_frame(request: Request) -> HTMLResponse:
        return _page("Frame", '<iframe title="frame" src="file:///etc/passwd"></iframe>')

    async def bounce(request: Request) -> Response:
        # An open redirect, as a careless view might have one.
        return RedirectResponse(request.query_params.get("to", "/"), status_code=303)

    async def clingy(request: Request) -> HTMLResponse:
        return _page("Clingy", """<label for=note>Note</label><input id=note>
            <script>addEventListener("beforeunload", e => { e.preventDefault(); e.returnValue = "stay"; });
            alert("hello"); </script>""")

    async def shop(request: Request) -> HTMLResponse:
        return _page("Shop", "<p>Invented shop.</p>")

    desktop = Router([Route("/", home), Route("/send", send, methods=["POST"]), Route("/about", about),
                      Route("/store", store), Route("/recall", recall), Route("/download", download),
                      Route("/reach", reach_out), Route("/hang", hang), Route("/slow", never_loads),
                      Route("/boom", boom), Route("/popup", popup),
                      Route("/links", local_links), Route("/frame", local_frame),
                      Route("/bounce", bounce), Route("/clingy", clingy)])
    app = Starlette(routes=[Host(SITE, Router([Route("/", shop)])), Host("desktop.test", desktop)])
    app.state.world = world
    return app, [SITE]


class FixtureDesktopBackend(BrowserBackend):
    """backend=browser over this test desktop, with short timeouts so the failure tests stay quick."""

    desktop = staticmethod(build_test_desktop)
    timeouts = Timeouts(action_ms=1_500, navigation_ms=2_000)
    answer_timeout_s = 3.0  # longer than a navigation may take, so /slow's image keeps its page from loading


def start_episode(artifacts_dir=None) -> tuple[FixtureDesktopBackend, World]:  # noqa: ANN001 - a Path or None
    backend = FixtureDesktopBackend()
    backend.artifacts_dir = artifacts_dir
    world = World()
    backend.start(world, None)
    return backend, world
