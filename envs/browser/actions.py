"""The desktop actions, as tools (names and arguments after BrowserGym's where they fit). Each takes typed arguments
and acts through Playwright on the episode's pages; its result is the observation after it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from envs.browser.driver import BrowserDriver
from envs.browser.routing import host_of
from envs.browser.targets import Target
from envs.spaces import MAX_TEXT
from envs.tools import Tool, ToolError, ToolResult
from envs.tools.base import tool

MAX_SCROLL = 20_000  # pixels per scroll action
MAX_TABS = 10


class NoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FillArgs(Target):
    value: str = Field(max_length=MAX_TEXT, description="The text to type into the field (it replaces what is there).")


class PressArgs(Target):
    key_comb: str = Field(pattern=r"^[A-Za-z0-9]+(\+([A-Za-z0-9]+|[-=\[\];',./`\\]))*$|^[-=\[\];',./`\\+]$",
                          max_length=60, description="A key or combination, e.g. Enter, Tab, Control+a.")


class SelectArgs(Target):
    options: str | list[str] = Field(description="The option (label or value) to select, or several for a "
                                                 "multiple select.")


class ScrollArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delta_x: float = Field(ge=-MAX_SCROLL, le=MAX_SCROLL, description="Pixels to scroll right (negative: left).")
    delta_y: float = Field(ge=-MAX_SCROLL, le=MAX_SCROLL, description="Pixels to scroll down (negative: up).")


class GotoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2048, description="An http(s) address on this desktop.")


class TabFocusArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    index: int = Field(ge=0, lt=MAX_TABS, description="The tab's index, as the observation lists them.")


class MessageArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(max_length=MAX_TEXT, description="The message for the user.")


def _observed(driver: BrowserDriver) -> ToolResult:
    return ToolResult(output=driver.observe())


def _act_on(driver: BrowserDriver, what: str, target: Target, act) -> ToolResult:  # noqa: ANN001 - a callable
    locator = driver.locate(target)
    before = driver.session.tabs()
    driver.run(what, lambda: act(locator))
    driver.settle()
    driver.follow_new_tab(before)
    return _observed(driver)


@tool(name="click", args=Target)
def click(driver: BrowserDriver, args: Target) -> ToolResult:
    """Click an element (a button, link, checkbox, ...) named by its bid ref, or by role and name, or by label."""
    return _act_on(driver, "click", args, lambda loc: loc.click())


@tool(name="fill", args=FillArgs)
def fill(driver: BrowserDriver, args: FillArgs) -> ToolResult:
    """Type a value into a text field (replacing its content)."""
    return _act_on(driver, "fill", args, lambda loc: loc.fill(args.value))


@tool(name="press", args=PressArgs)
def press(driver: BrowserDriver, args: PressArgs) -> ToolResult:
    """Press a key or key combination in an element (e.g. Enter in a search box)."""
    return _act_on(driver, f"pressing {args.key_comb}", args, lambda loc: loc.press(args.key_comb))


@tool(name="select_option", args=SelectArgs)
def select_option(driver: BrowserDriver, args: SelectArgs) -> ToolResult:
    """Choose an option (by its label or value) in a drop-down list."""
    return _act_on(driver, "select_option", args, lambda loc: loc.select_option(args.options))


@tool(name="scroll", args=ScrollArgs)
def scroll(driver: BrowserDriver, args: ScrollArgs) -> ToolResult:
    """Scroll the page by some pixels."""
    driver.run("scroll", lambda: driver.page.mouse.wheel(args.delta_x, args.delta_y))
    return _observed(driver)


@tool(name="goto", args=GotoArgs)
def goto(driver: BrowserDriver, args: GotoArgs) -> ToolResult:
    """Open an address in the active tab (only the desktop's own sites can be reached)."""
    reason = driver.session.router.block_reason(args.url)
    if reason is not None:
        raise ToolError(f"cannot open {args.url[:200]}: {reason}")
    driver.run(f"opening {host_of(args.url)}", lambda: driver.page.goto(args.url, wait_until="load"))
    driver.settle()  # through a redirect the address answered with
    return _observed(driver)


@tool(name="go_back", args=NoArgs)
def go_back(driver: BrowserDriver, args: NoArgs) -> ToolResult:
    """Go back to the previous page in the active tab."""
    response = driver.run("go_back", lambda: driver.page.go_back(wait_until="load"))
    if response is None and driver.page.url in ("about:blank", ""):
        raise ToolError("there is no earlier page in this tab")
    driver.settle()
    return _observed(driver)


@tool(name="new_tab", args=NoArgs)
def new_tab(driver: BrowserDriver, args: NoArgs) -> ToolResult:
    """Open a new, empty tab and make it the active one."""
    if len(driver.session.tabs()) >= MAX_TABS:
        raise ToolError(f"{MAX_TABS} tabs are open already; close one first")
    driver.session.active = driver.run("new_tab", driver.session.context.new_page)
    return _observed(driver)


@tool(name="tab_focus", args=TabFocusArgs)
def tab_focus(driver: BrowserDriver, args: TabFocusArgs) -> ToolResult:
    """Make the tab at this index (as the observation lists them) the active one."""
    tabs = driver.session.tabs()
    if args.index >= len(tabs):
        raise ToolError(f"no tab {args.index}: {len(tabs)} tab(s) open (0 to {len(tabs) - 1})")
    driver.session.active = tabs[args.index]
    driver.run("tab_focus", driver.page.bring_to_front)
    return _observed(driver)


@tool(name="tab_close", args=NoArgs)
def tab_close(driver: BrowserDriver, args: NoArgs) -> ToolResult:
    """Close the active tab; the last remaining tab becomes active (closing the only tab leaves an empty one)."""
    driver.run("tab_close", driver.page.close)
    driver.session.check_alive()  # picks the next active tab, or opens an empty one
    return _observed(driver)


@tool(name="send_msg_to_user", args=MessageArgs)
def send_msg_to_user(driver: BrowserDriver, args: MessageArgs) -> ToolResult:
    """Send a message to the user (e.g. an answer or a question); the episode goes on."""
    driver.world.receive_final_message(args.text)
    return ToolResult(output="Message sent to the user.")


@tool(name="screenshot", args=NoArgs)
def screenshot(driver: BrowserDriver, args: NoArgs) -> ToolResult:
    """Take a screenshot of the active tab (saved with the run's output, and shown to agents that read images)."""
    shot = driver.screenshot()
    where = "kept in memory (no output folder for this run)" if shot.shown_as is None else f"saved as {shot.shown_as}"
    return ToolResult(output=f"Screenshot {shot.step} taken ({len(shot.png)} bytes PNG), {where}.")


DESKTOP_ACTIONS: tuple[Tool, ...] = (click, fill, press, select_option, scroll, goto, go_back, new_tab, tab_focus,
                                     tab_close, send_msg_to_user, screenshot)
