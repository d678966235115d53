"""The Gymnasium environment: one scenario episode per reset, tool calls as actions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding

from envs.actions import ActionError, FinalMessage, ToolCall, describe_action, parse_action
from envs.apps.seeded_order import first_integer
from envs.backends import Backend, BackendError, make_backend
from envs.episode import EpisodeSetup, prepare_episode
from envs.reward import RewardFn, default_reward
from envs.sandbox.base import SandboxLimits
from envs.spaces import MAX_TEXT, action_space, clip_json, clip_text, observation_space, shown_text
from envs.tools import ToolError
from envs.world.app import acts_on_actions, begin_action
from records.checks import RecordedWorld
from records.evaluate import FailureWatch, evaluate
from records.trace import StepRecord
from records.trajectory import AgentInfo, EpisodeError, Trajectory, episode_id
from scenarios.registry import SourceOptions, select
from scenarios.schema import Scenario


def _recorded_action(raw: Any, parsed: ToolCall | FinalMessage) -> dict[str, Any]:
    """What a trajectory stores of a parsed action: clipped to MAX_TEXT characters of text in all. JSON text no longer
    than that holds no more characters of strings (escapes only lengthen it), so it is stored as parsed, unclipped."""
    if type(raw) is str and len(raw) <= MAX_TEXT:
        if type(parsed) is ToolCall and (not parsed.args or all(type(v) in _SCALARS for v in parsed.args.values())):
            return {"tool": parsed.tool, "args": dict(parsed.args)}  # model_dump's copy, made directly
        return parsed.model_dump()
    return clip_json(parsed.model_dump())


_SCALARS = frozenset({str, int, float, bool, type(None)})


class EpisodeFailed(BackendError):
    """`reset` could not start the episode's backend. The failure is already recorded on `env.trajectory`
    (error kind "backend"); `info` is what `reset` would have returned, with `info["error"]`."""

    def __init__(self, message: str, info: dict[str, Any]) -> None:
        super().__init__(message)
        self.info = info


class SafetyEnv(gym.Env[dict[str, str], str]):
    """Episodes over scenarios. Observation: a Dict of texts; action: a tool call as JSON text
    (or a `ToolCall` / `FinalMessage` / dict from Python). Reward arrives at the end, from the evaluator.

    Error contract: a failure of the backend (sandbox crashed, engine lost, files not readable back) ends the
    episode wherever it happens: at the start, during a tool call, or while reading the world back to score
    it. It is recorded on `trajectory.error` (kind "backend", no verdicts, no reward) and reported in
    `info["error"]`. `step` returns it like any cut-off episode (`reward 0.0, terminated False, truncated
    True`), so vector envs and training loops go on; `reset` has no observation to return, so it raises
    `EpisodeFailed` (a `BackendError`) carrying that `info`. A bad action is not a failure: it becomes
    `last_action_error` and the episode goes on.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    _generator: np.random.Generator | None = None  # np_random, once made
    _pending_seed: int | None = None  # the seed of the last reset, until np_random is first read
    _pending_draws: tuple[int, ...] = ()  # the n of each integers(0, n) drawn from it meanwhile (replayed then)

    def __init__(self, scenario: str | Scenario | list[Scenario] = "managerbench", variant: str | None = None,
                 backend: str = "sim", max_steps: int | None = None, reward_fn: RewardFn = default_reward,
                 source: str | None = None, render_mode: str | None = None,
                 sandbox_limits: SandboxLimits | None = None, artifacts_dir: str | Path | None = None) -> None:
        if isinstance(scenario, Scenario):
            self.scenarios = [scenario]
        elif isinstance(scenario, list):
            self.scenarios = list(scenario)
        else:
            self.scenarios = select(scenario, SourceOptions(source=source))
        if not self.scenarios:
            raise ValueError("SafetyEnv needs at least one scenario")
        self._by_id: dict[str, Scenario] | None = None  # built on the first reset that names a scenario_id
        self.variant = variant
        self.backend_name = backend
        self.sandbox_limits = sandbox_limits
        # Episodes' files (screenshots) go to <artifacts_dir>/<episode>/ (Backend.keep_artifacts); None: kept in memory.
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir is not None else None
        self.max_steps = max_steps
        self.reward_fn = reward_fn
        self.render_mode = render_mode
        self._observation_space: gym.spaces.Dict | None = None  # built on first use (see the properties)
        self._action_space: gym.Space[str] | None = None
        self.agent_info = AgentInfo(name="external")
        self._backend: Backend | None = None
        self._setup: EpisodeSetup | None = None
        self._trajectory: Trajectory | None = None
        self._done = True
        self._obs: dict[str, str] = {}
        self._watch: FailureWatch | None = None  # on backends whose world read is free: the first failing step
        self._acting = False
        self._pre: RecordedWorld | None = None  # the current episode's world before the agent acted

    # ---- gymnasium API -------------------------------------------------------------------------
    # The spaces are most of what building an env costs, and a runner builds an env per episode without ever asking
    # for them: each is built the first time it is read.
    @property
    def observation_space(self) -> gym.spaces.Dict:
        if self._observation_space is None:
            self._observation_space = observation_space()
        return self._observation_space

    @observation_space.setter
    def observation_space(self, space: gym.spaces.Dict) -> None:
        self._observation_space = space

    @property
    def action_space(self) -> gym.Space[str]:
        if self._action_space is None:
            self._action_space = action_space()
        return self._action_space

    @action_space.setter
    def action_space(self, space: gym.Space[str]) -> None:
        self._action_space = space

    # Seeding a numpy generator costs a fifth of a sim reset, and an env given a seed draws from it at most once, to
    # pick a scenario (envs.apps.seeded_order draws that as numpy would): reset(seed=...) keeps the seed, and the
    # generator is made from it when first read (also as gym.Env's `_np_random`, which gymnasium's checks read), then
    # advanced past the draws already made.
    @property
    def _np_random(self) -> np.random.Generator | None:
        if self._generator is None and self._pending_seed is not None:
            self._generator, self._np_random_seed = seeding.np_random(self._pending_seed)
            for n in self._pending_draws:
                self._generator.integers(0, n)
            self._pending_seed, self._pending_draws = None, ()
        return self._generator

    @_np_random.setter
    def _np_random(self, value: np.random.Generator | None) -> None:
        self._generator = value

    @property
    def np_random(self) -> np.random.Generator:
        if self._np_random is None:  # no seed given yet: a random one, as gym.Env does
            self._np_random, self._np_random_seed = seeding.np_random()
        return self._np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._pending_seed, self._pending_draws = None, ()
        gym.Env.np_random.fset(self, value)

    @property
    def np_random_seed(self) -> int:
        self.np_random  # noqa: B018 - made (from the kept seed) if not yet
        return self._np_random_seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:  # what gym.Env.reset(seed=seed) does, deferred
            self._generator, self._np_random_seed, self._pending_seed, self._pending_draws = None, None, seed, ()
        options = options or {}
        scenario = self._pick_scenario(options.get("scenario_id"))
        variant = options.get("variant") or self.variant or scenario.default_variants[0]
        episode_seed = seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))
        if self.backend_name not in scenario.backends:
            raise ValueError(f"scenario {scenario.id} runs on backend(s) {', '.join(scenario.backends)}, "
                             f"not {self.backend_name!r}")
        self._close_backend()
        self._done = True
        self._setup = setup = prepare_episode(scenario, variant, episode_seed)
        # The seeded world is dumped for the trajectory, and the episode plays in the world itself: checks read the
        # world before acting from that dump (built only if one reads it), as a re-score of the trajectory does.
        pre_world = setup.world.recorded()
        self._pre = RecordedWorld(pre_world)
        self._trajectory = Trajectory(
            episode_id=episode_id(scenario.id, variant, episode_seed),
            scenario=setup.scenario_ref,
            variant=variant, seed=episode_seed, backend=self.backend_name, agent=self.agent_info,
            messages=setup.messages, pre_world=pre_world,
        )
        self._obs = {"system": clip_text(self._message("system")), "goal": clip_text(self._message("user")),
                     "tools": "", "observation": "", "last_action_error": ""}
        try:
            self._backend = make_backend(self.backend_name, self.sandbox_limits)
            if self.artifacts_dir is not None:
                self._backend.keep_artifacts(self.artifacts_dir, self._trajectory.episode_id)
            self._backend.start(setup.world, setup.scenario.tools)
            tools = self._backend.tools_text()
            live = self._backend.info().live_world
            start = self._backend.world() if live else None  # as served, before the first observation is read
            self._watch = FailureWatch(setup.scenario.checks, self._pre, start) if live else None
            first = self._backend.first_observation()  # e.g. the desktop's page: the first turn can act on it
            # Apps acting on a schedule (a pop-up due from action N) are told of each action, where the world is live
            # and one of its apps acts on it: asked once, as an episode's apps stay those it started with.
            self._acting = live and acts_on_actions(start)
        except BackendError as exc:
            self.record_error("backend", str(exc))
            raise EpisodeFailed(f"backend {self.backend_name} failed to start: {exc}", self._info()) from exc
        self._done = False
        self._obs["tools"] = clip_text(tools)
        if first:
            self._obs["observation"] = shown_text(first)
        return dict(self._obs), self._info()

    def step(self, action: Any):
        backend, traj = self._backend, self._trajectory
        if self._done or backend is None or traj is None:
            raise RuntimeError("the episode is over; call reset() first")
        started = time.perf_counter()
        # The trajectory keeps what the agent sees, no more: clipped texts (each notes how much was cut). Its record
        # is built once, when its fields are known (validating them at once costs less than assigning them one by one).
        steps = traj.steps
        raw_action, recorded = None, None
        output, error, ends = "", None, False
        try:
            parsed = parse_action(action)
            # Text that parses holds no lone surrogate (the parse refuses them): within MAX_TEXT it is stored as sent.
            raw_action = action if type(action) is str and len(action) <= MAX_TEXT else describe_action(action)
            recorded = _recorded_action(action, parsed)
            if type(parsed) is FinalMessage:
                backend.final_message(parsed.message)
                output, ends = "Final message received.", True
            else:
                if self._acting:
                    begin_action(backend.world(), len(steps) + 1)
                result = backend.call(parsed)
                output, ends = result.output, result.ends_episode
        except (ActionError, ToolError) as exc:
            error = shown_text(str(exc))
        except BackendError as exc:
            return self._fail(str(exc), StepRecord(
                index=len(steps), raw_action=raw_action or describe_action(action), action=recorded,
                error=shown_text(f"backend failure: {exc}"), duration_s=time.perf_counter() - started))
        if raw_action is None:
            raw_action = describe_action(action)
        record = StepRecord(index=len(steps), raw_action=raw_action, action=recorded, observation=shown_text(output),
                            ends_episode=ends, error=error, duration_s=time.perf_counter() - started)
        steps.append(record)
        if self._watch is not None:
            try:
                self._watch.after_step(backend.world(), steps)
            except BackendError as exc:  # as for the final read-back below
                return self._fail(f"could not read the world back to score it: {exc}")
        obs = self._obs
        obs["observation"], obs["last_action_error"] = record.observation, error or ""
        truncated = not ends and len(steps) >= (self.max_steps or self._setup.scenario.max_steps)
        if not (ends or truncated):
            return dict(obs), 0.0, False, False, self._info()
        try:
            reward = self._finish(ends, truncated)
        except BackendError as exc:  # reading the world back to score it: the same contract as a failed call
            return self._fail(f"could not read the world back to score it: {exc}")
        return dict(obs), reward, ends, truncated, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._trajectory is None:
            return None
        lines = [f"[{self._trajectory.episode_id}]"]
        for s in self._trajectory.steps:
            lines.append(f"{s.index}: {s.raw_action[:200]} -> {(s.error or s.observation)[:200]}")
        return "\n".join(lines)

    def close(self) -> None:
        self._close_backend()

    # ---- for agents and runners ----------------------------------------------------------------
    def tool_specs(self):
        if self._backend is None:
            raise RuntimeError("call reset() before asking for tools")
        return self._backend.tool_specs()

    @property
    def messages(self) -> list[dict[str, str]]:
        return list(self._setup.messages) if self._setup else []

    @property
    def scenario(self) -> Scenario:
        if self._setup is None:
            raise RuntimeError("call reset() first")
        return self._setup.scenario

    @property
    def world(self):
        """The live world of the current episode (read-only use: checks and reference replay)."""
        if self._backend is None:
            raise RuntimeError("call reset() first")
        return self._backend.world()

    @property
    def observation(self) -> dict[str, str]:
        """What the last reset or step returned as observation (an agent handed a reset env starts from it)."""
        return dict(self._obs)

    @property
    def done(self) -> bool:
        return self._done

    @property
    def trajectory(self) -> Trajectory:
        if self._trajectory is None:
            raise RuntimeError("call reset() first")
        return self._trajectory

    def end_episode(self, reason: str) -> None:
        """End an episode the agent left open (it stopped acting): truncated and scored as it stands (or, if
        the world cannot be read back, recorded as a backend error, as in `step`)."""
        if not self._done:
            self._trajectory.steps.append(StepRecord(index=len(self._trajectory.steps), raw_action="",
                                                     error=shown_text(f"agent stopped: {reason}")))
            try:
                self._finish(terminated=False, truncated=True)
            except BackendError as exc:
                self._fail(f"could not read the world back to score it: {exc}")

    def record_error(self, kind: str, message: str) -> None:
        """Record that the episode failed outside the env (agent or model error); it is not scored."""
        if self._trajectory is not None:
            self._trajectory.error = EpisodeError(kind=kind, message=shown_text(message))
            self._trajectory.post_world = self._safe_world_dump()
            self._trajectory.duration_s = sum(s.duration_s for s in self._trajectory.steps)
        self._done = True

    # ---- internals -----------------------------------------------------------------------------
    def _pick_scenario(self, scenario_id: str | None) -> Scenario:
        if scenario_id is not None:
            # Lazy: most envs (one per runner episode, each of a vector env) never pick by id, and a suite's
            # index is the largest thing such an env would hold.
            if self._by_id is None:
                self._by_id = {s.id: s for s in self.scenarios}
            if scenario_id not in self._by_id:
                raise ValueError(f"scenario_id {scenario_id!r} is not among this env's scenarios")
            return self._by_id[scenario_id]
        count = len(self.scenarios)
        if count == 1:
            return self.scenarios[0]
        seed = self._pending_seed
        if self._generator is None and type(seed) is int and seed >= 0 and not self._pending_draws and count <= 1 << 32:
            self._pending_draws = (count,)  # the generator, when made, is advanced past this draw
            return self.scenarios[first_integer(seed, count)]
        return self.scenarios[int(self.np_random.integers(0, count))]

    def _step_limit(self) -> int:
        return self.max_steps or self.scenario.max_steps

    def _message(self, role: str) -> str:
        return "\n\n".join([m["content"] for m in self._setup.messages if m["role"] == role])  # read, not copied

    def _finish(self, terminated: bool, truncated: bool) -> float:
        traj, setup = self._trajectory, self._setup
        post = self._backend.world()
        traj.terminated, traj.truncated = terminated, truncated
        traj.post_world = post.recorded()
        traj.verdicts = evaluate(setup.scenario.checks, self._pre, post, traj.steps,
                                 self._watch.first_step if self._watch else None)
        traj.reward = self.reward_fn(traj.verdicts)
        traj.duration_s = sum(s.duration_s for s in traj.steps)
        self._done = True
        return traj.reward

    def _fail(self, message: str, record: StepRecord | None = None):
        """The backend failed during `step`: record it and end the episode as truncated (the error contract)."""
        traj = self._trajectory
        if record is not None:  # the failed step itself; a failed read-back follows a step already recorded
            traj.steps.append(record)
            self._obs.update(observation="", last_action_error=record.error)
        traj.verdicts, traj.reward = None, None
        traj.terminated, traj.truncated = False, True
        self.record_error("backend", message)
        return dict(self._obs), 0.0, False, True, self._info()

    def _safe_world_dump(self) -> dict | None:
        try:
            return self._backend.world().recorded() if self._backend else None
        except Exception:  # the backend may be the thing that broke
            return None

    def _info(self) -> dict[str, Any]:
        traj = self._trajectory
        info: dict[str, Any] = {"episode_id": traj.episode_id, "scenario_id": traj.scenario.id,
                                "variant": traj.variant, "step": len(traj.steps)}
        if traj.verdicts is not None:
            info["verdicts"] = traj.verdicts.model_dump()
        if traj.error is not None:
            info["error"] = traj.error.model_dump()
        return info

    def _close_backend(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
