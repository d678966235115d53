"""Every request Chromium makes is answered here, in process, by the episode's desktop (an ASGI app): nothing leaves
the machine and no port is opened. A request to a host the desktop does not serve, or by a scheme other than http(s),
is blocked: a navigation gets a page saying so, anything else is aborted. Each block is recorded."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Route
from starlette.types import ASGIApp

DESKTOP_HOST = "desktop.test"
MAX_BODY_BYTES = 8 << 20  # a page or a form post; anything larger is refused
MAX_REDIRECTS = 5
ANSWER_TIMEOUT_S = 10.0  # a desktop request that takes longer is answered 504 (a hung view cannot hang the browser)
# Chromium does not route the request a fulfilled redirect leads to (it would go to the network): a redirect of a
# navigation is answered by a page, marked with this header, that replaces itself with the target (a new, routed
# navigation); the driver waits for it (envs/browser/session.py).
REDIRECT_HEADER = "x-safety-sandbox-redirect"
# Headers Chromium sets that the ASGI client sets itself (or that make no sense in process).
_DROPPED_REQUEST_HEADERS = {"host", "content-length", "connection", "accept-encoding"}
_DROPPED_RESPONSE_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection"}


def normal_host(host: str) -> str:
    """A host as the desktop compares them: lower case, no `www.`, no trailing dot."""
    host = host.strip().lower().rstrip(".")
    return host.removeprefix("www.")


def host_of(url: str) -> str | None:
    """The normalised host of an http(s) URL; None for any other scheme or a URL with no host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return normal_host(parts.hostname)


@dataclass(frozen=True)
class BlockedRequest:
    url: str
    reason: str
    navigation: bool


