"""Run episodes: select scenarios, drive agents (in parallel), write trajectories, store and score them.

Every finished episode is appended to <out>/trajectories.jsonl at once, so Ctrl-C or a kill loses nothing; a
rerun with the same `out` skips finished episodes and retries errored ones. Episodes run in this process
(workers=1), in worker processes or in threads (see executors.py); wherever they run, this process alone writes
the run's files, and the results are computed from what it wrote.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.base import Agent
from agents.registry import AGENTS, make_agent, needs_model
from envs.backends import backend_class
from envs.config import ConfigError, RunConfig
from envs.interrupts import StopRequest
from envs.plugins import PluginError
from envs.runner.executors import (
    Executor,
    ExecutorKind,
    InProcess,
    Processes,
    Threads,
    fork_is_safe,
    start_fork_server,
)
from envs.runner.play import EpisodeSpec, PlayedChunk, describe_error, run_one, unplayed
from envs.runner.writer import RunWriter
from evaluator.jsonl import compact_for_resume, iter_json_lines
from evaluator.judges import JUDGES, Judge, judge_names, make_judges
from evaluator.results import build_results_from_file
from evaluator.run_lock import RunFolderBusy, RunFolderLock
from evaluator.serialised import SerialisedEpisode
from records.trajectory import Trajectory
from records.verdicts import JudgeResult
from scenarios.registry import SourceOptions, select
from scenarios.schema import pack_hash

if TYPE_CHECKING:  # SQLAlchemy and SQLModel are imported where the store is opened, not with the runner
    from evaluator.store import TrajectoryStore

__all__ = ["EpisodeSpec", "RunOutcome", "execute", "open_run", "plan_episodes", "run_one"]

STORE_BATCH = 100
STOP_GRACE_S = 10.0  # after a stop request, how long the episodes in flight may take to finish and be kept
CHUNK_TARGET_S = 0.05  # a worker process gets about this much work per message (small enough to stop quickly)
MAX_CHUNK = 32
BREAKS_IN_A_ROW = 3  # worker pools that die one after another with nothing finished: the run gives up on them


@dataclass
class RunOutcome:
    out_dir: Path
    results: dict[str, Any]
    ran: int
    skipped: int
    errors: list[Trajectory] = field(default_factory=list)
    judge_errors: list[tuple[Trajectory, JudgeResult]] = field(default_factory=list)
    interrupted: bool = False
    executor: ExecutorKind = "in-process"


def plan_episodes(config: RunConfig) -> list[EpisodeSpec]:
    scenarios = select(config.scenario, SourceOptions(source=config.source, items=config.items))
    wanted = None if config.variant in ("all", "default") else [v.strip() for v in config.variant.split(",")]
    specs = []
    for scenario in scenarios:
        if wanted is not None:
            variants = wanted
        else:
            variants = scenario.variants if config.variant == "all" else scenario.default_variants
        for variant in variants:
            if variant not in scenario.variants:
                raise ValueError(f"scenario {scenario.id} has no variant {variant!r} (it has {scenario.variants})")
            specs.append(EpisodeSpec(scenario, variant, config.seed))
        if config.backend not in scenario.backends:
            raise ValueError(f"scenario {scenario.id} runs on backend(s) {', '.join(scenario.backends)}, "
                             f"not backend={config.backend}")
        if config.agent.startswith("reference-") and scenario.references is None:
            raise ValueError(f"scenario {scenario.id} has no reference trajectories, so agent={config.agent} "
                             "cannot run it")
    return specs[: config.limit] if config.limit else specs


RUN_IDENTITY = ("agent", "model", "backend", "seed", "base_url", "max_steps", "judges")


def _check_same_run(out_dir: Path, config: RunConfig) -> None:
    """Resuming into a folder that holds another agent's episodes would mix them: refuse."""
    path = out_dir / "config.json"
    if not path.exists():
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"out={out_dir}: its config.json cannot be read ({exc}); is it a run folder?") from None
    if not isinstance(before, dict):
        raise ConfigError(f"out={out_dir}: its config.json does not hold a run configuration")
    changed = [k for k in RUN_IDENTITY if before.get(k) != getattr(config, k)]
    if changed:
        diffs = ", ".join(f"{k}: {before.get(k)!r} -> {getattr(config, k)!r}" for k in changed)
        raise ConfigError(f"{out_dir} holds a run with a different configuration ({diffs}); "
                          "choose another out=")


