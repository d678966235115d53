"""A worker process's side of the runner. Each worker builds its own agent, judges and backend clients from the
run's configuration (Docker and Playwright clients belong to one process), plays chunks of episodes and sends back
their serialised trajectories. It writes nothing: the runner's process is the one writer of the run's files.

Signals. Ctrl-C reaches every process of the terminal's group: a worker ignores SIGINT and lets the runner decide
(finish what is in flight, then stop). SIGTERM means "stop now": the episode in progress unwinds (its sandbox is
closed), the process runs its exit hooks (warm containers removed, browsers closed) and exits. A watchdog thread
sends the worker that SIGTERM when the runner's process is gone, so no worker outlives its run, even a run killed
with SIGKILL (the fork server cannot be relied on for that: every worker holds its "alive" pipe open).
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os
import select
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from agents.base import Agent
from agents.registry import make_agent
from envs.config import RunConfig
from envs.runner.play import EpisodeSpec, PlayedChunk, describe_error, play_chunk
from envs.sandbox.process import pid_alive
from evaluator.judges import Judge, judge_names, make_judges

RUNNER_POLL_S = 1.0  # where a process cannot be watched through a pidfd
EXIT_WITHIN_S = 5.0  # after the runner is gone, the time the worker gets to unwind and run its exit hooks


class WorkerSetupFailed(RuntimeError):
    """The worker could not build what the run needs (agent, judges); each episode sent to it is recorded with this."""


@dataclass
class _Worker:
    config: RunConfig
    agent: Agent | None = None
    judges: Sequence[Judge] = ()
    setup_error: str | None = None


_worker: _Worker | None = None
_in_episode = False
# The run's plan, set in the runner before it forks its workers: a forked worker finds each episode here by its
# index instead of receiving the scenario pickled (a tenth of an episode's cost, twice).
inherited_plan: list[EpisodeSpec] = []


def start(config: RunConfig, environ: dict[str, str], runner_pid: int) -> None:
    """The pool's initializer: never raises (a failure is reported with each chunk, not as a dead worker)."""
    global _worker
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_now)
    _watch_runner(runner_pid)
    # The fork server was started with the environment of its time; the run's may have changed since.
    os.environ.clear()
    os.environ.update(environ)
    # A pool worker leaves through os._exit, which skips atexit: run the hooks (providers' shutdown, browsers) then.
    multiprocessing.util.Finalize(None, atexit._run_exitfuncs, exitpriority=0)
    _worker = _Worker(config)
    try:
        _worker.agent = make_agent(config.agent, config.chat_model(), seed=config.seed)
        _worker.judges = make_judges(judge_names(config.judges))
    except Exception as exc:  # noqa: BLE001 - reported with every chunk, as the episodes' error
        _worker.setup_error = f"the worker process could not build agent={config.agent}: {describe_error(exc)}"


def play_inherited(indexes: list[int]) -> PlayedChunk:
    return play([inherited_plan[i] for i in indexes])


def play(specs: list[EpisodeSpec]) -> PlayedChunk:
    global _in_episode
    if _worker is None or _worker.agent is None:
        raise WorkerSetupFailed(_worker.setup_error if _worker else "the worker process was not started")
    _in_episode = True
    try:
        return play_chunk(specs, _worker.agent, _worker.config, _worker.judges)
    except KeyboardInterrupt:  # SIGTERM: the episode unwound; leave now
        _exit_now()
        raise
    finally:
        _in_episode = False


def _stop_now(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the cleanup that follows must not be cut short
    if _in_episode:
        raise KeyboardInterrupt(f"signal {signum}")
    _exit_now()


def _exit_now() -> None:
    try:
        atexit._run_exitfuncs()
    finally:
        os._exit(1)


def _watch_runner(runner_pid: int) -> None:
    """Stop this worker (SIGTERM to itself) when the runner's process ends, however it ends."""
    try:
        pidfd = os.pidfd_open(runner_pid)  # Linux 5.3+: readable once that very process has exited
    except ProcessLookupError:
        os._exit(1)  # the runner died before this worker started
    except (AttributeError, OSError):
        pidfd = None

    def watch() -> None:
        if pidfd is not None:
            select.select([pidfd], [], [])
        else:
            while pid_alive(runner_pid):
                threading.Event().wait(RUNNER_POLL_S)
        os.kill(os.getpid(), signal.SIGTERM)  # the main thread unwinds its episode and exits...
        threading.Event().wait(EXIT_WITHIN_S)
        os._exit(1)  # ...unless it cannot (e.g. blocked writing a result to the dead runner's pipe)

    threading.Thread(target=watch, name="runner-watchdog", daemon=True).start()

