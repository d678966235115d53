"""Run episodes: select scenarios, drive agents (in parallel), write trajectories, store and score them.

Every finished episode is appended to <out>/trajectories.jsonl at once, so Ctrl-C or a kill loses
nothing; a rerun with the same `out` skips finished episodes and retries errored ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from agents.base import Agent
from agents.registry import make_agent
from envs.backends import BackendError, backend_class
from envs.config import ConfigError, RunConfig
from envs.env import EpisodeFailed, SafetyEnv
from envs.interrupts import StopRequest
from envs.plugins import PluginError
from envs.sandbox.base import SandboxLimits
from evaluator.jsonl import TrajectoryWriter, compact_for_resume
from evaluator.judges import Judge, judge_names, make_judges
from evaluator.results import build_results
from evaluator.run_lock import RunFolderBusy, RunFolderLock
from evaluator.scoring import judge_errors, run_judges
from evaluator.store import TrajectoryStore
from records.trajectory import Trajectory, episode_id
from records.verdicts import JudgeResult
from scenarios.registry import SourceOptions, select
from scenarios.schema import Scenario, pack_hash

STORE_BATCH = 100


@dataclass(frozen=True)
class EpisodeSpec:
    scenario: Scenario
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return episode_id(self.scenario.id, self.variant, self.seed)


@dataclass
class RunOutcome:
    out_dir: Path
    results: dict[str, Any]
    ran: int
    skipped: int
    errors: list[Trajectory] = field(default_factory=list)
    judge_errors: list[tuple[Trajectory, JudgeResult]] = field(default_factory=list)
    interrupted: bool = False


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


def run_one(spec: EpisodeSpec, agent: Agent, config: RunConfig, judges: Sequence[Judge] = ()) -> Trajectory:
    """One episode, then its scoring stage: the rule verdicts come with the episode's end, the judges' judgements
    after it. Any failure of the agent, model or backend becomes a recorded episode error (the env records its own
    backend failures; see SafetyEnv's error contract); a judge's failure stays on its judgement."""
    trajectory = _play(spec, agent, config)
    trajectory.judgements = run_judges(trajectory, judges)
    return trajectory


def _play(spec: EpisodeSpec, agent: Agent, config: RunConfig) -> Trajectory:
    env = SafetyEnv(spec.scenario, variant=spec.variant, backend=config.backend, max_steps=config.max_steps,
                    sandbox_limits=SandboxLimits(timeout_s=config.command_timeout_s))
    env.agent_info = agent.info()
    try:
        try:
            env.reset(seed=spec.seed)
        except EpisodeFailed:
            return env.trajectory  # recorded as a backend error by the env
        try:
            agent.run(env)
            if not env.done:
                env.end_episode("agent returned before the episode ended")
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, never a silent "safe"
            env.record_error(_error_kind(exc), _describe(exc))
        return env.trajectory
    finally:
        env.close()


def _describe(exc: BaseException) -> str:
    """The error and its root cause (client libraries wrap e.g. "Connection refused" in a vague message)."""
    text = f"{type(exc).__name__}: {exc}"
    root, seen = exc, {id(exc)}
    while (nxt := root.__cause__ or root.__context__) is not None and id(nxt) not in seen:
        root = nxt
        seen.add(id(root))
    if root is not exc and str(root) and str(root) not in text:
        text += f" (caused by {type(root).__name__}: {root})"
    return text


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, BackendError):  # e.g. the world read back outside a step (a reference agent's lookup)
        return "backend"
    module = type(exc).__module__
    return "model" if module.startswith(("openai", "httpx", "langchain")) else "agent"


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
    specs = plan_episodes(config)
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
        yield partial(_execute_locked, config, specs, agent, judges, out_dir, store)


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
    url = config.db or f"sqlite:///{(out_dir / 'store.sqlite').resolve()}"
    try:
        return TrajectoryStore(url)
    except SQLAlchemyError as exc:
        where = f"db={config.db}" if config.db else f"the run's store in {out_dir}"
        raise ConfigError(f"{where}: cannot open the store: {exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]}") from None


def _execute_locked(config: RunConfig, specs: list[EpisodeSpec], agent: Agent, judges: list[Judge], out_dir: Path,
                    store: TrajectoryStore, on_progress: Callable[[int, int], None] | None) -> RunOutcome:
    traj_path = out_dir / "trajectories.jsonl"
    previous = compact_for_resume(traj_path)
    done_ids = {t.episode_id for t in previous}
    todo = [s for s in specs if s.id not in done_ids]
    run_id = out_dir.resolve().as_posix()
    config_json = config.model_dump_json()
    store.save_run(run_id, config_json)
    # A killed run can leave finished episodes in the jsonl that never reached the store (it writes in batches).
    stored = store.episode_ids(run_id)
    unstored = [t for t in previous if t.episode_id not in stored]
    for start in range(0, len(unstored), STORE_BATCH):
        store.add_episodes(run_id, unstored[start:start + STORE_BATCH])
    (out_dir / "config.json").write_text(json.dumps(
        {**config.model_dump(), "pack_hash": pack_hash(list({s.scenario.id: s.scenario for s in specs}.values())),
         "episodes_planned": len(specs)}, indent=2))

    writer = TrajectoryWriter(traj_path)
    new: list[Trajectory] = []
    pending_store: list[Trajectory] = []
    lock = threading.Lock()

    def record(traj: Trajectory) -> None:
        with lock:
            writer.write(traj)
            new.append(traj)
            pending_store.append(traj)
            if len(pending_store) >= STORE_BATCH:
                store.add_episodes(run_id, pending_store)
                pending_store.clear()
            if on_progress:
                on_progress(len(new), len(todo))

    pool = ThreadPoolExecutor(max_workers=config.workers)
    with StopRequest() as stop:
        futures: set[Future] = set()

        def collect(until_below: int) -> None:
            nonlocal futures
            while len(futures) > until_below and not stop.requested:
                finished, futures = wait(futures, timeout=0.25, return_when=FIRST_COMPLETED)
                for fut in finished:
                    record(fut.result())

        try:
            # Keep only a few episodes in flight so a stop comes quickly and memory stays flat.
            for spec in todo:
                if stop.requested:
                    break
                futures.add(pool.submit(run_one, spec, agent, config, judges))
                collect(until_below=2 * config.workers - 1)
            collect(until_below=0)
        except KeyboardInterrupt:  # a second Ctrl-C while stopping
            stop.requested = True
        finally:
            interrupted = stop.requested
            pool.shutdown(wait=not interrupted, cancel_futures=True)
            writer.close()
            with lock:
                if pending_store:
                    store.add_episodes(run_id, pending_store)

    results = build_results(previous + new)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    store.save_run(run_id, config_json, json.dumps(results, sort_keys=True))
    return RunOutcome(out_dir=out_dir, results=results, ran=len(new), skipped=len(previous),
                      errors=[t for t in new if t.error is not None], judge_errors=judge_errors(new),
                      interrupted=interrupted)
