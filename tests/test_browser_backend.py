"""backend=browser in real Chromium: desktop actions change the live world, targets and arguments are checked, tabs,
screenshots, failures as errors the agent reads, a crash as a backend error followed by a healthy browser, episodes
that leave nothing behind, one browser per worker thread."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browser_desktop import FixtureDesktopBackend, start_episode

from envs.actions import ToolCall
from envs.backends import BackendError
from envs.browser import chromium
from envs.tools import ToolError

pytestmark = pytest.mark.slow

CONTRACT_ACTIONS = {"click", "fill", "press", "select_option", "scroll", "goto", "go_back", "new_tab", "tab_focus",
                    "tab_close", "send_msg_to_user", "screenshot"}


def act(backend, tool: str, **args) -> str:
    return backend.call(ToolCall(tool=tool, args=args)).output


def ref_of(observation: str, line_pattern: str) -> str:
    """The ref on the first line of the observation's tree matching `line_pattern`."""
    for line in observation.splitlines():
        if re.search(line_pattern, line) and (found := re.search(r"\[ref=((?:f\d+)?e\d+)\]", line)):
            return found.group(1)
    raise AssertionError(f"no line matching {line_pattern!r} with a ref in:\n{observation}")


@pytest.fixture
def episode(tmp_path):
    backend, world = start_episode(tmp_path / "artifacts")
    yield backend, world
    backend.close()


def test_tools_are_the_desktop_actions_and_the_generic_ones(episode):
    backend, _ = episode
    names = {spec.name for spec in backend.tool_specs()}
    assert names == CONTRACT_ACTIONS | {"refuse", "finish"}
    click = next(s for s in backend.tool_specs() if s.name == "click")
    assert {"bid", "role", "name", "label"} <= set(click.parameters["properties"])


def test_a_form_filled_and_sent_changes_the_live_world(episode):
    backend, world = episode
    assert backend.world() is world  # the desktop mutates the very world the episode scores
    act(backend, "fill", label="To", value="ana@corp.test")
    act(backend, "select_option", label="Kind", options="urgent")
    after = act(backend, "click", role="button", name="Send")
    assert world.agent.final_message == "to ana@corp.test (urgent)"
    # The view's 303 lands where the address bar says, and the page shows the new state.
    assert "URL: http://desktop.test/\n" in after
    assert "Last sent: to ana@corp.test (urgent)" in after


def test_press_enter_submits_the_form(episode):
    backend, world = episode
    act(backend, "fill", label="To", value="by-enter@corp.test")
    act(backend, "press", label="To", key_comb="Enter")
    assert world.agent.final_message == "to by-enter@corp.test (plain)"


def test_bid_refs_come_from_the_last_observation(episode):
    backend, _ = episode
    first = backend.observation()
    assert "URL: http://desktop.test/" in first and "Title: Desktop" in first
    about = ref_of(first, r'link "About"')
    after = act(backend, "click", bid=about)
    assert "URL: http://desktop.test/about" in after and 'heading "About"' in after
    with pytest.raises(ToolError, match=r"no element 'e999' in the last observation \(refs there: (f\d+)?e\d"):
        act(backend, "click", bid="e999")


@pytest.mark.parametrize(("args", "problem"), [
    ({}, "exactly one of"),
    ({"bid": "e1", "label": "To"}, "got bid and label"),
    ({"role": "button"}, "role needs name"),
    ({"role": "knob", "name": "Send"}, "not an ARIA role"),
    ({"label": "To", "name": "x"}, "name goes with role"),
    ({"bid": "document.body"}, "bid"),
])
def test_a_target_must_be_exactly_one_valid_kind(episode, args, problem):
    backend, _ = episode
    with pytest.raises(ToolError, match=re.escape(problem)):
        act(backend, "click", **args)


def test_bad_action_arguments_are_errors_naming_the_field(episode):
    backend, _ = episode
    with pytest.raises(ToolError, match="key_comb"):
        act(backend, "press", label="To", key_comb="Enter'); alert(1); ('")
    with pytest.raises(ToolError, match="delta_y"):
        act(backend, "scroll", delta_x=0, delta_y=1e12)
    with pytest.raises(ToolError, match="unknown tool 'evaluate'"):
        act(backend, "evaluate", expression="1")


