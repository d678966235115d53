"""`python -m envs.desktop scenario=<id> [port=N] [variant=...] [seed=N] [out=DIR]`: play one scenario's episode on
its desktop, in your own browser.

The desktop is served on 127.0.0.1 (uvicorn) over the episode's world on the embedded backend. The URL and the task
are printed; a person works through the task and presses Finish on the launcher (or Ctrl-C / SIGTERM here). The
episode is then scored by the scenario's checks and written like any other run (trajectories.jsonl, results.json,
the store) under `out`, by the runner itself: the person is the run's agent (`person`).

Exit codes: 0 scored, 1 the episode ended in an error, 2 bad arguments, 130 a second Ctrl-C before it was written.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TextIO

from agents.base import Agent
from envs.cli_args import ArgumentError, one_line, split_key_values, wants_help
from envs.config import ConfigError, RunConfig

AGENT_NAME = "person"
KEYS = ("scenario", "port", "variant", "seed", "out")
DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"
SERVER_START_S = 10.0

USAGE = f"""usage: python -m envs.desktop scenario=<id> [port=N] [variant=NAME] [seed=N] [out=DIR]

Serves one episode of the scenario on http://{LOOPBACK}:<port>/ (default port {DEFAULT_PORT}; port=0 picks a free
one) for you to play in your browser; press Finish on the desktop (or Ctrl-C here) to score and write it.
  scenario  one scenario id (python -m scenarios list shows them)
  variant   the scenario's variant (default: its base variant)
  seed      the episode's seed (default 0)
  out       run folder (default runs/<scenario>-person)"""


class Session:
    """One played episode: the listening socket, the Finish signal, and where to tell the person what to do."""

    def __init__(self, sock: socket.socket, say: Callable[[str], None]) -> None:
        self.sock = sock
        self.finished = threading.Event()
        self.reason = ""
        self.say = say

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.sock.getsockname()[1]}/"

    def finish(self, reason: str) -> None:
        if not self.finished.is_set():
            self.reason = reason
            self.finished.set()


class DesktopPlayer(Agent):
    """The person at the desktop as the run's agent: serves the episode's world until they finish."""

    name = AGENT_NAME

    def __init__(self, session: Session) -> None:
        self.session = session

    def run(self, env) -> None:  # type: ignore[no-untyped-def]  # envs.env.SafetyEnv, imported lazily
        import uvicorn

        from envs.webapps.server import DESKTOP_HOST, DesktopConfig, build_desktop

        session = self.session
        task = "\n\n".join(m["content"] for m in env.messages if m["role"] == "user")
        config = DesktopConfig(desktop_hosts=(DESKTOP_HOST, LOOPBACK, "localhost"), task=task,
                               on_finish=lambda: session.finish("the person pressed Finish"))
        server = uvicorn.Server(uvicorn.Config(build_desktop(env.world, config), log_level="warning",
                                               lifespan="off", access_log=False))
        serving = threading.Thread(target=server.run, kwargs={"sockets": [session.sock]}, name="desktop-server",
                                   daemon=True)
        serving.start()
        try:
            if not _started(server, serving):
                raise RuntimeError(f"the desktop server did not start on {session.url}")
            session.say(f"The desktop of {env.scenario.id} is at {session.url}\n\nTask:\n{task}\n\n"
                        "Press Finish on the desktop (or Ctrl-C here) when you are done.")
            session.finished.wait()
        finally:
            server.should_exit = True  # no request changes the world while it is scored
            serving.join(timeout=SERVER_START_S)
        if "finish" in {spec.name for spec in env.tool_specs()}:
            env.step(json.dumps({"tool": "finish", "args": {"message": f"(played on the desktop; {session.reason})"}}))
        if not env.done:
            env.end_episode(session.reason)


def _started(server, thread: threading.Thread) -> bool:  # type: ignore[no-untyped-def]
    waited = threading.Event()
    for _ in range(int(SERVER_START_S / 0.05)):
        if server.started:
            return True
        if not thread.is_alive():
            return False
        waited.wait(0.05)
    return bool(server.started)


def _bind(port_text: str) -> socket.socket:
    try:
        port = int(port_text)
    except ValueError:
        raise ArgumentError(f"port={port_text}: expected a whole number from 0 to 65535") from None
    if not 0 <= port <= 65535:
        raise ArgumentError(f"port={port_text}: expected a whole number from 0 to 65535")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((LOOPBACK, port))
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise ArgumentError(f"port={port}: cannot listen on {LOOPBACK}:{port} ({exc.strerror or exc}); "
                            "choose another port (port=0 picks a free one)") from None
    return sock


def _run_config(given: dict[str, str]) -> RunConfig:
    from envs.config import parse_args

    if "scenario" not in given:
        raise ConfigError("scenario=<id> is required (python -m scenarios list shows them)")
    args = [f"{key}={value}" for key, value in given.items() if key != "port"]
    config = parse_args([*args, f"agent={AGENT_NAME}", "backend=sim", "workers=1", "progress=false"])
    return config


def main(argv: list[str] | None = None, stdout: TextIO | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    out = stdout or sys.stdout
    if wants_help(argv):
        print(USAGE, file=out)
        return 0
    try:
        _, given = split_key_values(argv, KEYS)
        config = _run_config(given)
        sock = _bind(given.get("port", str(DEFAULT_PORT)))
    except (ArgumentError, ConfigError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return 2
    with sock:
        return _play(config, Session(sock, lambda text: print(text, file=out, flush=True)), out)


def _play(config: RunConfig, session: Session, out: TextIO) -> int:
    from agents.registry import AGENTS
    from envs.runner import RunOutcome, execute, plan_episodes

    AGENTS.add(AGENT_NAME, lambda spec: DesktopPlayer(session))
    outcome: list[RunOutcome] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            specs = plan_episodes(config)
            if len(specs) != 1:
                raise ConfigError(f"scenario={config.scenario} names {len(specs)} episodes; name one scenario "
                                  f"(e.g. {specs[0].scenario.id if specs else 'a scenario id'}) and one variant")
            outcome.append(execute(config))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread, in one line
            failure.append(exc)
        finally:
            session.finish("the run stopped")

    # The run goes on in a thread so Ctrl-C and SIGTERM reach this one: the first ends the episode (it is scored
    # and written), a second stops at once.
    runner = threading.Thread(target=run, name="desktop-episode")
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum: int, frame: FrameType | None) -> None:
        if session.finished.is_set():
            raise KeyboardInterrupt
        session.finish(f"the person stopped the desktop ({signal.Signals(signum).name})")

    for sig in previous:
        signal.signal(sig, stop)
    try:
        runner.start()
        while runner.is_alive():
            runner.join(timeout=0.2)
    except KeyboardInterrupt:
        print("interrupted before the episode was written", file=sys.stderr)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        AGENTS.remove(AGENT_NAME)
    if failure:
        exc = failure[0]
        if isinstance(exc, ConfigError | ValueError):
            print(f"error: {one_line(exc)}", file=sys.stderr)
            return 2
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return 1
    return _report(outcome[0], out)


def _report(outcome, out: TextIO) -> int:  # type: ignore[no-untyped-def]
    if outcome.ran == 0:  # the runner resumes: an episode already in `out` is not played again
        print(f"error: {outcome.out_dir} already holds this episode; choose another out=", file=sys.stderr)
        return 2
    if outcome.errors:
        error = outcome.errors[0].error
        print(f"the episode ended in an error: {error.kind}: {error.message}", file=sys.stderr)
        return 1
    trajectories = outcome.out_dir / "trajectories.jsonl"
    lines = trajectories.read_text().splitlines()
    verdicts = json.loads(lines[-1]).get("verdicts") or {} if lines else {}
    print(f"scored and written to {outcome.out_dir}", file=out)
    for key in ("harm", "success", "refusal", "over_caution"):
        if key in verdicts:
            print(f"  {key}: {verdicts[key]}", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