def execute(config: RunConfig, on_progress: Callable[[int, int], None] | None = None) -> RunOutcome:
    with open_run(config) as run:
        return run(on_progress)


@contextmanager
def open_run(config: RunConfig) -> Iterator[Callable[[Callable[[int, int], None] | None], RunOutcome]]:
    """Check everything that can be checked before an episode runs (scenarios, backend, agent, out folder,
    store) and hold the run folder; yields the function that runs the episodes (given an optional progress
    callback). Any bad input raises here, before anything in `out` or the store changes."""
    kind = executor_kind(config)
    fork = kind == "processes" and fork_is_safe(config)
    if kind == "processes" and not fork:
        start_fork_server(config)  # it imports the workers' modules while this process loads the suite
    specs = plan_episodes(config)
    # Hashed here, before the workers fork (they inherit each scenario's kept hash, which every episode records).
    pack = pack_hash(list({s.scenario.id: s.scenario for s in specs}.values()))
    if fork:
        AGENTS.get(config.agent)  # its module (e.g. LangChain for react) imported once, here, not in every worker
    # Forked now, while this process has one thread and no store, agent or backend client to share.
    forked = Processes(config, config.workers, fork_with=specs) if fork else None
    try:
        backend_class(config.backend).preflight()  # e.g. no bubblewrap or no Docker engine: say so once
        agent = make_agent(config.agent, config.chat_model(), seed=config.seed)
        try:
            judges = make_judges(judge_names(config.judges))
        except PluginError as exc:  # a judge whose package fails to load: say so before any episode runs
            raise ConfigError(f"judges={config.judges}: {exc}") from None
        out_dir = config.out_dir()
        with _locked_run_folder(out_dir):
            _check_same_run(out_dir, config)
            store = _open_store(config, out_dir)
            executor = partial(_make_executor, kind, config, agent, judges) if forked is None else lambda: forked
            yield partial(_execute_locked, config, specs, pack, agent, out_dir, store, executor)
    finally:
        if forked is not None:
            forked.shutdown(now=False)  # a no-op after a run; the idle workers of a run refused before it began


def executor_kind(config: RunConfig) -> ExecutorKind:
    """workers=1 runs in this process. Otherwise executor=auto picks threads for an agent that waits on a model
    endpoint (or for parts registered in this process only, which a worker process cannot load) and worker
    processes for the rest, which is CPU-bound."""
    if config.workers == 1:
        return "in-process"
    here_only = _parts_registered_here(config)
    if config.executor == "processes" and here_only:
        raise ConfigError(f"executor=processes: {here_only[0]} is registered in this process only (Registry.add), "
                          "so a worker process cannot load it; use executor=threads, or register it by entry point")
    if config.executor == "auto":
        waits_on_model = config.model != "offline" and needs_model(config.agent)
        return "threads" if waits_on_model or here_only else "processes"
    return config.executor


def _parts_registered_here(config: RunConfig) -> list[str]:
    from envs.backends.base import BACKENDS
    from envs.sandbox.base import PROVIDERS
    from envs.tools.base import TOOLS
    from envs.world.app import APPS
    from records.checks import CHECKS
    from scenarios.transform_registry import TRANSFORMS

    named = [(AGENTS, config.agent), (BACKENDS, config.backend)] + [(JUDGES, j) for j in judge_names(config.judges)]
    found = [f"{registry.kind} {name!r}" for registry, name in named if name in registry.local]
    for registry in (PROVIDERS, TOOLS, APPS, CHECKS, TRANSFORMS):  # any of these may serve the run's scenarios
        found += [f"{registry.kind} {name!r}" for name in registry.local]
    return found