def test_missing_and_ambiguous_elements_are_errors_with_the_page(episode):
    backend, _ = episode
    with pytest.raises(ToolError) as missing:
        act(backend, "click", role="button", name="Delete everything")
    assert "no button named 'Delete everything' on this page" in str(missing.value)
    assert "URL: http://desktop.test/" in str(missing.value)  # where the agent is, to go on from there
    with pytest.raises(ToolError, match="2 elements match the button named 'Twin'"):
        act(backend, "click", role="button", name="Twin")


def test_tabs_open_focus_and_close(episode):
    backend, _ = episode
    opened = act(backend, "new_tab")
    assert "[1] (active)" in opened and "about:blank" in opened
    act(backend, "goto", url="http://desktop.test/about")
    focused = act(backend, "tab_focus", index=0)
    assert "URL: http://desktop.test/\n" in focused and "[0] (active)" in focused
    with pytest.raises(ToolError, match=r"no tab 5: 2 tab\(s\) open"):
        act(backend, "tab_focus", index=5)
    closed = act(backend, "tab_close")
    assert "URL: http://desktop.test/about" in closed and "[1]" not in closed


def test_a_page_that_opens_a_tab_makes_it_active(episode):
    backend, _ = episode
    act(backend, "goto", url="http://desktop.test/popup")
    after = act(backend, "click", role="button", name="Open about")
    for _ in range(50):  # Playwright reports a popup shortly after the click that opened it
        if "[1] (active)" in after:
            break
        after = backend.observation()
    assert "[1] (active) About - http://desktop.test/about" in after, after


def test_go_back(episode):
    backend, _ = episode
    act(backend, "goto", url="http://desktop.test/about")
    assert "URL: http://desktop.test/\n" in act(backend, "go_back")


def test_screenshot_is_a_png_saved_beside_the_run_and_kept_for_vision_agents(episode, tmp_path):
    backend, _ = episode
    out = act(backend, "screenshot")
    shot = backend.screenshots[-1]
    assert shot.png.startswith(b"\x89PNG\r\n\x1a\n") and len(shot.png) > 1000
    assert shot.path == tmp_path / "artifacts" / "screenshot-001.png"
    assert shot.path.read_bytes() == shot.png and str(shot.path) in out


def test_send_msg_to_user_reaches_the_world_and_refuse_ends_the_episode(episode):
    backend, world = episode
    assert backend.call(ToolCall(tool="send_msg_to_user", args={"text": "Done, sent."})).ends_episode is False
    assert world.agent.final_message == "Done, sent."
    result = backend.call(ToolCall(tool="refuse", args={"reason": "not safe"}))
    assert result.ends_episode and world.agent.refusals[0].reason == "not safe"


def test_a_page_that_never_loads_is_an_error_not_a_hang(episode):
    backend, _ = episode
    with pytest.raises(ToolError, match="Timeout"):
        act(backend, "goto", url="http://desktop.test/slow")
    # The browser is fine afterwards.
    assert "URL: http://desktop.test/about" in act(backend, "goto", url="http://desktop.test/about")


def test_a_view_that_fails_is_a_500_page(episode):
    backend, _ = episode
    out = act(backend, "goto", url="http://desktop.test/boom")
    assert "Internal Server Error" in out


def _browser_pid() -> int:
    """The main Chromium process this process launched (no --type=: not a renderer or helper)."""
    mine = f"{chromium.OWNER_VARIABLE}={os.getpid()}".encode()
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if mine in environ.split(b"\0") and b"--type=" not in cmdline and b"chromium" in cmdline:
            return int(proc.name)
    raise AssertionError("no Chromium of this process found")


def test_chromium_killed_mid_episode_is_a_backend_error_and_the_next_episode_is_healthy(tmp_path):
    backend, _ = start_episode()
    os.kill(_browser_pid(), signal.SIGKILL)
    with pytest.raises(BackendError, match="Chromium is gone"):
        for _ in range(50):  # the driver notices the death within a few calls at most
            act(backend, "goto", url="http://desktop.test/about")
    backend.close()
    again, world = start_episode()
    try:
        act(again, "fill", label="To", value="after@crash.test")
        act(again, "click", role="button", name="Send")
        assert world.agent.final_message == "to after@crash.test (plain)"
    finally:
        again.close()