@dataclass
class DesktopRouter:
    """Routes one episode's requests to its desktop app. `hosts` are the hosts the desktop serves."""

    app: ASGIApp
    hosts: frozenset[str]
    answer_timeout_s: float = ANSWER_TIMEOUT_S
    blocked: list[BlockedRequest] = field(default_factory=list)
    origins: set[str] = field(default_factory=set)  # origins pages were served from (their storage is cleared)

    def __post_init__(self) -> None:
        self.hosts = frozenset(normal_host(h) for h in self.hosts)
        self._lock = threading.Lock()
        # The app runs on an event loop in a thread of the episode's own, so a request can be given up after a
        # timeout while the browser's thread goes on. A daemon thread, with no context manager to unwind: a router
        # that is never closed cannot hold up the interpreter's exit. An exception in the app becomes a 500 page.
        self._loop: asyncio.AbstractEventLoop | None = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="desktop-router", daemon=True)
        self._thread.start()
        # The transport itself, not a client: a client reads every redirect's Location (and fails on some, e.g.
        # javascript:), where handle() decides what to do with it.
        self._transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)

    def serves(self, url: str) -> bool:
        host = host_of(url)
        return host is not None and host in self.hosts

    def block_reason(self, url: str) -> str | None:
        """Why a request for `url` would be blocked, or None if the desktop serves it."""
        scheme = urlsplit(url).scheme if "://" in url or ":" in url else ""
        if scheme not in ("http", "https"):
            return f"the {scheme or 'empty'}: scheme is not served on this desktop"
        host = host_of(url)
        if host is None or host not in self.hosts:
            return f"host {host or '(none)'!r} is not part of this desktop (served: {', '.join(sorted(self.hosts))})"
        return None

    def handle(self, route: Route) -> None:
        """The context's route handler (Playwright calls it in the browser's thread)."""
        request = route.request
        url = request.url
        navigation = request.is_navigation_request()
        reason = self.block_reason(url)
        if reason is None:
            body = request.post_data_buffer or b""
            if len(body) > MAX_BODY_BYTES:
                reason = f"request body of {len(body)} bytes is over the {MAX_BODY_BYTES}-byte limit"
        if reason is not None:
            with self._lock:
                self.blocked.append(BlockedRequest(url=url[:2048], reason=reason, navigation=navigation))
            if navigation:
                self._fulfil(route, 403, {"content-type": "text/html; charset=utf-8"}, _blocked_page(url, reason))
            else:
                self._abort(route)
            return
        parts = urlsplit(url)
        with self._lock:
            self.origins.add(f"{parts.scheme}://{parts.netloc}")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_REQUEST_HEADERS}
        method, content = request.method, body or None
        for _hop in range(MAX_REDIRECTS + 1):
            try:
                response = self._ask(method, *_canonical(url), headers, content)
            except concurrent.futures.TimeoutError:
                self._fulfil(route, 504, {"content-type": "text/plain; charset=utf-8"},
                             f"the desktop did not answer within {self.answer_timeout_s:g} s".encode())
                return
            except Exception as exc:  # the app failed in a way the client could not turn into a 500
                self._fulfil(route, 502, {"content-type": "text/plain; charset=utf-8"},
                             f"the desktop failed to answer: {type(exc).__name__}".encode())
                return
            location = response.headers.get("location")
            if not (response.is_redirect and location):
                break
            target = urljoin(url, location)
            if navigation and urlsplit(target).scheme not in ("http", "https"):
                # never handed to location.replace: a javascript: target would run in the desktop's origin
                why = f"a redirect to the {urlsplit(target).scheme or 'empty'}: scheme is not followed"
                with self._lock:
                    self.blocked.append(BlockedRequest(url=target[:2048], reason=why, navigation=True))
                self._fulfil(route, 403, {"content-type": "text/html; charset=utf-8"}, _blocked_page(target, why))
                return
            if navigation:
                self._fulfil(route, 200, {"content-type": "text/html; charset=utf-8", REDIRECT_HEADER: "1"},
                             _redirect_page(target))
                return
            if (why := self.block_reason(target)) is not None:
                with self._lock:
                    self.blocked.append(BlockedRequest(url=target[:2048], reason=why, navigation=False))
                self._abort(route)
                return
            url, method, content = target, "GET", None  # a fetch's redirect is followed here, within the desktop
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_RESPONSE_HEADERS}
        self._fulfil(route, response.status_code, out_headers, response.content)

    def _ask(self, method: str, url: str, host: str, headers: dict[str, str], content: bytes | None
             ) -> httpx.Response:
        headers = {**headers, "host": host}
        loop = self._loop
        if loop is None:
            raise RuntimeError("the episode is over")
        future = asyncio.run_coroutine_threadsafe(self._fetch(method, url, headers, content), loop)
        try:
            return future.result(timeout=self.answer_timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()  # cancels the request's task on the router's loop
            raise

    async def _fetch(self, method: str, url: str, headers: dict[str, str], content: bytes | None) -> httpx.Response:
        response = await self._transport.handle_async_request(
            httpx.Request(method, url, headers=headers, content=content))
        await response.aread()
        return response

    @staticmethod
    def _fulfil(route: Route, status: int, headers: dict[str, str], body: bytes) -> None:
        with contextlib.suppress(PlaywrightError):  # the page went away while we answered: nothing is waiting
            route.fulfill(status=status, headers=headers, body=body)

    @staticmethod
    def _abort(route: Route) -> None:
        with contextlib.suppress(PlaywrightError):
            route.abort("blockedbyclient")

    def close(self) -> None:
        """Stop answering: requests still running in the app are cancelled. Safe to call twice."""
        loop, self._loop = self._loop, None
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=5)
        if self._thread.is_alive():
            return  # a view stuck in blocking code holds the loop: leave the daemon thread to the process's end
        pending = asyncio.all_tasks(loop)  # requests the app never answered
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def _canonical(url: str) -> tuple[str, str]:
    """The URL as the desktop is asked for it, and its Host header: the host in the form the desktop compares hosts
    (`www.Shop.example.` is the site `shop.example`)."""
    parts = urlsplit(url)
    host = normal_host(parts.hostname or "")
    netloc = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl(), netloc


def _blocked_page(url: str, reason: str) -> bytes:
    text = html.escape(reason)
    shown = html.escape(url[:300])
    return (f"<!doctype html><html lang=en><head><title>Blocked</title></head><body><main>"
            f"<h1>Blocked</h1><p>{shown} cannot be opened: {text}.</p></main></body></html>").encode()


def _redirect_page(target: str) -> bytes:
    # JSON is a valid JS string literal; escaping `<` keeps `</script>` in a URL from ending the script.
    literal = json.dumps(target).replace("<", "\\u003c")
    return (f"<!doctype html><html lang=en><head><title>Redirecting</title>"
            f"<script>location.replace({literal})</script></head><body></body></html>").encode()


def served_hosts(extra: Iterable[str] = ()) -> frozenset[str]:
    """The desktop's own host and any others its app serves (e.g. the web app's invented sites)."""
    return frozenset({DESKTOP_HOST, *extra})
