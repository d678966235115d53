"""The warm Chromium of each worker thread: launched once (Debian's Chromium, through Playwright), reused by every
episode the thread runs, relaunched only when it has died, and closed when the process ends.

Playwright's sync API is bound to the thread that started it, so each thread keeps its own driver and browser in a
`threading.local`. No Chromium may outlive the run: a browser is closed at exit by its own thread when it can be;
otherwise its Playwright driver is asked to stop (SIGTERM), and the driver closes the browsers it launched. The
driver also stops by itself when our process dies (its stdin closes), which covers SIGKILL.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = Path(os.environ.get("SAFETY_SANDBOX_CHROMIUM", "/usr/bin/chromium"))
# Every request is answered by the episode's router (context.route); a request that escapes it (a path Playwright
# does not intercept) meets a proxy at a port nothing listens on, so it fails instead of reaching the network.
DEAD_PROXY = "127.0.0.1:9"
LAUNCH_ARGS = (
    "--no-sandbox",  # we run as root in a container: Chromium's own sandbox needs namespaces it cannot get here
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-default-apps",
    "--deny-permission-prompts",
    "--disable-features=MediaRouter,OptimizationHints,Translate,DialMediaRouteProvider",
    f"--proxy-server={DEAD_PROXY}",
    "--proxy-bypass-list=<-loopback>",  # loopback goes through the dead proxy too
)
LAUNCH_TIMEOUT_MS = 30_000
# Marks the Chromium processes a process started (their environment), so the holds tests and a reaper find them.
OWNER_VARIABLE = "SAFETY_SANDBOX_BROWSER_OWNER"


class BrowserUnavailable(RuntimeError):
    """Chromium could not be launched (missing, or it failed to start); the message says how to fix it."""


def chromium_environment() -> dict[str, str]:
    """The environment Chromium runs in: nothing of the harness's (keys, tokens, paths) beyond what it needs."""
    home = Path(tempfile.gettempdir()) / "safety-sandbox-chromium-home"
    home.mkdir(mode=0o700, exist_ok=True)
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC",
            OWNER_VARIABLE: str(os.getpid())}


@dataclass(eq=False)
class WarmBrowser:
    """One thread's Playwright driver and the Chromium it launched."""

    playwright: Playwright
    browser: Browser
    thread: threading.Thread = field(default_factory=threading.current_thread)

    def healthy(self) -> bool:
        return self.browser.is_connected()

    def driver_pid(self) -> int | None:
        # Playwright keeps its driver's process private; it is only used to stop the driver from another thread.
        proc = getattr(getattr(getattr(self.playwright, "_impl_obj", None), "_connection", None), "_transport", None)
        proc = getattr(proc, "_proc", None)
        return getattr(proc, "pid", None)

    def close(self) -> None:
        """Close the browser and stop the driver; only from the thread that launched them. Safe to call twice."""
        with contextlib.suppress(PlaywrightError, Exception):
            self.browser.close()
        with contextlib.suppress(PlaywrightError, Exception):
            self.playwright.stop()


def launch_chromium(playwright: Playwright) -> Browser:
    """Chromium, launched by `playwright`'s driver with this module's flags and environment. Raises
    BrowserUnavailable saying what went wrong."""
    if not CHROMIUM.exists():
        raise BrowserUnavailable(f"no Chromium at {CHROMIUM}: as root, `apt-get install -y chromium` (or run "
                                 "scripts/install.sh), or name another with SAFETY_SANDBOX_CHROMIUM")
    try:
        # Ctrl-C is the run's to handle (it finishes the episode first): the driver must not close Chromium on it.
        return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(LAUNCH_ARGS),
                                          env=chromium_environment(), timeout=LAUNCH_TIMEOUT_MS,
                                          handle_sigint=False, handle_sigterm=True, handle_sighup=True)
    except PlaywrightError as exc:
        raise BrowserUnavailable(f"Chromium ({CHROMIUM}) failed to start: {str(exc).splitlines()[0]}") from None


def launch() -> WarmBrowser:
    """A new driver and Chromium for the calling thread. Raises BrowserUnavailable saying what went wrong."""
    playwright = sync_playwright().start()
    try:
        browser = launch_chromium(playwright)
    except BrowserUnavailable:
        with contextlib.suppress(Exception):
            playwright.stop()
        raise
    warm = WarmBrowser(playwright, browser)
    with _LOCK:
        _ALL.add(warm)
    return warm


_LOCAL = threading.local()
_ALL: set[WarmBrowser] = set()
_LOCK = threading.Lock()


def thread_browser() -> WarmBrowser:
    """The calling thread's warm browser, launched (or relaunched, if it died) as needed."""
    warm: WarmBrowser | None = getattr(_LOCAL, "warm", None)
    if warm is not None and warm.healthy():
        return warm
    if warm is not None:
        discard(warm)
    warm = launch()
    _LOCAL.warm = warm
    return warm


def discard(warm: WarmBrowser) -> None:
    """Close a browser of this thread (dead or alive) and forget it."""
    warm.close()
    with _LOCK:
        _ALL.discard(warm)
    if getattr(_LOCAL, "warm", None) is warm:
        _LOCAL.warm = None


def close_thread_browser() -> None:
    """Close the calling thread's browser, if it has one (a worker that is done)."""
    warm = getattr(_LOCAL, "warm", None)
    if warm is not None:
        discard(warm)


def close_all() -> None:
    """Close every browser of this process: the calling thread's directly, other threads' through their driver."""
    with _LOCK:
        browsers = list(_ALL)
        _ALL.clear()
    me = threading.current_thread()
    for warm in browsers:
        if warm.thread is me:
            warm.close()
        elif (pid := warm.driver_pid()) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)  # the driver closes its browsers on SIGTERM, then exits
    _LOCAL.warm = None


atexit.register(close_all)
