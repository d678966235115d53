"""What the desktop actions act on: the episode's pages, found through Playwright locators (a `bid` ref from the last
accessibility snapshot, a role and accessible name, or a form field's label), never by evaluating agent text.

Every Playwright failure becomes a ToolError the agent reads (a missing element, a page that does not load in time),
unless the browser itself died, which is BrowserCrashed (the episode ends as a backend error)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from envs.browser.observation import PageView, TabView, observation_text, refs_in
from envs.browser.session import EpisodeSession
from envs.browser.targets import Target
from envs.tools import ToolError
from envs.world import World

T = TypeVar("T")
# The tree waits this long for a frame that never loads (e.g. an iframe of a scheme Chromium refuses), then is read
# without it.
SNAPSHOT_TIMEOUT_MS = 1_500
_MAX_ERROR_CHARS = 600
_RECHECK_MS = 200  # how often a redirect's flag is re-checked should its target's response slip past the wait


class ArtifactNotSaved(RuntimeError):
    """A screenshot could not be written to the episode's artifacts folder (the run's output, not the agent, is at
    fault: the episode ends as a backend error)."""


@dataclass(frozen=True)
class Screenshot:
    step: int
    png: bytes
    path: Path | None  # where it was saved (beside the run's trajectories), None when no folder was given
    shown_as: str | None = None  # how observations name it: relative to the run folder when one was given


@dataclass(eq=False)
class BrowserDriver:
    session: EpisodeSession
    world: World
    artifacts_dir: Path | None = None
    artifacts_root: Path | None = None  # the folder observations name saved files from (the run folder)
    refs: frozenset[str] = frozenset()  # the refs of the last snapshot the agent was shown
    screenshots: list[Screenshot] = field(default_factory=list)
    actions: int = 0

    @property
    def page(self) -> Page:
        return self.session.active

    # ---- running a Playwright operation -------------------------------------------------------------------

    def run(self, what: str, operation: Callable[[], T]) -> T:
        """Run `operation`; a Playwright failure is a ToolError saying `what` failed and why, or BrowserCrashed."""
        self.session.check_alive()
        self.actions += 1
        try:
            return operation()
        except PlaywrightError as exc:
            self.session.check_alive()  # raises if the browser is what failed
            raise ToolError(f"{what} failed: {_short(exc)}") from None

    def settle(self) -> None:
        """Wait for a navigation the action started to load, through any redirect (returns at once when none)."""
        page = self.page
        limit_ms = self.session.timeouts.navigation_ms
        deadline = time.monotonic() + limit_ms / 1000
        try:
            page.wait_for_load_state("load", timeout=limit_ms)
            while page in self.session.holder.redirecting:
                left_ms = (deadline - time.monotonic()) * 1000
                if left_ms <= 0:
                    raise ToolError("the page did not finish loading: a redirect did not complete in time")
                # The redirect page replaces itself at once; wake on its target's response (or re-check the flag).
                with contextlib.suppress(PlaywrightTimeout):
                    page.wait_for_event("response", timeout=min(left_ms, _RECHECK_MS))
            page.wait_for_load_state("load", timeout=max(1.0, (deadline - time.monotonic()) * 1000))
        except PlaywrightError as exc:
            self.session.check_alive()
            raise ToolError(f"the page did not finish loading: {_short(exc)}") from None

    # ---- targets ------------------------------------------------------------------------------------------

    def locate(self, target: Target) -> Locator:
        """The one element `target` names on the active page; ToolError if none or several match."""
        page = self.page
        if target.bid is not None:
            if target.bid not in self.refs:
                shown = ", ".join(sorted(self.refs, key=_ref_order)[:20]) or "none"
                raise ToolError(f"no element {target.bid!r} in the last observation (refs there: {shown}"
                                f"{', ...' if len(self.refs) > 20 else ''}); observe again and use a ref it shows")
            locator = page.locator(f"aria-ref={target.bid}")
            described = f"element {target.bid}"
        elif target.label is not None:
            locator = page.get_by_label(target.label, exact=True)
            described = f"field labelled {target.label!r}"
        else:
            assert target.role is not None and target.name is not None
            locator = page.get_by_role(target.role, name=target.name, exact=True)  # type: ignore[arg-type]
            described = f"{target.role} named {target.name!r}"
        count = self.run(f"finding the {described}", locator.count)
        if count == 0:
            raise ToolError(f"no {described} on this page")
        if count > 1:
            raise ToolError(f"{count} elements match the {described}; use a bid ref from the observation")
        return locator

    # ---- tabs ---------------------------------------------------------------------------------------------

    def follow_new_tab(self, before: list[Page]) -> None:
        """A tab the action opened is made active when Playwright reports it (session._watch); if it is here
        already, wait for it to load so the observation shows it."""
        if self.page not in before:
            self.settle()

    # ---- observing ----------------------------------------------------------------------------------------

    def observe(self, error: str | None = None) -> str:
        """The observation text: URL, title, tabs, the accessibility tree with refs, and the last error."""
        self.session.check_alive()
        page = self.page
        try:
            snapshot = page.aria_snapshot(mode="ai", timeout=SNAPSHOT_TIMEOUT_MS)
            title = page.title()
        except PlaywrightError as exc:
            self.session.check_alive()
            snapshot, title = f"(the page could not be read: {_short(exc)})", ""
        self.refs = refs_in(snapshot)
        tabs = [TabView(index=i, title=_title(p), url=p.url, active=p is page)
                for i, p in enumerate(self.session.tabs())]
        return observation_text(PageView(url=page.url, title=title, tabs=tabs, tree=snapshot), error)

    def screenshot(self) -> Screenshot:
        png = self.run("taking a screenshot", lambda: self.page.screenshot(type="png", full_page=False))
        step = len(self.screenshots) + 1
        path = shown_as = None
        if self.artifacts_dir is not None:
            path = self.artifacts_dir / f"screenshot-{step:03d}.png"
            try:
                if step == 1:  # a retried episode starts afresh: none of its last try's shots stays beside this one
                    self.artifacts_dir.mkdir(parents=True, exist_ok=True)
                    for stale in self.artifacts_dir.glob("screenshot-*.png"):
                        stale.unlink()
                path.write_bytes(png)
            except OSError as exc:
                raise ArtifactNotSaved(f"the screenshot could not be saved as {path}: "
                                       f"{exc.strerror or type(exc).__name__}") from None
            shown_as = str(path.relative_to(self.artifacts_root)) if self.artifacts_root is not None else str(path)
        shot = Screenshot(step=step, png=png, path=path, shown_as=shown_as)
        self.screenshots.append(shot)
        return shot


def _ref_order(ref: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"[0-9]+", ref))


def _title(page: Page) -> str:
    try:
        return page.title()
    except PlaywrightError:
        return ""


_CALL_LOG = re.compile(r"\n\s*Call log:.*", re.S)


def _short(exc: PlaywrightError) -> str:
    """Playwright's message without its call log, on one line, bounded."""
    text = _CALL_LOG.sub("", str(exc)).strip().replace("\n", " ")
    text = re.sub(r"^(Locator|Page|BrowserContext)\.\w+: ", "", text)
    return text[:_MAX_ERROR_CHARS]
