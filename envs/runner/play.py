"""One episode: play it, then score it. The same code runs in the runner's process, its threads and its worker
processes, so every executor gives the same trajectory for the same episode."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from agents.base import Agent
from envs.backends import BackendError
from envs.config import RunConfig
from envs.env import EpisodeFailed, SafetyEnv
from envs.episode import prepare_episode
from envs.sandbox.base import SandboxLimits
from evaluator.judges import Judge
from evaluator.scoring import run_judges
from evaluator.serialised import SerialisedEpisode
from records.trajectory import AgentInfo, EpisodeError, ScenarioRef, Trajectory, episode_id
from scenarios.schema import Scenario

ARTIFACTS = "artifacts"  # the run folder's subfolder of episodes' files


@dataclass(frozen=True)
class EpisodeSpec:
    scenario: Scenario
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return episode_id(self.scenario.id, self.variant, self.seed)


@dataclass(frozen=True)
class PlayedChunk:
    """Episodes played one after another by one worker, and how long they took (the runner sizes chunks by it)."""

    episodes: list[SerialisedEpisode]
    seconds: float


def run_one(spec: EpisodeSpec, agent: Agent, config: RunConfig, judges: Sequence[Judge] = ()) -> Trajectory:
    """One episode, then its scoring stage: the rule verdicts come with the episode's end, the judges' judgements
    after it. Any failure of the agent, model or backend becomes a recorded episode error (the env records its own
    backend failures; see SafetyEnv's error contract); a judge's failure stays on its judgement."""
    trajectory = _play(spec, agent, config)
    trajectory.judgements = run_judges(trajectory, judges)
    return trajectory


def play_chunk(specs: Sequence[EpisodeSpec], agent: Agent, config: RunConfig,
               judges: Sequence[Judge] = ()) -> PlayedChunk:
    """Play episodes in turn; each trajectory is serialised here, once (the writer reuses the text)."""
    started = time.perf_counter()
    episodes = [SerialisedEpisode.of(run_one(spec, agent, config, judges)) for spec in specs]
    return PlayedChunk(episodes, time.perf_counter() - started)


def unplayed(spec: EpisodeSpec, agent: AgentInfo, config: RunConfig, message: str) -> SerialisedEpisode:
    """The record of an episode that did not come back from its worker (e.g. the worker process died): an
    episode error naming why, not scored, played again by a resumed run."""
    scenario = spec.scenario
    try:
        setup = prepare_episode(scenario, spec.variant, spec.seed)
        messages, pre_world = setup.messages, setup.world.recorded()
    except Exception as exc:  # noqa: BLE001 - the error to record is the one given; say this one too
        messages, pre_world = [], {}
        message += f" (and the episode could not be set up here: {describe_error(exc)})"
    trajectory = Trajectory(
        episode_id=spec.id,
        scenario=ScenarioRef(id=scenario.id, hash=scenario.content_hash(), suite=scenario.suite,
                             family=scenario.family, category=scenario.category, metadata=scenario.metadata,
                             checks=scenario.checks, rubric=scenario.judge),
        variant=spec.variant, seed=spec.seed, backend=config.backend, agent=agent, messages=messages,
        pre_world=pre_world, error=EpisodeError(kind="backend", message=message),
    )
    return SerialisedEpisode.of(trajectory)


def _play(spec: EpisodeSpec, agent: Agent, config: RunConfig) -> Trajectory:
    # Files an episode makes (screenshots) go beside the trajectories: <out>/artifacts/<episode>/ (worker processes
    # get the same config, so the same folder).
    env = SafetyEnv(spec.scenario, variant=spec.variant, backend=config.backend, max_steps=config.max_steps,
                    sandbox_limits=SandboxLimits(timeout_s=config.command_timeout_s),
                    artifacts_dir=config.out_dir() / ARTIFACTS)
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
            env.record_error(_error_kind(exc), describe_error(exc))
        return env.trajectory
    finally:
        env.close()


def describe_error(exc: BaseException) -> str:
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
