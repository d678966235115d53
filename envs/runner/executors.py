"""Where episodes run: in the runner's own process (workers=1), in threads (work that waits on a model endpoint), or
in worker processes (CPU-bound work: scripted or offline agents on the sim or local backends). One interface: submit
a chunk of episodes, get a Future of the played chunk.

Worker processes are forked where that is safe, from a `forkserver` otherwise:
- `fork` when the runner's process has one thread and the backend keeps its world in-process (sim and its kind), the
  pool being made right after the suite loads, before the store, the agent or any backend client exists. The
  workers then inherit the loaded scenarios, and a chunk names its episodes by index (pickling a scenario and
  unpickling it cost about a tenth of a ManagerBench episode).
- `forkserver` in every other case: once the run is under way the runner's process holds threads (the progress
  bar's refresher, the store writer, the pool's own), and a shell or browser backend holds Docker clients, warm
  container pools or Playwright's event loop; a forked child would inherit a lock another thread held, or a
  connection it must not share. The fork server is a fresh single-threaded process that imports the workers'
  modules once (started early, while the runner loads the suite); each worker forks from it in milliseconds, builds
  its own agent, judges and clients, and receives each episode's scenario pickled. A pool that breaks (a worker
  died) is replaced by a forkserver pool. (`spawn` would pay the imports again in every worker.)
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Literal

from agents.base import Agent
from envs.backend_info import BACKEND_INFOS, EMBEDDED
from envs.config import RunConfig
from envs.plugins import entry_points_of
from envs.runner import worker
from envs.runner.play import EpisodeSpec, PlayedChunk, play_chunk
from evaluator.judges import Judge

ExecutorKind = Literal["in-process", "threads", "processes"]
IN_FLIGHT_PER_WORKER = 2  # one chunk playing, the next one queued, so a worker never waits for the runner
WORKER_EXIT_S = 5.0  # after SIGTERM, how long a worker may take to unwind before it is killed


class Executor(ABC):
    kind: ExecutorKind
    generation = 0  # bumped each time a broken pool is replaced

    def __init__(self, workers: int) -> None:
        self.workers = workers

    @property
    def in_flight(self) -> int:
        return IN_FLIGHT_PER_WORKER * self.workers

    @abstractmethod
    def submit(self, specs: list[EpisodeSpec]) -> Future[PlayedChunk]: ...

    def renew(self) -> None:  # noqa: B027 - only a process pool breaks
        """Replace a pool that broke (a worker process died)."""

    @abstractmethod
    def shutdown(self, now: bool) -> None:
        """Wait for the work in flight, or (now=True) stop it."""


class InProcess(Executor):
    """workers=1: episodes run in the runner's own thread, one at a time."""

    kind = "in-process"

    def __init__(self, config: RunConfig, agent: Agent, judges: Sequence[Judge]) -> None:
        super().__init__(1)
        self.config, self.agent, self.judges = config, agent, judges

    @property
    def in_flight(self) -> int:
        return 1

    def submit(self, specs: list[EpisodeSpec]) -> Future[PlayedChunk]:
        future: Future[PlayedChunk] = Future()
        try:
            future.set_result(play_chunk(specs, self.agent, self.config, self.judges))
        except Exception as exc:  # noqa: BLE001 - recorded by the runner like a worker's failure
            future.set_exception(exc)
        return future

    def shutdown(self, now: bool) -> None:
        pass


class Threads(Executor):
    """Threads of the runner's process sharing its agent: for agents that mostly wait on a model endpoint."""

    kind = "threads"

    def __init__(self, config: RunConfig, agent: Agent, judges: Sequence[Judge], workers: int) -> None:
        super().__init__(workers)
        self.config, self.agent, self.judges = config, agent, judges
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="episode")

    def submit(self, specs: list[EpisodeSpec]) -> Future[PlayedChunk]:
        return self._pool.submit(play_chunk, specs, self.agent, self.config, self.judges)

    def shutdown(self, now: bool) -> None:
        # A thread cannot be stopped: with now=True the runner stops waiting and drops what they still finish.
        self._pool.shutdown(wait=not now, cancel_futures=True)


class Processes(Executor):
    """Worker processes, each with its own agent, judges and backend clients built from the configuration."""

    kind = "processes"

    def __init__(self, config: RunConfig, workers: int, fork_with: list[EpisodeSpec] | None = None) -> None:
        """fork_with: the run's plan, to fork the workers now with it (see the module's notes for when that is
        safe); None: a forkserver pool."""
        super().__init__(workers)
        self.config = config
        self._index: dict[str, int] = {}
        self._context = multiprocessing.get_context("forkserver")
        if fork_with is not None:
            worker.inherited_plan = fork_with
            self._index = {spec.id: i for i, spec in enumerate(fork_with)}
            self._context = multiprocessing.get_context("fork")
        self._pool = self._new_pool()
        if fork_with is not None:
            self._pool.submit(int)  # a fork pool forks all its workers on the first submit: now, single-threaded
            worker.inherited_plan = []

    @property
    def forked(self) -> bool:
        return bool(self._index)

    def _new_pool(self) -> ProcessPoolExecutor:
        # The environment goes along: the fork server keeps the one it started with.
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context, initializer=worker.start,
                                   initargs=(self.config, dict(os.environ), os.getpid()))

    def submit(self, specs: list[EpisodeSpec]) -> Future[PlayedChunk]:
        if self._index:
            return self._pool.submit(worker.play_inherited, [self._index[spec.id] for spec in specs])
        return self._pool.submit(worker.play, specs)

    def renew(self) -> None:
        # Never fork again: the runner's process has threads by now.
        if self._index:
            self._index = {}
            self._context = multiprocessing.get_context("forkserver")
            start_fork_server(self.config)
        broken, self._pool = self._pool, self._new_pool()
        self.generation += 1
        _stop_pool(broken, now=True)

    def shutdown(self, now: bool) -> None:
        _stop_pool(self._pool, now)


def _stop_pool(pool: ProcessPoolExecutor, now: bool) -> None:
    if now:
        # ProcessPoolExecutor has no public way to stop its workers before Python 3.14 (terminate_workers).
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for process in processes:
            process.terminate()  # SIGTERM: the worker unwinds its episode, runs its exit hooks, exits
        for process in processes:
            process.join(WORKER_EXIT_S)
            if process.is_alive():
                process.kill()
                process.join()
    pool.shutdown(wait=True, cancel_futures=True)


def fork_is_safe(config: RunConfig) -> bool:
    """Whether worker processes may be forked from the runner's process now (see the module's notes)."""
    info = BACKEND_INFOS.get(config.backend) if config.backend in BACKEND_INFOS else EMBEDDED
    in_process = not (info.serves_shell or info.serves_desktop)
    return in_process and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()


def start_fork_server(config: RunConfig) -> None:
    """Start the fork server now, importing what the workers need, so that it works while the runner loads the
    suite rather than after. (Its preload list is fixed for the life of this process: a later run reuses it.)"""
    # Not the main module: each worker runs it again as __mp_main__ (runpy warns if it was imported already).
    modules = ["envs.runner.worker", *_entry_modules("agent", config.agent), *_entry_modules("backend", config.backend)]
    multiprocessing.get_context("forkserver").set_forkserver_preload(modules)
    multiprocessing.forkserver.ensure_running()


def _entry_modules(kind: str, name: str) -> list[str]:
    return [entry.target.split(":")[0] for entry in entry_points_of(kind) if entry.name == name]
