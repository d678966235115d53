"""Print what the browser backend costs per episode and per step, in real Chromium.

    python -m benchmarks.bench_browser [--episodes 20] [--steps 20]

Reset (a clean tab ready for the next episode, the previous one having visited a page and left storage behind):
  - reused tab: what backend=browser does (blank the warm tab, reset its history, clear cookies, permissions and
    the served origins' storage),
  - new context: a fresh browser context and page on the warm browser,
  - new browser: close the last browser, launch Chromium (on the warm driver), then a context and page.
Steps through the backend (each returns the observation): fill, click (a link that navigates), goto. Observation
size: characters of the text agents read, and bytes of a screenshot. The desktop is a small page of this script's (a
form and two links), so the figures are the backend's own, whatever the views cost. Wall-clock on this machine.
"""

from __future__ import annotations

import statistics

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from benchmarks.timing import describe, timed
from envs.actions import ToolCall
from envs.backends.browser import BrowserBackend
from envs.browser import chromium
from envs.browser.routing import DesktopRouter, served_hosts
from envs.browser.session import EpisodeSession
from envs.cli_args import OneLineArgumentParser, positive_int
from envs.world import World

_PAGE = """<!doctype html><html lang=en><head><title>{title}</title></head><body><main><h1>{title}</h1>
<form method=post action=/send><label for=to>To</label><input id=to name=to><button>Send</button></form>
<nav><a href="/">Home</a> <a href="/about">About</a></nav>
<script>localStorage.setItem("seen", "yes"); document.cookie = "seen=yes"</script></main></body></html>"""


def bench_desktop(world: World):
    """A page with a form and links (it leaves storage and a cookie, so a reset has something to clear)."""

    async def page(request: Request) -> Response:
        return HTMLResponse(_PAGE.format(title="About" if request.url.path == "/about" else "Desktop"))

    async def send(request: Request) -> Response:
        await request.form()
        return RedirectResponse("/", status_code=303)

    return Starlette(routes=[Route("/", page), Route("/about", page), Route("/send", send, methods=["POST"])]), []


class BenchBackend(BrowserBackend):
    desktop = staticmethod(bench_desktop)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineArgumentParser(prog="python -m benchmarks.bench_browser", description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=positive_int, default=20)
    parser.add_argument("--steps", type=positive_int, default=20)
    args = parser.parse_args(argv)
    print(f"Chromium {chromium.thread_browser().browser.version}; desktop: this script's page (a form, two links)")

    def dirty_episode(session: EpisodeSession) -> None:
        session.active.goto("http://desktop.test/about")  # leaves a cookie, local storage and history

    # --- reset: reused tab (backend=browser's way) ---
    sessions: list[EpisodeSession] = []

    def new_router() -> DesktopRouter:
        app, hosts = bench_desktop(World())
        return DesktopRouter(app, served_hosts(hosts))

    def run_reused() -> list[float]:
        samples = []
        for _ in range(args.episodes):
            router = new_router()
            samples += timed(lambda r=router: sessions.append(EpisodeSession.open(r)), 1)
            dirty_episode(sessions[-1])
            sessions[-1].close()
        return samples

    run_reused()  # warm up
    reused = run_reused()

    routers: list[DesktopRouter] = []

    # --- reset: a new context per episode ---
    browser = chromium.thread_browser().browser
    contexts = []

    def run_new_context() -> list[float]:
        samples = []
        holder: dict = {}
        for _ in range(args.episodes):

            def reset() -> None:
                if contexts:
                    contexts.pop().close()
                context = browser.new_context(accept_downloads=False, service_workers="block")
                router = new_router()
                context.route("**/*", router.handle)
                holder["page"] = context.new_page()
                contexts.append(context)
                routers.append(router)

            samples += timed(reset, 1)
            holder["page"].goto("http://desktop.test/about")
        return samples

    fresh_context = run_new_context()
    while contexts:
        contexts.pop().close()

    # --- reset: a new browser per episode ---
    def run_new_browser() -> list[float]:
        samples = []
        holder: dict = {}
        for _ in range(max(3, args.episodes // 4)):

            def reset() -> None:
                if "browser" in holder:
                    holder.pop("browser").close()
                browser = chromium.launch_chromium(chromium.thread_browser().playwright)
                context = browser.new_context(accept_downloads=False, service_workers="block")
                routers.append(router := new_router())
                context.route("**/*", router.handle)
                holder["browser"], holder["page"] = browser, context.new_page()

            samples += timed(reset, 1)
            holder["page"].goto("http://desktop.test/about")
        holder.pop("browser").close()
        return samples

    fresh_browser = run_new_browser()
    print("reset per episode (a clean tab ready; the last episode visited a page and left storage):")
    describe("  reused tab (backend=browser)", reused)
    describe("  new context on the warm browser", fresh_context)
    describe("  new browser", fresh_browser)
    ratio = statistics.median(fresh_browser) / statistics.median(reused)
    print(f"  reused tab vs new browser: {ratio:.1f}x faster (median); "
          f"vs new context: {statistics.median(fresh_context) / statistics.median(reused):.1f}x")

    # --- steps through the backend ---
    backend = BenchBackend()
    world = World()
    backend.start(world, None)
    starts = timed(lambda: _restart(backend, world), args.episodes)
    call = backend.call
    fills = timed(lambda: call(ToolCall(tool="fill", args={"label": "To", "value": "a@b.test"})), args.steps)

    gotos = timed(lambda: call(ToolCall(tool="goto", args={"url": "http://desktop.test/"})), args.steps)
    clicks = []
    for _ in range(args.steps):
        clicks += timed(lambda: call(ToolCall(tool="click", args={"role": "link", "name": "About"})), 1)
        call(ToolCall(tool="goto", args={"url": "http://desktop.test/"}))
    observation = backend.observation()
    shot = call(ToolCall(tool="screenshot", args={}))
    png = backend.screenshots[-1].png
    print("steps (through BrowserBackend.call, each returning the observation):")
    describe("  episode start (reset + open the desktop's home)", starts)
    describe("  fill (by label)", fills)
    describe("  click (a link that navigates)", clicks)
    describe("  goto", gotos)
    print(f"observation: {len(observation)} characters of text ({observation.count('[ref=')} refs) on the desktop's "
          f"home; screenshot {len(png)} bytes PNG ({shot.output.split(',')[0]})")
    backend.close()
    for router in routers + [session.router for session in sessions]:
        router.close()


def _restart(backend: BrowserBackend, world: World) -> None:
    backend.close()
    backend.start(world, None)


if __name__ == "__main__":
    main()
