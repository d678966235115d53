"""The browser backend: the episode's desktop (web apps over the world) in real Chromium, driven by desktop actions.

The world is served by the desktop's ASGI app, which mutates it in place, so `world()` is the live state with no read
back. Chromium is warm per worker thread (envs.browser.chromium); each episode gets a cleared context and its own
router, which answers every request in process and blocks every host the desktop does not serve."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from playwright.sync_api import Error as PlaywrightError
from starlette.types import ASGIApp

from envs.actions import ToolCall
from envs.backends.base import Backend, BackendError, artifact_folder
from envs.browser.actions import DESKTOP_ACTIONS
from envs.browser.chromium import CHROMIUM, BrowserUnavailable
from envs.browser.driver import ArtifactNotSaved, BrowserDriver, Screenshot
from envs.browser.routing import ANSWER_TIMEOUT_S, DESKTOP_HOST, DesktopRouter, served_hosts
from envs.browser.session import BrowserCrashed, EpisodeSession, Timeouts
from envs.spaces import clip_text
from envs.tools import Tool, ToolError, ToolResult, ToolSpec, registered_tools
from envs.world import World

GENERIC_TOOLS = ("refuse", "finish")
HOME_URL = f"http://{DESKTOP_HOST}/"

# Builds an episode's desktop: the ASGI app over the world, and the hosts it serves besides desktop.test.
DesktopFactory = Callable[[World], tuple[ASGIApp, Iterable[str]]]


def project_desktop(world: World) -> tuple[ASGIApp, Iterable[str]]:
    """The project's desktop (envs.webapps.server), and the invented sites it serves if it says which."""
    try:
        from envs.webapps import server
    except ImportError as exc:
        raise BackendError(f"the desktop server (envs.webapps.server) cannot be imported: {exc}") from None
    app = server.build_desktop(world)
    hosts_of = getattr(server, "served_hosts", None)
    return app, (hosts_of(world) if callable(hosts_of) else ())


class BrowserBackend(Backend):
    name = "browser"
    # Where this episode's screenshots are saved, and the folder observations name them relative to (the run folder);
    # set by keep_artifacts. None: kept in memory only (`screenshots`).
    artifacts_dir: Path | None = None
    artifacts_root: Path | None = None
    desktop: ClassVar[DesktopFactory] = staticmethod(project_desktop)
    home_url: ClassVar[str] = HOME_URL
    timeouts: Timeouts = Timeouts()
    answer_timeout_s: float = ANSWER_TIMEOUT_S  # a desktop request unanswered this long gets a 504 page

    def __init__(self) -> None:
        self._world: World | None = None
        self._driver: BrowserDriver | None = None
        self._tools: dict[str, Tool] = {}

    @classmethod
    def preflight(cls) -> None:
        if not CHROMIUM.exists():
            raise BackendError(f"backend=browser needs Chromium at {CHROMIUM}: as root, `apt-get install -y "
                               "chromium` (scripts/install.sh does it), or name it with SAFETY_SANDBOX_CHROMIUM")

    def keep_artifacts(self, root: Path, episode: str) -> None:
        self.artifacts_dir, self.artifacts_root = root / artifact_folder(episode), root.parent

    def start(self, world: World, allowed_tools: list[str] | None) -> None:
        # The desktop's tools are its actions: the scenario's tool list names the apps' embedded tools, which this
        # backend replaces by clicking and typing in their views.
        self._world = world
        try:
            app, hosts = type(self).desktop(world)
        except BackendError:
            raise
        except Exception as exc:  # a view or app that cannot serve this world: the episode cannot start
            raise BackendError(f"the desktop could not be built for this world: {type(exc).__name__}: {exc}") from None
        router = DesktopRouter(app, served_hosts(hosts), answer_timeout_s=self.answer_timeout_s)
        try:
            session = EpisodeSession.open(router, self.timeouts)
        except (BrowserUnavailable, PlaywrightError) as exc:
            router.close()
            raise BackendError(f"Chromium could not start the episode: {str(exc).splitlines()[0]}") from None
        self._driver = BrowserDriver(session, world, artifacts_dir=self.artifacts_dir,
                                     artifacts_root=self.artifacts_root)
        generic = registered_tools()
        self._tools = {t.name: t for t in DESKTOP_ACTIONS} | {n: generic[n] for n in GENERIC_TOOLS}
        try:
            self._driver.run("opening the desktop", lambda: session.active.goto(self.home_url, wait_until="load"))
        except (ToolError, BrowserCrashed) as exc:
            self.close()
            raise BackendError(f"the desktop did not load in Chromium: {exc}") from None

    def _require_driver(self) -> BrowserDriver:
        if self._driver is None:
            raise BackendError("browser backend used before start()")
        return self._driver

    def tool_specs(self) -> list[ToolSpec]:
        driver = self._require_driver()
        return [t.spec(driver if t.name not in GENERIC_TOOLS else self._world) for t in self._tools.values()]

    def call(self, call: ToolCall) -> ToolResult:
        driver = self._require_driver()
        tool = self._tools.get(call.tool)
        if tool is None:
            raise ToolError(f"unknown tool {call.tool!r}; available: {', '.join(self._tools)}")
        if call.tool in GENERIC_TOOLS:
            return tool.invoke(self._world, call.args)
        try:
            return tool.invoke(driver, call.args)
        except BrowserCrashed as exc:
            raise BackendError(f"browser failure: {exc}") from None
        except ArtifactNotSaved as exc:
            raise BackendError(str(exc)) from None
        except ToolError as exc:
            raise ToolError(f"{exc}\n\n{self._observation_after_error()}") from None

    def _observation_after_error(self) -> str:
        """Where the agent is after a failed action, so it can go on from there."""
        try:
            return self._require_driver().observe()
        except (BrowserCrashed, PlaywrightError) as exc:
            raise BackendError(f"browser failure: {exc}") from None

    def observation(self) -> str:
        """The current observation (URL, tabs, accessibility tree)."""
        try:
            return self._require_driver().observe()
        except (BrowserCrashed, PlaywrightError) as exc:
            raise BackendError(f"browser failure: {exc}") from None

    def first_observation(self) -> str:
        """The desktop's launcher page, as every action's result shows a page: the agent's first turn can act on it."""
        return self.observation()

    @property
    def screenshots(self) -> list[Screenshot]:
        """Screenshots taken this episode, PNG bytes and where each was saved (for vision agents)."""
        return list(self._driver.screenshots) if self._driver is not None else []

    @property
    def blocked_requests(self) -> list:
        return list(self._driver.session.router.blocked) if self._driver is not None else []

    def final_message(self, text: str) -> None:
        world = self.world()
        world.receive_final_message(text)
        world.agent.final_message = clip_text(text)

    def world(self) -> World:
        if self._world is None:
            raise BackendError("browser backend used before start()")
        return self._world

    def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is not None:
            driver.session.close()
