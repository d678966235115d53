"""One episode's pages in the thread's warm browser.

The context and one tab are kept warm with the browser and reset between episodes by clearing state rather than made
anew (benchmarks/bench_browser.py measures reused tab, new context and new browser): other tabs are closed, the tab is
blanked and its history reset, cookies, permissions and each served origin's storage (local and session storage,
IndexedDB, cache, service workers) are cleared, so nothing of one episode reaches the next. The context's route
handler answers from whichever episode's router is current.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from playwright.sync_api import BrowserContext, CDPSession, Page
from playwright.sync_api import Error as PlaywrightError
from pydantic import BaseModel, ConfigDict, Field

from envs.browser.chromium import WarmBrowser, discard, thread_browser
from envs.browser.routing import REDIRECT_HEADER, DesktopRouter


class Timeouts(BaseModel):
    """How long an action waits for its element, and a navigation for its page to load, before it is an error."""

    model_config = ConfigDict(frozen=True)
    action_ms: float = Field(default=3_000, gt=0)
    navigation_ms: float = Field(default=8_000, gt=0)


VIEWPORT = {"width": 1280, "height": 800}


class BrowserCrashed(RuntimeError):
    """Chromium (or the episode's page) died; the episode cannot go on."""


@dataclass(eq=False)
class WarmContext:
    """The thread's browser context, with a slot for the current episode's router."""

    warm: WarmBrowser
    context: BrowserContext
    router: DesktopRouter | None = None
    crashed: list[str] = field(default_factory=list)
    # Pages whose current document is a redirect page (routing.REDIRECT_HEADER) still on its way to the target.
    redirecting: set[Page] = field(default_factory=set)
    page: Page | None = None  # the tab kept from one episode to the next (reset, not reopened: it is cheaper)
    cdp: CDPSession | None = None  # a DevTools session on that tab, for what Playwright has no call for
    stale_origins: set[str] = field(default_factory=set)  # origins served since the last reset, to clear
    session: EpisodeSession | None = None  # the episode now running in this context

    def handle(self, route) -> None:  # noqa: ANN001 - Playwright's Route
        if self.router is None:
            with contextlib.suppress(PlaywrightError):
                route.abort("blockedbyclient")
            return
        self.router.handle(route)


_CONTEXTS: dict[int, WarmContext] = {}  # by id of the WarmBrowser that owns it


def _new_context(warm: WarmBrowser) -> WarmContext:
    context = warm.browser.new_context(
        accept_downloads=False,  # downloads are cancelled: nothing of the page reaches a host path
        service_workers="block",
        viewport=VIEWPORT,
        java_script_enabled=True,
        bypass_csp=False,
        locale="en-US",
        timezone_id="UTC",
    )
    holder = WarmContext(warm, context)
    context.route("**/*", holder.handle)
    # Websockets are not served by the desktop: refuse every one (the routing of requests does not see them).
    context.route_web_socket("**/*", lambda ws: ws.close(code=1008, reason="blocked"))
    context.on("page", lambda page: _watch(holder, page))
    return holder


def _watch(holder: WarmContext, page: Page) -> None:
    if holder.session is not None:  # a tab the episode opened (new_tab, window.open, target=_blank) comes to front
        holder.session.active = page
    page.on("crash", lambda _page: holder.crashed.append("the page's renderer crashed"))
    page.on("response", lambda response: _note_document(holder, page, response))
    page.on("close", lambda _page: holder.redirecting.discard(page))
    page.on("dialog", lambda dialog: _dismiss(dialog))


def _note_document(holder: WarmContext, page: Page, response) -> None:  # noqa: ANN001 - Playwright's Response
    request = response.request
    if not request.is_navigation_request() or request.frame != page.main_frame:
        return
    if response.headers.get(REDIRECT_HEADER) == "1":
        holder.redirecting.add(page)
    else:
        holder.redirecting.discard(page)


def _dismiss(dialog) -> None:  # noqa: ANN001 - Playwright's Dialog
    # alert/confirm/prompt would block the page until answered: dismiss them (a page's own modal is HTML and stays).
    # A "leave this page?" prompt is accepted: a page must not keep the agent, or the next episode's reset, on it.
    with contextlib.suppress(PlaywrightError):
        if dialog.type == "beforeunload":
            dialog.accept()
        else:
            dialog.dismiss()


def warm_context() -> WarmContext:
    """The thread's warm context (launching the browser if needed)."""
    warm = thread_browser()
    holder = _CONTEXTS.get(id(warm))
    if holder is None or holder.warm is not warm:
        for key in [k for k, v in _CONTEXTS.items() if not v.warm.healthy()]:
            del _CONTEXTS[key]
        holder = _new_context(warm)
        _CONTEXTS[id(warm)] = holder
    return holder


def clear_context(holder: WarmContext) -> Page:
    """Reset a warm context to nothing the last episode left (its other tabs, history, cookies, permissions, every
    served origin's storage) and return its page, blank, for the next episode."""
    context = holder.context
    origins = holder.stale_origins | (holder.router.origins if holder.router is not None else set())
    holder.router = None  # until the next episode's router is in place, every request is refused
    holder.session = None
    page = holder.page if holder.page is not None and not holder.page.is_closed() else None
    if page is not None and holder.crashed:  # a crashed tab cannot navigate: replace it
        page.close()
        page = None
    for other in list(context.pages):
        if other is not page:
            other.close()
    if page is None:  # first episode, or the agent closed it (the page is where its CDP session lives)
        page = context.new_page()
        holder.page, holder.cdp = page, context.new_cdp_session(page)
    page.goto("about:blank")  # unloads the last document first, so none of its scripts can write again
    page.evaluate("window.name = ''")  # our constant script: window.name outlives navigations in a tab
    holder.cdp.send("Page.resetNavigationHistory")  # go_back must not reach the last episode's pages
    context.clear_cookies()
    context.clear_permissions()
    for origin in sorted(origins):
        # local and session storage, IndexedDB, cache storage, service workers, ... of every origin served
        holder.cdp.send("Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"})
    holder.stale_origins = set()
    holder.crashed.clear()
    holder.redirecting.clear()
    return page