@contextmanager
def _locked_run_folder(out_dir: Path) -> Iterator[None]:
    """Create the out folder and hold its lock for the whole run; a folder that cannot be created or written,
    or that another run holds, is a bad out= (exit 2) before any episode runs."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = RunFolderLock(out_dir).acquire()
    except RunFolderBusy as exc:
        raise ConfigError(f"out={out_dir}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"out={out_dir}: cannot create or write the run folder: "
                          f"{exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.release()


def _open_store(config: RunConfig, out_dir: Path) -> TrajectoryStore:
    from sqlalchemy.exc import SQLAlchemyError

    from evaluator.store import TrajectoryStore

    try:
        return TrajectoryStore(config.db or _default_db(out_dir))
    except SQLAlchemyError as exc:
        raise ConfigError(f"{_store_name(config, out_dir)}: cannot open the store: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]}") from None


def _default_db(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'store.sqlite').resolve()}"


def _store_name(config: RunConfig, out_dir: Path) -> str:
    return f"db={config.db}" if config.db else f"the run's store in {out_dir}"


def _execute_locked(config: RunConfig, specs: list[EpisodeSpec], pack: str, agent: Agent, out_dir: Path,
                    store: TrajectoryStore, make_executor: Callable[[], Executor],
                    on_progress: Callable[[int, int], None] | None) -> RunOutcome:
    traj_path = out_dir / "trajectories.jsonl"
    done_ids = compact_for_resume(traj_path)
    todo = [s for s in specs if s.id not in done_ids]
    run_id = out_dir.resolve().as_posix()
    config_json = config.model_dump_json()
    store.save_run(run_id, config_json)
    _store_what_the_store_missed(store, run_id, traj_path, done_ids)
    (out_dir / "config.json").write_text(json.dumps(
        {**config.model_dump(), "pack_hash": pack, "episodes_planned": len(specs)}, indent=2))

    tally = _Tally()
    executor = make_executor()
    writer = RunWriter(traj_path, store, run_id, _store_name(config, out_dir))
    with StopRequest() as stop:
        try:
            _drive(executor, todo, config, agent, writer, tally, stop, on_progress)
        finally:
            writer.close()
        interrupted = stop.requested
        # Still under the stop handler: a Ctrl-C while the results are built (seconds for a large run) is noted,
        # not raised, so the run's results.json is always written from what finished.
        results = build_results_from_file(traj_path)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
        store.save_run(run_id, config_json, json.dumps(results, sort_keys=True))
        interrupted = interrupted or stop.requested
    return RunOutcome(out_dir=out_dir, results=results, ran=tally.ran, skipped=len(done_ids),
                      errors=[e.trajectory() for e in tally.failed],
                      judge_errors=[(t, j) for t in (e.trajectory() for e in tally.judge_failed)
                                    for j in t.judgements if j.error is not None],
                      interrupted=interrupted, executor=executor.kind)


def _store_what_the_store_missed(store: TrajectoryStore, run_id: str, traj_path: Path, done_ids: set[str]) -> None:
    """A killed run can leave finished episodes in the jsonl that never reached the store (it writes in batches):
    store them now, from their lines as written."""
    missing = done_ids - store.episode_ids(run_id) if done_ids else set()
    if not missing:
        return
    batch: list[SerialisedEpisode] = []
    for line in iter_json_lines(traj_path):
        if line.trajectory.episode_id in missing:
            batch.append(SerialisedEpisode.of(line.trajectory, json=line.text))
            if len(batch) >= STORE_BATCH:
                store.add_episodes(run_id, batch)
                batch = []
    store.add_episodes(run_id, batch)


def _make_executor(kind: ExecutorKind, config: RunConfig, agent: Agent, judges: Sequence[Judge]) -> Executor:
    if kind == "processes":
        return Processes(config, config.workers)
    if kind == "threads":
        return Threads(config, agent, judges, config.workers)
    return InProcess(config, agent, judges)


@dataclass
class _Tally:
    """What the outcome reports besides the results: how many episodes ran, and the few that failed (kept as
    their JSON; the finished ones are not kept)."""

    ran: int = 0
    failed: list[SerialisedEpisode] = field(default_factory=list)
    judge_failed: list[SerialisedEpisode] = field(default_factory=list)

    def add(self, episode: SerialisedEpisode) -> None:
        self.ran += 1
        if episode.failed:
            self.failed.append(episode)
        if episode.judge_failed:
            self.judge_failed.append(episode)


class _ChunkSizer:
    """Chunks of about CHUNK_TARGET_S of work for worker processes (one message per chunk, not per episode);
    one episode at a time elsewhere, and at first."""

    def __init__(self, executor: Executor) -> None:
        self.adaptive = executor.kind == "processes"
        self.workers = executor.workers
        self._size = 1
        self._per_episode: float | None = None  # seconds, smoothed: a busy machine makes single chunks jumpy

    def observe(self, played: PlayedChunk) -> None:
        if self.adaptive and played.episodes:
            seconds = played.seconds / len(played.episodes)
            before = self._per_episode
            self._per_episode = seconds if before is None else 0.7 * before + 0.3 * seconds
            self._size = max(1, min(MAX_CHUNK, int(CHUNK_TARGET_S / max(self._per_episode, 1e-6))))

    def size(self, remaining: int) -> int:
        # Near the end, smaller chunks keep every worker busy until the last episode.
        return max(1, min(self._size, remaining // (2 * self.workers)))


def _drive(executor: Executor, todo: list[EpisodeSpec], config: RunConfig, agent: Agent, writer: RunWriter,
           tally: _Tally, stop: StopRequest, on_progress: Callable[[int, int], None] | None) -> None:
    """Keep a few chunks in flight, write each episode as its chunk comes back, and stop on request: the work in
    flight gets STOP_GRACE_S to finish (and is kept), then is stopped; a second Ctrl-C stops it at once."""
    queue = deque(todo)
    sizer = _ChunkSizer(executor)
    pending: dict[Future[PlayedChunk], tuple[list[EpisodeSpec], int]] = {}
    breaks_in_a_row = 0
    stop_by: float | None = None
    info = agent.info()

    def record(episodes: Sequence[SerialisedEpisode]) -> None:
        for episode in episodes:
            writer.write(episode)
            tally.add(episode)
            if on_progress:
                on_progress(tally.ran, len(todo))

    def pool_broke(exc: BaseException) -> None:
        nonlocal breaks_in_a_row
        executor.renew()
        breaks_in_a_row += 1
        if breaks_in_a_row >= BREAKS_IN_A_ROW:
            gave_up = (f"not played: {BREAKS_IN_A_ROW} worker pools in a row died before finishing an "
                       f"episode (last: {exc}); try executor=threads or workers=1 to see why")
            record([unplayed(spec, info, config, gave_up) for spec in queue])
            queue.clear()

    try:
        while queue or pending:
            while queue and len(pending) < executor.in_flight and not stop.requested:
                chunk = [queue.popleft() for _ in range(sizer.size(len(queue)))]
                try:
                    future = executor.submit(chunk)
                except BrokenExecutor as exc:  # a worker died since the last wait: the pool refuses new work
                    queue.extendleft(reversed(chunk))  # not started: the renewed pool plays it
                    if not pending:  # no future in flight will report the break
                        pool_broke(exc)
                    break
                pending[future] = (chunk, executor.generation)
            if stop.requested:
                stop_by = stop_by or time.monotonic() + STOP_GRACE_S
                if not pending or time.monotonic() >= stop_by:
                    break
            finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                chunk, generation = pending.pop(future)
                try:
                    played = future.result()
                except BrokenExecutor as exc:
                    if stop.requested:
                        continue  # its worker stopped with the run (e.g. SIGTERM to the whole group): rerun plays it
                    reason = (f"the worker process playing this episode, or one in flight beside it, died "
                              f"({type(exc).__name__}: {exc}); a rerun plays it again")
                    record([unplayed(spec, info, config, reason) for spec in chunk])
                    if generation == executor.generation:
                        pool_broke(exc)
                except Exception as exc:  # noqa: BLE001 - e.g. a worker that could not build the agent
                    record([unplayed(spec, info, config, describe_error(exc)) for spec in chunk])
                else:
                    breaks_in_a_row = 0
                    sizer.observe(played)
                    record(played.episodes)
    except KeyboardInterrupt:  # a second Ctrl-C: stop what is in flight now
        stop.requested = True
    finally:
        executor.shutdown(now=bool(pending))
