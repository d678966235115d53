"""The browser is a sandbox like the others: the agent (and any page it opens) reaches only the episode's desktop.

Chromium runs on the host, as root with its own sandbox off (it needs namespaces a container here cannot give), so
what holds is ours: every request is answered by the episode's router, which serves the desktop's hosts and blocks the
rest; the browser's own schemes (file:, chrome:, devtools:, data:, javascript:) are refused before navigating;
downloads are cancelled; websockets and service workers are refused; Chromium gets an environment of its own; and a
request that escapes the routing meets a proxy at a dead address. Each attempt is tested here, as is that no browser
process outlives the run, however it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from browser_desktop import start_episode

from envs.actions import ToolCall
from envs.browser import chromium
from envs.tools import ToolError

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def act(backend, tool: str, **args) -> str:
    return backend.call(ToolCall(tool=tool, args=args)).output


@pytest.fixture
def episode():
    backend, world = start_episode()
    yield backend, world
    backend.close()


@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "chrome://version",
    "chrome://settings",
    "devtools://devtools/bundled/inspector.html",
    "view-source:http://desktop.test/",
    "data:text/html,<h1>hi</h1>",
    "javascript:alert(document.cookie)",
    "http://example.com/",
    "https://desktop.test.evil.example/",
    "http://127.0.0.1:9/",
    "ftp://desktop.test/",
])
def test_goto_outside_the_desktop_is_refused_before_navigating(episode, url):
    backend, _ = episode
    with pytest.raises(ToolError, match="cannot open") as refused:
        act(backend, "goto", url=url)
    assert "URL: http://desktop.test/\n" in str(refused.value)  # still on the desktop
    assert "root:x:0:0" not in str(refused.value)


@pytest.mark.parametrize("link", ["Passwd", "Version", "Data"])
def test_a_page_cannot_take_the_agent_to_the_browsers_own_pages(episode, link):
    backend, _ = episode
    act(backend, "goto", url="http://desktop.test/links")
    try:
        out = act(backend, "click", role="link", name=link)
    except ToolError as exc:  # Chromium refused the navigation: the error shows where the agent still is
        out = str(exc)
    out += backend.observation()
    assert "root:x:0:0" not in out and "Command Line" not in out and "data page" not in out
    assert "URL: http://desktop.test/links" in out


def test_a_frame_of_a_host_file_shows_nothing(episode):
    backend, _ = episode
    out = act(backend, "goto", url="http://desktop.test/frame")
    assert "root:x:0:0" not in out and 'heading "Frame"' in out


@pytest.mark.parametrize(("to", "lands"), [
    ("/about", "URL: http://desktop.test/about"),
    ("https://shop.example/", "URL: https://shop.example/"),
    ("http://evil.example/x", "host 'evil.example' is not part of this desktop"),
    ("javascript:document.title='owned'", "redirect to the javascript: scheme is not followed"),
    ("file:///etc/passwd", "redirect to the file: scheme is not followed"),
])
def test_redirects_are_followed_only_within_the_desktop(episode, to, lands):
    backend, _ = episode
    out = act(backend, "goto", url=f"http://desktop.test/bounce?to={to}")
    assert lands in out
    assert "Title: owned" not in out and "root:x:0:0" not in out


def test_a_served_invented_site_opens(episode):
    backend, _ = episode
    out = act(backend, "goto", url="https://www.SHOP.example./")  # host compared as the desktop does
    assert 'heading "Shop"' in out


def test_a_page_opening_another_host_gets_a_blocked_page(episode):
    backend, _ = episode
    act(backend, "goto", url="http://desktop.test/popup")
    out = act(backend, "click", role="button", name="Open evil")
    for _ in range(50):  # the popup is reported shortly after the click
        if "(active) Blocked" in out:
            break
        out = backend.observation()
    assert "host 'evil.example' is not part of this desktop" in out
    assert any("evil.example" in b.url and b.navigation for b in backend.blocked_requests)


def test_a_page_cannot_reach_out(episode):
    backend, _ = episode
    act(backend, "goto", url="http://desktop.test/reach")
    expected = ["fetch blocked", "fetch inside 200", "websocket blocked", "service worker blocked"]
    for _ in range(100):  # the page's attempts settle within a few round trips
        out = backend.observation()
        if all(e in out for e in expected):
            break
    assert all(e in out for e in expected), out
    assert "fetch outside ok" not in out and "websocket open" not in out and "service worker registered" not in out
    assert '\\"undefined\\",\\"undefined\\"' in out  # no process, no require: nothing of a host runtime
    assert any(b.url.startswith("http://example.com") for b in backend.blocked_requests)


def test_a_download_never_reaches_a_host_path(episode):
    backend, _ = episode
    started = time.time()
    act(backend, "click", role="link", name="Report")
    backend.observation()  # a round trip, so a download would have begun
    home = Path(chromium.chromium_environment()["HOME"])
    # Where a download could land: Chromium's home (~/Downloads), Playwright's artifacts folders, the working folder.
    places = [*home.rglob("*"), *Path(os.environ.get("TMPDIR", "/tmp")).glob("playwright-artifacts-*/**/*"),
              *Path.cwd().glob("*")]
    written = [p for p in places if p.is_file() and p.stat().st_mtime >= started
               and (p.name == "report.bin" or _holds(p, b"inert report"))]
    assert written == []


def _holds(path: Path, needle: bytes) -> bool:
    try:
        return path.stat().st_size < 1 << 20 and needle in path.read_bytes()
    except OSError:
        return False


def test_requests_that_escape_the_routing_meet_a_dead_proxy():
    """The second layer: a context of the warm browser with no routing at all still reaches nothing, not even a
    server listening on loopback."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    context = chromium.thread_browser().browser.new_context()
    try:
        page = context.new_page()
        for url in ("http://example.com/", f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
            with pytest.raises(Exception, match="ERR_PROXY_CONNECTION_FAILED|ERR_"):
                page.goto(url, timeout=5_000)
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing connected to the loopback server
    finally:
        context.close()
        listener.close()


def test_chromium_sees_nothing_of_the_harness_environment(monkeypatch):
    canary = f"canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("SAFETY_SANDBOX_TEST_SECRET", canary)
    found: dict[str, object] = {}

    def in_a_fresh_worker() -> None:  # a thread of its own launches a browser now, with the canary set
        try:
            backend, _ = start_episode()
            act(backend, "goto", url="http://desktop.test/reach")
            found["page"] = backend.observation()
            found["environments"] = [p.read_bytes() for p in _browser_procs(os.getpid(), "environ")]
            backend.close()
        except Exception as exc:  # reported below
            found["error"] = exc
        finally:
            chromium.close_thread_browser()

    worker = threading.Thread(target=in_a_fresh_worker)
    worker.start()
    worker.join(timeout=60)
    assert "error" not in found, found.get("error")
    assert found["environments"], "no Chromium process found"
    for environ in found["environments"]:
        assert canary.encode() not in environ
        assert b"DOCKER_HOST" not in environ and b"MANAGERBENCH_DATA" not in environ and b"OPENAI" not in environ
    assert canary not in found["page"]


def _browser_procs(owner: int, entry: str = "environ") -> list[Path]:
    """/proc/<pid>/<entry> of each Chromium process `owner` launched (Chromium's environment names its owner)."""
    mine = f"{chromium.OWNER_VARIABLE}={owner}".encode()
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if mine in (proc / "environ").read_bytes().split(b"\0"):
                    out.append(proc / entry)
            except OSError:
                continue
    return out


# ---- no browser process outlives the run ----------------------------------------------------------------------

CHILD = r"""
import sys, threading
sys.path.insert(0, "tests")
from browser_desktop import start_episode
from envs.actions import ToolCall

def run(stay):
    backend, _ = start_episode()
    backend.call(ToolCall(tool="goto", args={"url": "http://desktop.test/about"}))
    print("ready", flush=True)
    if not stay:
        sys.stdin.readline()  # the test says when to end (after it has seen the browser running)
    while stay:
        backend.call(ToolCall(tool="goto", args={"url": "http://desktop.test/about"}))

how = sys.argv[1]
if how == "worker-thread":
    worker = threading.Thread(target=run, args=(False,))
    worker.start()
    worker.join()
else:
    run(how != "exit")
"""


def _left_behind(tag: str, pid: int) -> list[str]:
    """Processes of a finished child: Chromium's (its owner variable) and the Playwright driver's (the tag)."""
    marks = {f"{chromium.OWNER_VARIABLE}={pid}".encode(), f"SAFETY_SANDBOX_TEST_RUN={tag}".encode()}
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marks & set((proc / "environ").read_bytes().split(b"\0")):
                    found.append(f"{proc.name}: {(proc / 'cmdline').read_bytes()[:80]!r}")
            except OSError:
                continue
    return found


ENDINGS = [
    ("exit", None),  # the run ends normally: closed at exit
    ("worker-thread", None),  # launched by a worker thread that has ended (as the runner's are)
    ("loop", signal.SIGTERM),
    ("loop", signal.SIGKILL),  # nothing of ours runs: the driver sees its pipe close and closes Chromium
    ("loop", signal.SIGINT),  # Ctrl-C in a terminal: the whole process group gets it
]


def test_no_browser_process_outlives_the_run_however_it_ends(tmp_path):
    """Each ending in a child process of its own (run side by side, to keep the test short)."""
    children = []
    try:
        for number, (how, stop) in enumerate(ENDINGS):
            tag = uuid.uuid4().hex
            with (tmp_path / f"stderr{number}").open("wb") as stderr:  # said when a child does not end
                child = subprocess.Popen([sys.executable, "-c", CHILD, how], cwd=REPO, stdout=subprocess.PIPE,
                                         stdin=subprocess.PIPE, stderr=stderr, start_new_session=True,
                                         env={**os.environ, "SAFETY_SANDBOX_TEST_RUN": tag})
            children.append((how, stop, tag, child))
        for how, stop, tag, child in children:
            assert child.stdout.readline().strip() == b"ready", f"{how}: the child did not start its episode"
            assert _left_behind(tag, child.pid), f"{how}: its browser processes should be visible while it runs"
            if stop is signal.SIGINT:
                os.killpg(child.pid, stop)
            elif stop is not None:
                child.send_signal(stop)
            else:
                child.stdin.write(b"end\n")
                child.stdin.flush()
        for number, (how, stop, tag, child) in enumerate(children):
            try:
                child.wait(timeout=60)  # a loaded machine is slow to tear a browser down; the claim is that it goes
            except subprocess.TimeoutExpired:
                said = (tmp_path / f"stderr{number}").read_bytes()[-1500:].decode(errors="replace")
                pytest.fail(f"the child ended by {how} {stop!r} still runs after 60 s; its stderr:\n{said}")
            deadline = time.monotonic() + 10
            while (left := _left_behind(tag, child.pid)) and time.monotonic() < deadline:
                time.sleep(0.1)  # the driver closes Chromium as it goes; wait for the processes to be reaped
            assert left == [], f"left behind after {how} {stop!r}: {left}"
    finally:
        for _, _, _, child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
            child.stdout.close()
            child.stdin.close()


def test_no_browser_outlives_a_run_of_the_runner_that_is_killed(tmp_path):
    """`python -m envs.run ... backend=browser workers=2`, stopped by SIGTERM (stops between episodes) and by SIGKILL
    (nothing of it runs on): its workers' browsers go with it. Both runs side by side."""
    runs = []
    try:
        for stop in (signal.SIGTERM, signal.SIGKILL):
            tag = uuid.uuid4().hex
            child = subprocess.Popen(
                [sys.executable, "-m", "envs.run", "scenario=osblind", "agent=reference-bad", "backend=browser",
                 "workers=2", "limit=60", f"out={tmp_path / stop.name}"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "SAFETY_SANDBOX_TEST_RUN": tag})
            runs.append((stop, tag, child, set()))
        deadline = time.monotonic() + 90
        for stop, tag, child, family in runs:  # wait until both workers have a browser
            while time.monotonic() < deadline and child.poll() is None:
                family |= _tagged(tag)
                if sum(1 for pid in family if _owned_by({pid})) >= 2:  # both workers have launched theirs
                    break
                time.sleep(0.2)
            assert child.poll() is None, f"the run ended before it could be stopped ({stop.name})"
            family |= _tagged(tag)
            child.send_signal(stop)
        for stop, tag, child, family in runs:
            child.wait(timeout=60)
            deadline = time.monotonic() + 15
            while ((left := _tagged(tag) | _owned_by(family)) and time.monotonic() < deadline):
                time.sleep(0.2)
            assert left == set(), f"left behind after {stop.name}: {sorted(left)}"
    finally:
        for _, tag, child, family in runs:
            for pid in {child.pid} | _tagged(tag) | _owned_by(family):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _tagged(tag: str) -> set[int]:
    """Processes of a run (the runner, its workers, their Playwright drivers): they inherit the test's tag."""
    return _pids_with({f"SAFETY_SANDBOX_TEST_RUN={tag}".encode()})


def _owned_by(owners: set[int]) -> set[int]:
    """Chromium processes launched by any of `owners` (Chromium's own environment names its owner)."""
    return _pids_with({f"{chromium.OWNER_VARIABLE}={pid}".encode() for pid in owners})


def _pids_with(marks: set[bytes]) -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marks & set((proc / "environ").read_bytes().split(b"\0")):
                    found.add(int(proc.name))
            except OSError:
                continue
    return found