def test_a_crashed_tab_is_a_backend_error_and_the_next_episode_gets_a_new_tab_on_the_same_browser():
    backend, _ = start_episode()
    warm = chromium.thread_browser()
    with pytest.raises(Exception):  # noqa: B017 - the harness (not the agent) crashes the renderer; Playwright errs
        backend._driver.page.goto("chrome://crash", timeout=3_000)
    with pytest.raises(BackendError, match="renderer crashed"):
        act(backend, "goto", url="http://desktop.test/about")
    backend.close()
    again, _ = start_episode()
    try:
        assert chromium.thread_browser() is warm
        assert "URL: http://desktop.test/about" in act(again, "goto", url="http://desktop.test/about")
    finally:
        again.close()


def test_nothing_of_one_episode_reaches_the_next():
    first, _ = start_episode()
    stored = act(first, "goto", url="http://desktop.test/store")
    assert "stored" in stored
    act(first, "new_tab")
    first.close()
    second, _ = start_episode()
    try:
        assert "[1]" not in second.observation()  # the last episode's tabs are gone
        with pytest.raises(ToolError):  # and so is its history
            act(second, "go_back")
        out = act(second, "goto", url="http://desktop.test/recall")
        assert "found: none" in out, out
    finally:
        second.close()


def test_a_page_that_asks_to_stay_keeps_neither_the_agent_nor_the_next_episode():
    first, _ = start_episode()
    act(first, "goto", url="http://desktop.test/clingy")  # its alert() is dismissed, not left blocking the page
    act(first, "fill", label="Note", value="typed")  # user activation: Chromium now asks before leaving
    assert "URL: http://desktop.test/about" in act(first, "goto", url="http://desktop.test/about")
    act(first, "go_back")
    act(first, "fill", label="Note", value="again")
    warm = chromium.thread_browser()
    first.close()
    second, world = start_episode()
    try:
        assert chromium.thread_browser() is warm  # reset, not relaunched after a failed reset
        assert "URL: http://desktop.test/\n" in second.observation()
    finally:
        second.close()


def test_each_worker_thread_has_its_own_warm_browser():
    results: dict[str, object] = {}

    def worker(tag: str) -> None:
        try:
            for i in range(2):
                backend, world = start_episode()
                act(backend, "fill", label="To", value=f"{tag}{i}@t.test")
                act(backend, "click", role="button", name="Send")
                results[f"{tag}{i}"] = (world.agent.final_message, id(chromium.thread_browser()))
                backend.close()
        except Exception as exc:  # reported by the assertion below
            results[tag] = exc
        finally:
            chromium.close_thread_browser()

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert set(results) == {"a0", "a1", "b0", "b1"}, results
    assert results["a0"][0] == "to a0@t.test (plain)" and results["b1"][0] == "to b1@t.test (plain)"
    assert results["a0"][1] == results["a1"][1] != results["b0"][1]  # warm within a thread, apart across them


def test_backend_is_registered_under_its_name():
    from envs.backend_info import backend_info
    from envs.backends import backend_class

    assert backend_class("browser").__name__ == "BrowserBackend"
    assert backend_info("browser").serves_desktop and backend_info("browser").live_world
    assert issubclass(FixtureDesktopBackend, backend_class("browser"))


def test_an_episode_never_closed_does_not_hold_up_the_exit():
    """A user who forgets env.close(): the process still ends (the router's loop thread is a daemon with nothing to
    unwind), and closes its browser on the way out."""
    code = ("import sys; sys.path.insert(0, 'tests'); from browser_desktop import start_episode; "
            "from envs.actions import ToolCall; b, _ = start_episode(); "
            "b.call(ToolCall(tool='goto', args={'url': 'http://desktop.test/about'})); "
            "[start_episode() for _ in range(3)]; print('ok')")  # and three more, dropped unclosed
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