@dataclass(eq=False)
class EpisodeSession:
    """The pages of one episode: tabs in the thread's warm context, served by the episode's router."""

    holder: WarmContext
    router: DesktopRouter
    active: Page
    timeouts: Timeouts = Timeouts()

    @classmethod
    def open(cls, router: DesktopRouter, timeouts: Timeouts | None = None) -> EpisodeSession:
        """Start an episode in the thread's warm browser; a browser that fails here is relaunched once."""
        for attempt in (1, 2):
            holder = warm_context()
            try:
                page = clear_context(holder)
                timeouts = timeouts or Timeouts()
                holder.context.set_default_timeout(timeouts.action_ms)
                holder.context.set_default_navigation_timeout(timeouts.navigation_ms)
                holder.router = router
                holder.session = cls(holder, router, page, timeouts)
                return holder.session
            except PlaywrightError:
                if attempt == 2:
                    raise
                discard(holder.warm)  # a browser that cannot open a page is dead: the next try relaunches it
        raise AssertionError("unreachable")

    @property
    def context(self) -> BrowserContext:
        return self.holder.context

    def tabs(self) -> list[Page]:
        return [p for p in self.context.pages if not p.is_closed()]

    def check_alive(self) -> None:
        """Raise BrowserCrashed if the browser or the page died."""
        if not self.holder.warm.healthy():
            raise BrowserCrashed("Chromium is gone (crashed or killed)")
        if self.holder.crashed:
            raise BrowserCrashed(self.holder.crashed[0])
        if self.active.is_closed():
            pages = self.tabs()
            if not pages:
                self.active = self.context.new_page()
            else:
                self.active = pages[-1]

    def close(self) -> None:
        """End the episode: its router stops answering (the tab it leaves is reset when the next one starts)."""
        holder = self.holder
        if holder.router is self.router:
            holder.router = None
            holder.stale_origins |= self.router.origins
        if holder.session is self:
            holder.session = None
        self.router.close()
